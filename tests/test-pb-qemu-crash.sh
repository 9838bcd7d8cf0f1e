#!/usr/bin/env bash
# pullback: QEMU goes away during a backup.  A clean shutdown (SHUTDOWN
# event) and a kill -9 both fail the backup with a clear reason and remove
# its files; when QEMU comes back the daemon reconnects, reports the
# checkpoints QEMU lost or left inconsistent, and the next incremental
# falls back to full on each disk, with the right bytes.
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
start_pullbackd "$dir" --vm "vm1=$QMP_SOCK,nbd=unix:$G"
wait_vm_connected vm1

restart_qsd ()
{
  wait "$QSD_PID" 2>/dev/null || true
  start_qsd "$dir" 2 64M
  qsd_writer_exports "$dir"
  wait_vm_connected vm1
}

backup_state () # ID: "phase:reason"
{
  api GET "/v1/vms/vm1/backups/$1" | jq -r '"\(.phase):\(.reason)"'
}

guest_write "$G" guest-disk0 0 $M 0x11
b=$(expect 201 POST /v1/vms/vm1/backups '{"checkpoint":"c1"}')
expect 204 DELETE "/v1/vms/vm1/backups/$(jq -r .id <<<"$b")"

# --- a clean shutdown during a backup ---------------------------------
b=$(expect 201 POST /v1/vms/vm1/backups '{"checkpoint":"c2","since":"c1"}')
id=$(jq -r .id <<<"$b")
qmpcmd "$QMP_TEST_SOCK" quit >/dev/null || true
wait_for 10 sh -c "curl -sS --unix-socket '$PB_API' http://localhost/v1/vms/vm1/backups/$id | grep -q failed"
# qemu-storage-daemon has no SHUTDOWN event (qemu-system's is tested in
# test-pb-system.sh): the connection just ends.
test "$(backup_state "$id")" = failed:qemu-disconnected
test "$(find "$dir/run" -name 'pullback-*.qcow2' | wc -l)" -eq 0
expect 200 GET /v1/vms/vm1 | jq -e '.status == "disconnected"'
expect_error 503 qemu-unavailable POST /v1/vms/vm1/backups '{}' >/dev/null
# QEMU saved the bitmaps when it quit: after the restart all is well.
restart_qsd
expect 200 GET /v1/vms/vm1/checkpoints/c1 | jq -e 'all(.disks[]; .state == "ok")'
expect 200 GET /v1/vms/vm1/checkpoints/c2 | jq -e 'all(.disks[]; .state == "ok")'
# The failed backup does not block a new one; DELETE clears it.
expect 204 DELETE "/v1/vms/vm1/backups/$id" >/dev/null

# --- kill -9 of QEMU during a backup -----------------------------------
guest_write "$G" guest-disk1 $((2 * M)) 4096 0x22
b=$(expect 201 POST /v1/vms/vm1/backups '{"checkpoint":"c3","since":"c2"}')
id=$(jq -r .id <<<"$b")
test "$(disk_mode "$b" disk1)" = incremental
kill -9 "$QSD_PID"
wait_for 10 sh -c "curl -sS --unix-socket '$PB_API' http://localhost/v1/vms/vm1/backups/$id | grep -q failed"
test "$(backup_state "$id")" = failed:qemu-disconnected
test "$(find "$dir/run" -name 'pullback-*.qcow2' | wc -l)" -eq 0

restart_qsd
# c1 and c2 were loaded from the images, so QEMU now calls them
# inconsistent; c3 was created in the killed session and is gone.
for cp in c1 c2; do
  expect 200 GET "/v1/vms/vm1/checkpoints/$cp" |
    jq -e 'all(.disks[]; .state == "broken" and .reason == "bitmap-inconsistent")'
done
expect 200 GET /v1/vms/vm1/checkpoints/c3 |
  jq -e 'all(.disks[]; .state == "broken" and .reason == "checkpoint-missing")'
# The inconsistent bitmaps were removed (the only thing QEMU allows).
test "$(bitmaps "$QMP_TEST_SOCK" disk0)" = ""
assert_no_leftovers "$QMP_TEST_SOCK" "$dir/run"

# The next incremental is full on every disk, with the reason, and right.
for d in disk0 disk1; do
  nbdcopy "nbd+unix:///guest-$d?socket=$G" "$dir/at-$d.raw"
done
b=$(expect 201 POST /v1/vms/vm1/backups '{"checkpoint":"c4","since":"c2"}')
for d in disk0 disk1; do
  test "$(disk_mode "$b" $d):$(disk_reason "$b" $d)" = full:bitmap-inconsistent
  nbdcopy "$(disk_uri "$b" $d)" "$dir/full-$d.raw"
  cmp "$dir/at-$d.raw" "$dir/full-$d.raw"
done
expect 204 DELETE "/v1/vms/vm1/backups/$(jq -r .id <<<"$b")"
expect 200 GET /v1/vms/vm1/checkpoints/c4 | jq -e 'all(.disks[]; .state == "ok")'
assert_no_leftovers "$QMP_TEST_SOCK" "$dir/run"
