#!/usr/bin/env bash
# pullback: the delta view through the daemon.  An incremental backup
# publishes delta_uri (nbdkit with nbdkit-pullback-plugin in front of the
# disk's export); plain nbdcopy pulls it into a qcow2 overlay of the
# previous full, and the chain equals the disk at the begin, byte for
# byte, while the overlay holds only the changed clusters.  No nbdkit is
# left after DELETE, TTL expiry, SIGTERM, or kill -9 and a restart.
# SPDX-License-Identifier: BSD-3-Clause

. "$abs_top_srcdir/tests/functions.sh"
. "$abs_top_srcdir/tests/functions-pullbackd.sh"
. "$abs_top_srcdir/tests/functions-plugin.sh"
requires qemu-storage-daemon qemu-img qemu-nbd nbdkit nbdcopy jq curl cmp
set -e

make_tmpdir dir
start_qsd "$dir" 1 64M
qsd_writer_exports "$dir"
G=$dir/guest.sock
M=1048576
K=65536
printf 'delta-plugin = %s\n' "$PLUGIN" > "$dir/pb.conf"
run () { start_pullbackd "$dir" -c "$dir/pb.conf" --vm "vm1=$QMP_SOCK,nbd=unix:$G"; wait_vm_connected vm1; }
run
# ([n] keeps pgrep from finding a shell whose command line holds this.)
nbdkits () { pgrep -f "[n]bdkit.*$dir/run/vms/vm1/delta-" | wc -l; }

# The base: a full backup with checkpoint c1, pulled.
guest_write "$G" guest-disk0 0 $((2 * M)) 0x11
b=$(expect 201 POST /v1/vms/vm1/backups '{"checkpoint":"c1"}')
jq -e '.disks[0].delta_uri == null' <<<"$b" >/dev/null
test "$(nbdkits)" -eq 0
"$abs_top_srcdir/contrib/pullback-fetch-full" "$(disk_uri "$b" disk0)" "$dir/full.qcow2"
expect 204 DELETE "/v1/vms/vm1/backups/$(jq -r .id <<<"$b")"

# Changes: data, a write smaller than the granularity, and a range
# zeroed with a zero write (it reads as zeroes but changed).
guest_write "$G" guest-disk0 $((8 * M)) $((3 * K)) 0x22
guest_write "$G" guest-disk0 $((20 * M + 100)) 10 0x33
PATH="/usr/bin:$PATH" nbdsh -u "nbd+unix:///guest-disk0?socket=$G" \
  -c "h.zero($K, $M); h.flush()"

b=$(expect 201 POST /v1/vms/vm1/backups '{"checkpoint":"c2","since":"c1"}')
id=$(jq -r .id <<<"$b")
test "$(disk_mode "$b" disk0)" = incremental
delta=$(jq -r '.disks[0].delta_uri' <<<"$b")
case "$delta" in nbd+unix:///\?socket=*delta-0.sock) ;; *) say_fail "delta_uri $delta"; false ;; esac
test "$(nbdkits)" -eq 1
# With 4 worker threads per client connection (nbdkit's default of 16
# is slower here: see delta.c).
pgrep -af "[n]bdkit.*$dir/run/vms/vm1/delta-" | grep -q -- ' --threads=4 '
expect 200 GET "/v1/vms/vm1/backups/$id" | jq -e --arg d "$delta" '.disks[0].delta_uri == $d' >/dev/null
# The snapshot as the export serves it, then a write after the begin
# that the backup must not see.
nbdcopy "$(disk_uri "$b" disk0)" "$dir/snap.raw"
guest_write "$G" guest-disk0 $((8 * M)) $K 0x44

"$abs_top_srcdir/contrib/pullback-fetch-incremental" "$delta" \
  "$dir/full.qcow2" "$dir/inc.qcow2"
qemu-img compare -f qcow2 -F raw "$dir/inc.qcow2" "$dir/snap.raw"
# Only the changed 64 KiB clusters are in the overlay.
got=$(overlay_ranges "$dir/inc.qcow2")
want=$(printf '%s\n' "$M $K" "$((8 * M)) $((3 * K))" "$((20 * M)) $K")
test "$got" = "$want" || { say_fail "overlay holds $got, want $want"; false; }

# DELETE stops it.
expect 204 DELETE "/v1/vms/vm1/backups/$id"
test "$(nbdkits)" -eq 0
test -z "$(find "$dir/run" -name 'delta-*')"
assert_no_leftovers "$QMP_TEST_SOCK" "$dir/run"

# TTL expiry stops it.
b=$(expect 201 POST /v1/vms/vm1/backups '{"checkpoint":"c3","since":"c2","ttl":1}')
test "$(nbdkits)" -eq 1
wait_for 20 sh -c "test \$(pgrep -f '[n]bdkit.*$dir/run/vms/vm1/delta-' | wc -l) -eq 0"
wait_for 20 sh -c "curl -sS --unix-socket '$PB_API' http://localhost/v1/vms/vm1 | jq -e '.backup == null'"

# SIGTERM stops it.
b=$(expect 201 POST /v1/vms/vm1/backups '{"checkpoint":"c4","since":"c3"}')
test "$(nbdkits)" -eq 1
kill_pullbackd
test "$(nbdkits)" -eq 0
run

# kill -9: nbdkit ends with the daemon; the restart removes its files.
b=$(expect 201 POST /v1/vms/vm1/backups '{"checkpoint":"c5","since":"c4"}')
test "$(nbdkits)" -eq 1
kill -9 "$PB_PID"; wait "$PB_PID" 2>/dev/null || true; PB_PID=
wait_for 20 sh -c "test \$(pgrep -f '[n]bdkit.*$dir/run/vms/vm1/delta-' | wc -l) -eq 0"
run
test -z "$(find "$dir/run" -name 'delta-*')"
assert_no_leftovers "$QMP_TEST_SOCK" "$dir/run"
kill_pullbackd
