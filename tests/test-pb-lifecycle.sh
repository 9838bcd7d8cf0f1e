#!/usr/bin/env bash
# pullback: how backups end.  By TTL expiry (and PATCH to extend it), by
# SIGTERM of the daemon, and by kill -9 of the daemon followed by a
# restart: afterwards no fleece node, job, export, temporary bitmap or
# scratch file is left, and the checkpoints are intact.
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
run () { start_pullbackd "$dir" --vm "vm1=$QMP_SOCK,nbd=unix:$G"; wait_vm_connected vm1; }
run

b=$(expect 201 POST /v1/vms/vm1/backups '{"checkpoint":"c1"}')
expect 204 DELETE "/v1/vms/vm1/backups/$(jq -r .id <<<"$b")"

# --- TTL ------------------------------------------------------------
b=$(expect 201 POST /v1/vms/vm1/backups '{"checkpoint":false,"ttl":1}')
id=$(jq -r .id <<<"$b")
# The TTL counts from the moment the backup became ready, which is no
# later than the answer (no assumption on how long the begin took).
now=$(date +%s)
jq -e --argjson now "$now" '.ttl == 1 and .expires >= .created + 1 and
  .expires <= $now + 1' <<<"$b" >/dev/null
wait_for 10 sh -c "! curl -sS --unix-socket '$PB_API' http://localhost/v1/vms/vm1/backups/$id | grep -q '\"phase\"'"
expect_error 404 backup-not-found GET "/v1/vms/vm1/backups/$id" >/dev/null
assert_no_leftovers "$QMP_TEST_SOCK" "$dir/run"

# PATCH moves the expiry out; a too large TTL is refused.
b=$(expect 201 POST /v1/vms/vm1/backups '{"checkpoint":false,"ttl":2}')
id=$(jq -r .id <<<"$b")
p=$(expect 200 PATCH "/v1/vms/vm1/backups/$id" '{"ttl":600}')
test "$(jq '.expires - .created >= 599' <<<"$p")" = true
expect_error 422 ttl-too-large PATCH "/v1/vms/vm1/backups/$id" '{"ttl":999999}' >/dev/null
sleep 3
expect 200 GET "/v1/vms/vm1/backups/$id" | jq -e '.phase == "ready"'
# A second backup while one is active: 409, nothing changed.
expect_error 409 backup-active POST /v1/vms/vm1/backups '{"checkpoint":"c9"}' >/dev/null
expect_error 404 checkpoint-not-found GET /v1/vms/vm1/checkpoints/c9 >/dev/null

# --- SIGTERM while a backup is active ---------------------------------
kill -TERM "$PB_PID"
rc=0; wait "$PB_PID" || rc=$?
PB_PID=
test "$rc" -eq 0
assert_no_leftovers "$QMP_TEST_SOCK" "$dir/run"
test "$(jq -c .backup "$dir/state/vms/vm1.json")" = null
test "$(bitmaps "$QMP_TEST_SOCK" disk0)" = "c1:true "
run
expect 200 GET /v1/vms/vm1/checkpoints/c1 | jq -e 'all(.disks[]; .state == "ok")'

# --- kill -9 while a backup is active, then restart -------------------
guest_write "$G" guest-disk0 $((3 * M)) 4096 0x55
b=$(expect 201 POST /v1/vms/vm1/backups '{"checkpoint":"c2","since":"c1"}')
test "$(qmpcmd "$QMP_TEST_SOCK" query-block-exports | jq '[.[] | select(.id | test("^pb-"))] | length')" -eq 2
kill -9 "$PB_PID"
wait "$PB_PID" 2>/dev/null || true
PB_PID=
# What the crash left is still there...
test "$(qmpcmd "$QMP_TEST_SOCK" query-block-jobs | jq length)" -eq 2
test "$(find "$dir/run" -name 'pullback-*.qcow2' | wc -l)" -eq 2
# ...until the daemon comes back.
run
assert_no_leftovers "$QMP_TEST_SOCK" "$dir/run"
test "$(expect 200 GET /v1/vms/vm1/checkpoints | jq -c '[.checkpoints[].name]')" = '["c1","c2"]'
test "$(bitmaps "$QMP_TEST_SOCK" disk0)" = "c1:true c2:true "
# And the next incremental works, with exact maps.
b=$(expect 201 POST /v1/vms/vm1/backups '{"checkpoint":false,"since":"c1"}')
assert_dirty_map "$b" disk0 $((3 * M)):4096
expect 204 DELETE "/v1/vms/vm1/backups/$(jq -r .id <<<"$b")"
assert_no_leftovers "$QMP_TEST_SOCK" "$dir/run"

# --- a begin that fails half-way undoes everything --------------------
# failed_begin STATUS CHECKPOINT PATTERN: a directory where disk0's
# scratch file would go, so the begin fails (whoever makes the files: it
# is not pullbackd's, so it is found before anything is made); the begin
# answers STATUS scratch-exists with a message matching PATTERN, and
# leaves nothing behind and no checkpoint.
failed_begin ()
{
  local e
  mkdir "$dir/run/vms/vm1/pullback-vm1.0.qcow2"
  e=$(expect_error "$1" scratch-exists POST /v1/vms/vm1/backups "{\"checkpoint\":\"$2\"}")
  jq -e --arg p "$3" '.error.message | test($p)' <<<"$e"
  rmdir "$dir/run/vms/vm1/pullback-vm1.0.qcow2"
  assert_no_leftovers "$QMP_TEST_SOCK" "$dir/run"
  expect_error 404 checkpoint-not-found GET "/v1/vms/vm1/checkpoints/$2" >/dev/null
}
failed_begin 409 c3 "disk0"
test "$(bitmaps "$QMP_TEST_SOCK" disk0)" = "c1:true c2:true "
expect 200 GET /v1/vms/vm1 | jq -e '.backup == null'
# And the next begin works.
b=$(expect 201 POST /v1/vms/vm1/backups '{"checkpoint":false}')
expect 204 DELETE "/v1/vms/vm1/backups/$(jq -r .id <<<"$b")"
assert_no_leftovers "$QMP_TEST_SOCK" "$dir/run"

# --- QEMU makes the scratch files (scratch-create = qemu) -------------
kill_pullbackd
echo "scratch-create = qemu" > "$dir/qemu.conf"
start_pullbackd "$dir" -c "$dir/qemu.conf" --vm "vm1=$QMP_SOCK,nbd=unix:$G"
wait_vm_connected vm1
failed_begin 409 c4 "disk0: .*already exists"
# The snapshot is exact while the guest writes, and QEMU made the files.
nbdcopy "nbd+unix:///guest-disk0?socket=$G" "$dir/at.raw"
b=$(expect 201 POST /v1/vms/vm1/backups '{"checkpoint":false}')
guest_write "$G" guest-disk0 0 $M 0x77
nbdcopy "$(disk_uri "$b" disk0)" "$dir/snap.raw"
cmp "$dir/at.raw" "$dir/snap.raw"
grep -q '"execute":"blockdev-create"' "$PB_LOG"
expect 204 DELETE "/v1/vms/vm1/backups/$(jq -r .id <<<"$b")"
assert_no_leftovers "$QMP_TEST_SOCK" "$dir/run"
