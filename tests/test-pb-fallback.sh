#!/usr/bin/env bash
# pullback: per-disk fallback.  A checkpoint broken on one disk makes that
# disk full, with a machine-readable reason, while the other disks stay
# incremental, and every disk's bytes are right.
# SPDX-License-Identifier: BSD-3-Clause

. "$abs_top_srcdir/tests/functions.sh"
. "$abs_top_srcdir/tests/functions-pullbackd.sh"
requires qemu-storage-daemon qemu-img nbdcopy jq curl /usr/bin/python3
set -e

make_tmpdir dir
start_qsd "$dir" 2 64M
qsd_writer_exports "$dir"
G=$dir/guest.sock
M=1048576
start_pullbackd "$dir" --vm "vm1=$QMP_SOCK,nbd=unix:$G"
wait_vm_connected vm1

guest_write "$G" guest-disk0 0 $M 0x11
guest_write "$G" guest-disk1 0 $M 0x22
b=$(expect 201 POST /v1/vms/vm1/backups '{"checkpoint":"c1"}')
expect 204 DELETE "/v1/vms/vm1/backups/$(jq -r .id <<<"$b")"
guest_write "$G" guest-disk0 $((5 * M)) 4096 0x33
guest_write "$G" guest-disk1 $((6 * M)) 4096 0x44

# Someone removes c1's bitmap from disk1 behind our back.
qmpcmd "$QMP_TEST_SOCK" block-dirty-bitmap-remove '{"node":"disk1","name":"c1"}' >/dev/null

for d in disk0 disk1; do
  nbdcopy "nbd+unix:///guest-$d?socket=$G" "$dir/at-$d.raw"
done
b=$(expect 201 POST /v1/vms/vm1/backups '{"checkpoint":"c2","since":"c1"}')
test "$(disk_mode "$b" disk0)" = incremental
test "$(disk_reason "$b" disk0)" = null
test "$(disk_mode "$b" disk1)" = full
test "$(disk_reason "$b" disk1)" = checkpoint-missing
test "$(disk_ctx "$b" disk1)" = null
# disk0: exactly the changed cluster; disk1: all of it, as it was.
assert_dirty_map "$b" disk0 $((5 * M)):4096
nbdcopy "$(disk_uri "$b" disk1)" "$dir/full-disk1.raw"
cmp "$dir/at-disk1.raw" "$dir/full-disk1.raw"
nbdinfo --list "$(disk_uri "$b" disk1)" | grep -q 'qemu:dirty-bitmap:backup-disk0'
expect 204 DELETE "/v1/vms/vm1/backups/$(jq -r .id <<<"$b")"

# The metadata says where c1 is broken; c2 is whole on both disks.
cp=$(expect 200 GET /v1/vms/vm1/checkpoints/c1)
test "$(jq -r '.disks[] | select(.name == "disk0") | .state' <<<"$cp")" = ok
test "$(jq -r '.disks[] | select(.name == "disk1") | "\(.state):\(.reason)"' <<<"$cp")" = broken:checkpoint-missing
expect 200 GET /v1/vms/vm1/checkpoints/c2 | jq -e 'all(.disks[]; .state == "ok")'

# A checkpoint bitmap that stopped recording is broken too, and removed.
qmpcmd "$QMP_TEST_SOCK" block-dirty-bitmap-disable '{"node":"disk0","name":"c2"}' >/dev/null
b=$(expect 201 POST /v1/vms/vm1/backups '{"checkpoint":false,"since":"c2"}')
test "$(disk_mode "$b" disk0):$(disk_reason "$b" disk0)" = full:bitmap-not-recording
test "$(disk_mode "$b" disk1)" = incremental
expect 204 DELETE "/v1/vms/vm1/backups/$(jq -r .id <<<"$b")"
test "$(bitmaps "$QMP_TEST_SOCK" disk0)" = "c1:true "

# Disks that join later: a qcow2 one has no bitmap of c2 ("disk-added"),
# a raw one can hold none ("disk-not-qcow2").  Both come out full.
qemu-img create -q -f qcow2 "$dir/late.qcow2" 16M
qemu-img create -q -f raw "$dir/raw.img" 16M
qmpcmd "$QMP_TEST_SOCK" blockdev-add \
  "{\"driver\":\"qcow2\",\"node-name\":\"late\",\"file\":{\"driver\":\"file\",\"filename\":\"$dir/late.qcow2\"}}" >/dev/null
qmpcmd "$QMP_TEST_SOCK" blockdev-add \
  "{\"driver\":\"raw\",\"node-name\":\"rawdisk\",\"file\":{\"driver\":\"file\",\"filename\":\"$dir/raw.img\"}}" >/dev/null
b=$(expect 201 POST /v1/vms/vm1/backups '{"checkpoint":"c3","since":"c2"}')
test "$(disk_mode "$b" late):$(disk_reason "$b" late)" = full:disk-added
test "$(disk_mode "$b" rawdisk):$(disk_reason "$b" rawdisk)" = full:disk-not-qcow2
test "$(disk_mode "$b" disk1)" = incremental
nbdcopy "$(disk_uri "$b" rawdisk)" "$dir/raw-copy.img"
cmp "$dir/raw.img" "$dir/raw-copy.img"
expect 204 DELETE "/v1/vms/vm1/backups/$(jq -r .id <<<"$b")"
# c3 covers the qcow2 disks only.
test "$(expect 200 GET /v1/vms/vm1/checkpoints/c3 | jq -c '[.disks[].name] | sort')" = '["disk0","disk1","late"]'
assert_no_leftovers "$QMP_TEST_SOCK" "$dir/run"
