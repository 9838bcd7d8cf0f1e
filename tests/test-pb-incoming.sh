#!/usr/bin/env bash
# pullback: a QEMU started to receive an incoming migration (-incoming)
# shows no persistent bitmaps until the migration arrives.  pullbackd must
# not take that for lost checkpoints: they stay intact, backups and
# checkpoint changes get 409 vm-migrating meanwhile, and once QEMU runs
# the images again the next incremental is exact.
# SPDX-License-Identifier: BSD-3-Clause

. "$abs_top_srcdir/tests/functions.sh"
. "$abs_top_srcdir/tests/functions-pullbackd.sh"
requires qemu-system-x86_64 qemu-img nbdinfo jq curl /usr/bin/python3
set -e

make_tmpdir dir
M=1048576
qemu_args=(-blockdev "driver=file,filename=$dir/disk0.qcow2,node-name=disk0-file"
           -blockdev "driver=qcow2,file=disk0-file,node-name=disk0"
           -device "virtio-blk-pci,drive=disk0,id=vd0")
start_qemu_system "$dir" 1 64M
start_pullbackd "$dir" --vm "vm1=$QMP_SOCK"
wait_vm_connected vm1
expect 201 POST /v1/vms/vm1/checkpoints '{"name":"c1"}' >/dev/null
hmp_write "$QMP_TEST_SOCK" vd0 $((5 * M)) 4096 0x55

restart_qemu () # ARGS...: a clean quit (bitmaps saved), then QEMU again
{
  qmpcmd "$QMP_TEST_SOCK" quit >/dev/null || true
  wait "$QEMU_PID" 2>/dev/null || true
  wait_for 10 sh -c "curl -sS --unix-socket '$PB_API' http://localhost/v1/vms/vm1 | jq -e '.status == \"disconnected\"' >/dev/null"
  start_qemu_system_args "$dir" "${qemu_args[@]}" "$@"
  wait_vm_connected vm1
}

# Waiting for a migration: the bitmaps are not visible yet.
restart_qemu -incoming defer
test "$(qmpcmd "$QMP_TEST_SOCK" query-status | jq -r .status)" = inmigrate
grep -q 'waits for an incoming migration' "$PB_LOG"
expect 200 GET /v1/vms/vm1/checkpoints/c1 | jq -e 'all(.disks[]; .state == "ok")'
expect_error 409 vm-migrating POST /v1/vms/vm1/backups '{"since":"c1"}' >/dev/null
expect_error 409 vm-migrating DELETE /v1/vms/vm1/checkpoints/c1 >/dev/null
expect_error 409 vm-migrating POST /v1/vms/vm1/checkpoints '{"name":"c2"}' >/dev/null
# The periodic look did not break anything either.
sleep 2.5
expect 200 GET /v1/vms/vm1/checkpoints/c1 | jq -e 'all(.disks[]; .state == "ok")'

# Running again (here: QEMU restarted without -incoming): c1 is whole.
restart_qemu
expect 200 GET /v1/vms/vm1/checkpoints/c1 | jq -e 'all(.disks[]; .state == "ok")'
b=$(expect 201 POST /v1/vms/vm1/backups '{"checkpoint":false,"since":"c1"}')
test "$(disk_mode "$b" vd0)" = incremental
assert_dirty_map "$b" vd0 $((5 * M)):4096
expect 204 DELETE "/v1/vms/vm1/backups/$(jq -r .id <<<"$b")"
assert_no_leftovers "$QMP_TEST_SOCK" "$dir/run"
kill_pullbackd
