#!/usr/bin/env bash
# pullback: nbdkit-pullback-plugin in front of qemu-storage-daemon.  A
# disk gets data, a full backup is pulled, a dirty bitmap starts, and
# the "guest" writes more: data into a hole, a small unaligned write, a
# range zeroed with a zero write, a write smaller than the bitmap's
# granularity and a discarded range.  Then, with writes stopped, the
# disk is exported read-only with the bitmap: the point in time.
#
# - the delta view's map is exactly QEMU's dirty map (dirty = data, also
#   where it reads as zeroes; clean = hole+zero), the full view's map is
#   exactly QEMU's base:allocation, and both read the same bytes;
# - the recipe (contrib/pullback-fetch-incremental: nbdcopy
#   --destination-is-zero -S 0 into an overlay of the full backup)
#   gives a chain equal to the disk, and the overlay holds exactly the
#   dirty clusters;
# - the two wrong flag sets really corrupt, where the man page says.
# SPDX-License-Identifier: BSD-3-Clause

. "$abs_top_srcdir/tests/functions.sh"
. "$abs_top_srcdir/tests/functions-plugin.sh"
requires qemu-storage-daemon qemu-img qemu-nbd nbdkit nbdcopy nbdinfo nbdsh jq

M=1048576
K64=65536
make_tmpdir dir
qemu-img create -q -f qcow2 "$dir/disk0.qcow2" 64M
# discard=unmap so that the trim below really deallocates (and dirties).
start_qsd_args "$dir" \
  --blockdev "driver=file,filename=$dir/disk0.qcow2,node-name=disk0-file" \
  --blockdev "driver=qcow2,file=disk0-file,node-name=disk0,discard=unmap"
qsd_writer_exports "$dir"
G=$dir/guest.sock
GUEST="nbd+unix:///guest-disk0?socket=$G"

# Before the bitmap.
guest_write "$G" guest-disk0 0 $((4 * M)) 0x11
guest_write "$G" guest-disk0 $((16 * M)) $((2 * M)) 0x12
guest_write "$G" guest-disk0 $((30 * M)) $M 0x13
guest_write "$G" guest-disk0 $((50 * M)) $M 0x14

# The previous backup: a full pull while nothing writes.
"$CONTRIB/pullback-fetch-full" "$GUEST" "$dir/base.qcow2"
"$CONTRIB/pullback-verify" "$dir/base.qcow2" "$GUEST"

qmpcmd "$QMP_TEST_SOCK" block-dirty-bitmap-add '{"node":"disk0","name":"b0"}' >/dev/null

# The changes.
guest_write "$G" guest-disk0 $((8 * M)) $K64 0x21            # into a hole
guest_write "$G" guest-disk0 $((M + 512)) 4096 0x22          # small, unaligned
nbdsh -u "$GUEST" \
  -c "h.zero($M, $((16 * M + K64))); h.trim($M, $((30 * M))); h.flush()"
guest_write "$G" guest-disk0 $((40 * M + 100)) 10 0x23       # < granularity

# The point in time: no more writes; the bitmap stops recording and the
# disk is exported read-only with it.
qmpcmd "$QMP_TEST_SOCK" block-dirty-bitmap-disable '{"node":"disk0","name":"b0"}' >/dev/null
qmpcmd "$QMP_TEST_SOCK" block-export-add \
  '{"type":"nbd","id":"snap","node-name":"disk0","name":"snap","writable":false,"bitmaps":[{"node":"disk0","name":"b0"}]}' >/dev/null
SNAP="nbd+unix:///snap?socket=$G"

# The fixture is what the test claims: a dirty range that reads as
# zeroes, and a discarded range that is dirty.
nbdinfo --map --json "$SNAP" > "$dir/alloc.json"
nbdinfo --map=qemu:dirty-bitmap:b0 --json "$SNAP" > "$dir/dirty.json"
nbdsh -u "$SNAP" -c "assert h.pread($M, $((16 * M + K64))) == bytes($M)"
jq -e --argjson o $((16 * M + K64)) \
  '.[] | select(.offset <= $o and $o < .offset + .length) | .type == 1' "$dir/dirty.json"
jq -e --argjson o $((30 * M)) \
  '.[] | select(.offset <= $o and $o < .offset + .length) | .type == 1' "$dir/dirty.json"

start_plugin "$dir" delta socket="$G" export=snap
# The full view at nbdkit's default of 16 threads per connection.
PLUGIN_THREADS=16 start_plugin "$dir" full socket="$G" export=snap view=full

# Maps: the delta view is the dirty map, the full view base:allocation.
nbdinfo --map --json "$delta_URI" | norm_map > "$dir/delta.map"
dirty_as_delta < "$dir/dirty.json" > "$dir/delta.want"
cat "$dir/delta.map"
diff -u "$dir/delta.want" "$dir/delta.map"
nbdinfo --map --json "$full_URI" | norm_map > "$dir/full.map"
norm_map < "$dir/alloc.json" > "$dir/full.want"
diff -u "$dir/full.want" "$dir/full.map"
# The zeroed range is data in the delta view, zero in the full view.
awk -v o=$((16 * M + K64)) '$1 <= o && o < $1 + $2 && $3 == 0 { f = 1 } END { exit !f }' "$dir/delta.map"
awk -v o=$((16 * M + K64)) '$1 <= o && o < $1 + $2 && $3 >= 2 { f = 1 } END { exit !f }' "$dir/full.map"

# Both views read the disk's bytes.
nbdinfo "$delta_URI" > "$dir/delta.info"
grep -q 'delta view of "snap" (qemu:dirty-bitmap:b0), not a standalone image' "$dir/delta.info"
grep -q 'can_multi_conn: true' "$dir/delta.info"
grep -q 'is_read_only: true' "$dir/delta.info"
grep -q 'block_size_maximum: ' "$dir/delta.info"
nbdcopy "$SNAP" "$dir/snap.raw"
nbdcopy --no-extents "$delta_URI" "$dir/delta.raw"
nbdcopy "$full_URI" "$dir/full.raw"
cmp "$dir/snap.raw" "$dir/delta.raw"
cmp "$dir/snap.raw" "$dir/full.raw"
# ...but the delta view is not an image: a copy that trusts its block
# status has zeroes wherever the disk did not change.
nbdcopy "$delta_URI" "$dir/delta-as-image.raw"
fails cmp -s "$dir/snap.raw" "$dir/delta-as-image.raw"

# The recipe: the chain equals the disk, and the overlay holds exactly
# the dirty clusters (the script copies at the bitmap's granularity, 64
# KiB, which is also the overlay's cluster size).
"$CONTRIB/pullback-fetch-incremental" "$delta_URI" "$dir/base.qcow2" "$dir/inc.qcow2"
"$CONTRIB/pullback-verify" "$dir/inc.qcow2" "$SNAP"
dirty_ranges < "$dir/dirty.json" > "$dir/dirty.ranges"
test -s "$dir/dirty.ranges"
overlay_ranges "$dir/inc.qcow2" > "$dir/inc.ranges"
diff -u "$dir/dirty.ranges" "$dir/inc.ranges"

# nbdcopy's default 256 KiB requests are just as right, but copy every
# whole request that holds a dirty cluster: exactly the dirty ranges
# rounded out to 256 KiB.
NBDCOPY_FLAGS=--request-size=262144 \
  "$CONTRIB/pullback-fetch-incremental" "$delta_URI" "$dir/base.qcow2" "$dir/inc256.qcow2"
"$CONTRIB/pullback-verify" "$dir/inc256.qcow2" "$SNAP"
awk -v r=262144 '{ s = int($1 / r) * r; e = int(($1 + $2 + r - 1) / r) * r
                   if (n && s <= ee) { if (e > ee) ee = e }
                   else { if (n) print ss, ee - ss; ss = s; ee = e; n = 1 } }
                 END { if (n) print ss, ee - ss }' "$dir/dirty.ranges" > "$dir/dirty256.ranges"
diff -u "$dir/dirty256.ranges" <(overlay_ranges "$dir/inc256.qcow2")

# The two wrong flag sets, as the man page describes them.  Each copies
# into a fresh overlay served by qemu-nbd.
wrong_copy () # NAME NBDCOPY-FLAGS...
{
  local name=$1 pid; shift
  qemu-img create -q -f qcow2 -b "$dir/base.qcow2" -F qcow2 "$dir/$name.qcow2"
  # -t: it stays until killed (without, it exits when nbdcopy
  # disconnects, and the kill below could find it gone).
  qemu-nbd -t -f qcow2 -k "$dir/$name.sock" --pid-file="$dir/$name.qpid" \
    "$dir/$name.qcow2" 2>>"$dir/$name-qemu-nbd.log" &
  pid=$!
  track_pid $pid
  wait_for 10 test -s "$dir/$name.qpid"
  nbdcopy "$@" "$delta_URI" "nbd+unix:///?socket=$dir/$name.sock"
  kill $pid
  wait $pid || true
  fails "$CONTRIB/pullback-verify" "$dir/$name.qcow2" "$SNAP" > "$dir/$name.cmp" 2>&1
  cat "$dir/$name.cmp"
}
# No flags: every clean range is written as zeroes over the backing
# file; the first difference is the backup's data at offset 0.
wrong_copy noflags
grep -q 'Content mismatch at offset 0!' "$dir/noflags.cmp"
# --destination-is-zero alone: the changed blocks that read as zeroes
# are skipped, so the backing file's stale data shows through there.
wrong_copy nosparse0 --destination-is-zero
grep -q "Content mismatch at offset $((16 * M + K64))!" "$dir/nosparse0.cmp"

# A client of the delta view survives the export ending under it (the
# backup ends): clean errors, no hang; new clients get a clear error.
cat > "$dir/cut.qmp" <<'QMP'
block-export-del {"id":"snap","mode":"hard"}
@wait-event BLOCK_EXPORT_DELETED snap
QMP
hold_and_cut "$delta_URI" \
  sh -c 'qmpcmd "$0" - < "$1"' "$QMP_TEST_SOCK" "$dir/cut.qmp"
grep -q 'connection to upstream .* is gone' "$dir/delta.log"
fails nbdinfo --size "$delta_URI"
grep -q "upstream $G has no export \"snap\"" "$dir/delta.log"
