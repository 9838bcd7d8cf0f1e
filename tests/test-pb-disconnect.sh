#!/usr/bin/env bash
# pullback: the QMP connection breaks while QEMU lives on (the daemon's
# side of the monitor goes through a socat we kill).  The backup fails
# with qemu-disconnected; a DELETE while QEMU is unreachable still ends
# it; what QEMU holds (export, job, overlays, the temporary bitmap) is
# remembered as pending cleanup and removed when the connection returns,
# so the next incremental works and its dirty map is exact.
# SPDX-License-Identifier: BSD-3-Clause

. "$abs_top_srcdir/tests/functions.sh"
. "$abs_top_srcdir/tests/functions-pullbackd.sh"
requires qemu-storage-daemon qemu-img nbdcopy jq curl socat /usr/bin/python3
set -e

make_tmpdir dir
G=$dir/guest.sock
P=$dir/qmp-proxy.sock
M=1048576
start_qsd "$dir" 2 64M
qsd_writer_exports "$dir"

start_proxy ()
{
  rm -f "$P"
  socat "UNIX-LISTEN:$P" "UNIX-CONNECT:$QMP_SOCK" &
  PROXY_PID=$!
  track_pid $PROXY_PID
  wait_for 10 test -S "$P"
}
start_proxy
start_pullbackd "$dir" --vm "vm1=$P,nbd=unix:$G"
wait_vm_connected vm1

guest_write "$G" guest-disk0 0 $M 0x11
b=$(expect 201 POST /v1/vms/vm1/backups '{"checkpoint":"c1"}')
expect 204 DELETE "/v1/vms/vm1/backups/$(jq -r .id <<<"$b")"

guest_write "$G" guest-disk0 $((5 * M)) 4096 0x22
b=$(expect 201 POST /v1/vms/vm1/backups '{"checkpoint":"c2","since":"c1"}')
id=$(jq -r .id <<<"$b")
test "$(disk_mode "$b" disk0)" = incremental

# Break the connection; QEMU keeps running with the backup's objects.
kill "$PROXY_PID"
wait "$PROXY_PID" 2>/dev/null || true
wait_for 10 sh -c "curl -sS --unix-socket '$PB_API' http://localhost/v1/vms/vm1/backups/$id | grep -q failed"
expect 200 GET "/v1/vms/vm1/backups/$id" |
  jq -e '.phase == "failed" and .reason == "qemu-disconnected"'
test "$(qmpcmd "$QMP_TEST_SOCK" query-block-exports | jq '[.[] | select(.id | test("^pb-"))] | length')" -eq 2
test "$(bitmaps "$QMP_TEST_SOCK" disk0)" = "backup-disk0:false c1:true c2:true "
# Ending it now cannot reach QEMU, but is remembered.
expect 204 DELETE "/v1/vms/vm1/backups/$id"
expect 200 GET /v1/vms/vm1 | jq -e '.cleanup_pending == 1 and .backup == null'
jq -e '.cleanup | length == 1' "$dir/state/vms/vm1.json"

# The connection comes back: the leftovers go, the checkpoints stay.
start_proxy
wait_vm_connected vm1
wait_for 10 sh -c "curl -sS --unix-socket '$PB_API' http://localhost/v1/vms/vm1 | jq -e '.cleanup_pending == 0' >/dev/null"
assert_no_leftovers "$QMP_TEST_SOCK" "$dir/run"
test "$(bitmaps "$QMP_TEST_SOCK" disk0)" = "c1:true c2:true "
jq -e '.cleanup | length == 0' "$dir/state/vms/vm1.json"

# The next incremental works (the temporary bitmap name is free again)
# and its map is exact: everything written since c2, here nothing but
# one new write.
guest_write "$G" guest-disk0 $((9 * M)) 4096 0x33
b=$(expect 201 POST /v1/vms/vm1/backups '{"checkpoint":false,"since":"c2"}')
test "$(disk_mode "$b" disk0)" = incremental
assert_dirty_map "$b" disk0 $((9 * M)):4096
expect 204 DELETE "/v1/vms/vm1/backups/$(jq -r .id <<<"$b")"
assert_no_leftovers "$QMP_TEST_SOCK" "$dir/run"
kill_pullbackd
