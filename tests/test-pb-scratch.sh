#!/usr/bin/env bash
# pullback: the scratch space guard.  A full scratch filesystem would fail
# the guest's writes, so pullbackd keeps scratch-reserve free and each
# backup under scratch-max: a begin with no room is refused (507) and
# changes nothing; a backup whose overlays outgrow the budget is re-armed
# while there is room and ended (failed, scratch-full) when there is not,
# with the guest's writes intact and nothing left behind.
# SPDX-License-Identifier: BSD-3-Clause

. "$abs_top_srcdir/tests/functions.sh"
. "$abs_top_srcdir/tests/functions-pullbackd.sh"
requires qemu-storage-daemon qemu-img nbdcopy jq curl /usr/bin/python3
set -e

make_tmpdir dir
G=$dir/guest.sock
M=1048576
start_qsd "$dir" 2 64M
qsd_writer_exports "$dir"
guest_write "$G" guest-disk0 0 $((32 * M)) 0x11

# No room at all: refused before QEMU is touched, nothing changes.
echo "scratch-reserve = 1000T" > "$dir/noroom.conf"
start_pullbackd "$dir" -c "$dir/noroom.conf" --vm "vm1=$QMP_SOCK,nbd=unix:$G"
wait_vm_connected vm1
e=$(expect_error 507 scratch-space POST /v1/vms/vm1/backups '{"checkpoint":"c0"}')
jq -e '.error.message | test("scratch-reserve")' <<<"$e"
expect_error 404 checkpoint-not-found GET /v1/vms/vm1/checkpoints/c0 >/dev/null
test "$(bitmaps "$QMP_TEST_SOCK" disk0)" = ""
assert_no_leftovers "$QMP_TEST_SOCK" "$dir/run"
kill_pullbackd

# A budget of 8 MiB for the whole backup (two disks).
printf '%s\n' "scratch-max = 8M" > "$dir/small.conf"
start_pullbackd "$dir" -c "$dir/small.conf" --vm "vm1=$QMP_SOCK,nbd=unix:$G"
wait_vm_connected vm1
n0=$(wc -l < "$PB_LOG")
b=$(expect 201 POST /v1/vms/vm1/backups '{"checkpoint":"c1"}')
id=$(jq -r .id <<<"$b")
# Both scratch files could outgrow their share: both get a threshold.
test "$(tail -n +$((n0 + 1)) "$PB_LOG" | grep -c '"execute":"block-set-write-threshold"')" -eq 2
# 4 MiB of first overwrites reach disk0's first threshold (about half of
# 8 MiB): there is still room, so it is moved on and the backup stays.
guest_write "$G" guest-disk0 0 $((4 * M)) 0x22
wait_for 10 grep -q 'scratch of disk disk0 may grow' "$PB_LOG"
expect 200 GET "/v1/vms/vm1/backups/$id" | jq -e '.phase == "ready"'
# 6 MiB more: the budget is spent and the backup ends; the guest's
# writes all went through.
guest_write "$G" guest-disk0 $((4 * M)) $((6 * M)) 0x33
wait_for 10 sh -c "curl -sS --unix-socket '$PB_API' http://localhost/v1/vms/vm1/backups/$id | jq -e '.phase == \"failed\"' >/dev/null"
expect 200 GET "/v1/vms/vm1/backups/$id" | jq -e '.reason == "scratch-full"'
grep -q 'scratch space of VM vm1 is used up' "$PB_LOG"
nbdcopy "nbd+unix:///guest-disk0?socket=$G" "$dir/disk0.raw"
expect_image "$dir/want.raw" 0:$((4 * M)):0x22 $((4 * M)):$((6 * M)):0x33 \
  $((10 * M)):$((22 * M)):0x11
cmp -n $((32 * M)) "$dir/disk0.raw" "$dir/want.raw"
assert_no_leftovers "$QMP_TEST_SOCK" "$dir/run"
# The checkpoint made with the snapshot is kept and keeps recording.
expect 200 GET /v1/vms/vm1/checkpoints/c1 | jq -e 'all(.disks[]; .state == "ok")'
expect 204 DELETE "/v1/vms/vm1/backups/$id"
b=$(expect 201 POST /v1/vms/vm1/backups '{"checkpoint":false,"since":"c1"}')
assert_dirty_map "$b" disk0 0:$((10 * M))
expect 204 DELETE "/v1/vms/vm1/backups/$(jq -r .id <<<"$b")"
assert_no_leftovers "$QMP_TEST_SOCK" "$dir/run"
kill_pullbackd
