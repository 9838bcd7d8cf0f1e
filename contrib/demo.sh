#!/usr/bin/env bash
# pullback demo: a full and an incremental pull backup of a small VM,
# the incremental pulled both with libnbd and the dirty-bitmap context
# and with plain nbdcopy through the delta view.
# SPDX-License-Identifier: BSD-3-Clause
#
# Run by `make demo` from the build directory.  Starts a qemu-storage-
# daemon "VM" with two 64 MiB qcow2 disks holding known data, starts
# pullbackd for it, and walks through a full backup, guest writes, an
# incremental backup and the checks, saying what it does.  Everything it
# starts is stopped at the end; the files stay in the directory it names.

set -euo pipefail

builddir=${builddir:-$(pwd)}
pullbackd="$builddir/server/pullbackd"
qmpcmd="$builddir/tests/qmpcmd"
contrib=$(cd "$(dirname "$0")" && pwd)
export PATH="/usr/bin:$PATH"   # Debian's python3 for nbdsh

dir=$(mktemp -d "${TMPDIR:-/tmp}/pullback-demo-XXXXXX")
api=$dir/run/api.sock
pids=()
cleanup () {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
}
trap cleanup EXIT

say () { printf '\n\033[1m== %s\033[0m\n' "$*"; }
run () { printf '$ %s\n' "$*" >&2; "$@"; }
rest () { # METHOD PATH [BODY]
  curl -sS --unix-socket "$api" -X "$1" -H 'Content-Type: application/json' \
    ${3:+-d "$3"} "http://localhost$2"
}
wait_for () { for _ in $(seq 100); do "$@" >/dev/null 2>&1 && return 0; sleep 0.1; done; "$@"; }
guest_write () { # DISK OFFSET LENGTH BYTE
  nbdsh -u "nbd+unix:///guest-$1?socket=$dir/guest.sock" \
    -c "h.pwrite(bytes([$4]) * $3, $2); h.flush()"
}

say "A VM: qemu-storage-daemon with two qcow2 disks ($dir)"
for i in 0 1; do qemu-img create -q -f qcow2 "$dir/disk$i.qcow2" 64M; done
qemu-storage-daemon \
  --chardev socket,id=m0,path="$dir/qmp.sock",server=on,wait=off --monitor chardev=m0 \
  --chardev socket,id=m1,path="$dir/qmp-admin.sock",server=on,wait=off --monitor chardev=m1 \
  --blockdev driver=file,filename="$dir/disk0.qcow2",node-name=disk0-file \
  --blockdev driver=qcow2,file=disk0-file,node-name=disk0 \
  --blockdev driver=file,filename="$dir/disk1.qcow2",node-name=disk1-file \
  --blockdev driver=qcow2,file=disk1-file,node-name=disk1 &
pids+=($!)
wait_for "$qmpcmd" --version "$dir/qmp-admin.sock"
# The "guest" writes through writable NBD exports of the disk nodes.
"$qmpcmd" "$dir/qmp-admin.sock" nbd-server-start \
  "{\"addr\":{\"type\":\"unix\",\"data\":{\"path\":\"$dir/guest.sock\"}}}" >/dev/null
for i in 0 1; do
  "$qmpcmd" "$dir/qmp-admin.sock" block-export-add \
    "{\"type\":\"nbd\",\"id\":\"guest$i\",\"node-name\":\"disk$i\",\"name\":\"guest-disk$i\",\"writable\":true}" >/dev/null
done
echo "guest writes 1 MiB of 0x11 at 0 on disk0 and 1 MiB of 0x22 at 8 MiB on disk1"
guest_write disk0 0 1048576 0x11
guest_write disk1 $((8 << 20)) 1048576 0x22

say "pullbackd for the VM (REST API on $api)"
# The delta views come from the plugin built here (not installed yet).
printf 'delta-plugin = %s\n' "$builddir/plugin/.libs/nbdkit-pullback-plugin.so" \
  > "$dir/pullbackd.conf"
"$pullbackd" -f -c "$dir/pullbackd.conf" --state-dir "$dir/state" \
  --run-dir "$dir/run" --listen "$api" \
  --vm "demo=$dir/qmp.sock,nbd=unix:$dir/guest.sock" 2>"$dir/pullbackd.log" &
pids+=($!)
wait_for test -S "$api"
wait_for sh -c "curl -sS --unix-socket '$api' http://localhost/v1/vms/demo | grep -q '\"connected\"'"
run rest GET /v1/vms/demo | jq -c '{name, status, qemu_version, disks}'

say "Full backup, creating checkpoint c1"
rest POST /v1/vms/demo/backups '{"checkpoint":"c1"}' > "$dir/full.json"
jq . "$dir/full.json"
full=$(jq -r .id "$dir/full.json")
echo "guest writes 64 KiB of 0x33 at 0 on disk0 after the snapshot (must not show)"
guest_write disk0 0 65536 0x33
for d in disk0 disk1; do
  run nbdcopy "$(jq -r ".disks[] | select(.name == \"$d\") | .nbd.uri" "$dir/full.json")" "$dir/full-$d.raw"
  qemu-img convert -f raw -O qcow2 "$dir/full-$d.raw" "$dir/full-$d.qcow2"
done
run rest DELETE "/v1/vms/demo/backups/$full"

say "Checking the full backup against what the disks held at the snapshot"
python3 - "$dir" <<'PY'
import sys
d = sys.argv[1]
want0 = bytearray(64 << 20); want0[0:1 << 20] = b"\x11" * (1 << 20)
want1 = bytearray(64 << 20); want1[8 << 20:9 << 20] = b"\x22" * (1 << 20)
for name, want in (("disk0", want0), ("disk1", want1)):
    got = open(f"{d}/full-{name}.raw", "rb").read()
    assert got == want, f"{name}: the full backup differs from the snapshot"
    print(f"{name}: byte-exact at the snapshot instant")
PY

say "More guest writes, then an incremental backup since c1"
guest_write disk0 $((16 << 20)) 65536 0x44
guest_write disk1 $((32 << 20)) 4096 0x55
rest POST /v1/vms/demo/backups '{"checkpoint":"c2","since":"c1"}' > "$dir/incr.json"
jq -c '.disks[] | {name, mode, nbd}' "$dir/incr.json"
incr=$(jq -r .id "$dir/incr.json")
for d in disk0 disk1; do
  uri=$(jq -r ".disks[] | select(.name == \"$d\") | .nbd.uri" "$dir/incr.json")
  ctx=$(jq -r ".disks[] | select(.name == \"$d\") | .nbd.dirty_bitmap_context" "$dir/incr.json")
  run nbdinfo --map="$ctx" "$uri"
  # Apply exactly the dirty blocks onto a copy of the full backup.
  cp "$dir/full-$d.raw" "$dir/incr-$d.raw"
  /usr/bin/python3 - "$uri" "$ctx" "$dir/incr-$d.raw" <<'PY'
import sys
import nbd

uri, ctx, path = sys.argv[1:4]
h = nbd.NBD()
h.add_meta_context(ctx)
h.connect_uri(uri)
size = h.get_size()
dirty = []

def extents(meta, offset, entries, err):
    if meta == ctx:
        for i in range(0, len(entries), 2):
            if entries[i + 1] & 1:
                dirty.append((offset, entries[i]))
            offset += entries[i]
    return 0

offset = 0
while offset < size:
    before = len(dirty)
    seen = [offset]
    def track(meta, off, entries, err):
        extents(meta, off, entries, err)
        if meta == ctx:
            seen[0] = off + sum(entries[0::2])
        return 0
    h.block_status(min(size - offset, 1 << 30), offset, track)
    offset = max(seen[0], offset + 1)
copied = 0
with open(path, "r+b") as out:
    for off, length in dirty:
        out.seek(off)
        out.write(h.pread(length, off))
        copied += length
print(f"{path}: applied {len(dirty)} dirty extents, {copied} bytes")
PY
done

say "The same incremental with plain nbdcopy, through the delta view"
for d in disk0 disk1; do
  delta=$(jq -r ".disks[] | select(.name == \"$d\") | .delta_uri" "$dir/incr.json")
  run "$contrib/pullback-fetch-incremental" "$delta" "$dir/full-$d.qcow2" \
    "$dir/incr-$d.qcow2"
  run qemu-img compare -f qcow2 -F raw "$dir/incr-$d.qcow2" "$dir/incr-$d.raw"
done
run rest DELETE "/v1/vms/demo/backups/$incr"

say "Checking full + incremental against the disks now"
for d in disk0 disk1; do
  nbdcopy "nbd+unix:///guest-$d?socket=$dir/guest.sock" "$dir/live-$d.raw"
  cmp "$dir/incr-$d.raw" "$dir/live-$d.raw"
  echo "$d: full + incremental is byte-exact"
done

say "Checkpoints kept by pullbackd"
rest GET /v1/vms/demo/checkpoints | jq -c '.checkpoints[] | {name, parent}'

say "Done.  Files are in $dir; pullbackd's log is $dir/pullbackd.log"
