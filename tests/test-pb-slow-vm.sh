#!/usr/bin/env bash
# pullback: one stuck QEMU blocks only its own VM (DESIGN section 3).
# VM "slow" has a QMP socket that accepts and never answers, so its
# owner thread is stuck; while a DELETE of it waits for that thread,
# requests for VM "fast" (a GET, a backup begin and end, the VM list) are
# answered.  Then the DELETE completes once "slow" lets go.
# SPDX-License-Identifier: BSD-3-Clause

. "$abs_top_srcdir/tests/functions.sh"
. "$abs_top_srcdir/tests/functions-pullbackd.sh"
requires qemu-storage-daemon qemu-img jq curl /usr/bin/python3
set -e

make_tmpdir dir
start_qsd "$dir" 1 16M
qsd_writer_exports "$dir"
start_pullbackd "$dir" --vm "fast=$QMP_SOCK,nbd=unix:$dir/guest.sock"
wait_vm_connected fast

# A QMP socket that accepts connections, holds them and says nothing.
/usr/bin/python3 -c '
import socket, sys
s = socket.socket(socket.AF_UNIX)
s.bind(sys.argv[1])
s.listen(8)
held = []
while True:
    c, _ = s.accept()
    held.append(c)
    with open(sys.argv[2], "a") as f:
        f.write("accepted\n")
' "$dir/slow.sock" "$dir/slow.accepted" &
SLOW_PID=$!
track_pid $SLOW_PID
kill_slow () { kill "$SLOW_PID" 2>/dev/null || true; wait "$SLOW_PID" 2>/dev/null || true; }
cleanup_fn kill_slow
wait_for 10 test -S "$dir/slow.sock"

expect 201 POST /v1/vms "{\"name\":\"slow\",\"qmp\":\"$dir/slow.sock\"}" >/dev/null
# Its owner thread now waits for a QMP greeting that never comes.
wait_for 10 test -s "$dir/slow.accepted"

# DELETE /v1/vms/slow must wait for that thread; run it in the background.
curl -sS --unix-socket "$PB_API" -X DELETE -o "$dir/delete.out" \
  -w '%{http_code}' http://localhost/v1/vms/slow >"$dir/delete.status" &
DEL_PID=$!
track_pid $DEL_PID
wait_for 10 grep -q 'VM slow: unregistering' "$PB_LOG"

# Meanwhile the other VM is served.  (curl in the background, so a
# blocked daemon makes wait_for fail rather than the test hang.)
curl -sS --unix-socket "$PB_API" -o "$dir/get.out" -w '%{http_code}' \
  http://localhost/v1/vms/fast >"$dir/get.status" &
GET_PID=$!
track_pid $GET_PID
wait_for 20 sh -c "! kill -0 $GET_PID"
test "$(cat "$dir/get.status")" = 200
jq -e '.name == "fast" and .status == "connected"' "$dir/get.out"
b=$(expect 201 POST /v1/vms/fast/backups '{"checkpoint":false}')
expect 204 DELETE "/v1/vms/fast/backups/$(jq -r .id <<<"$b")" >/dev/null
expect 200 GET /v1/vms | jq -e '[.vms[].name] | index("fast") != null'
# ... and the DELETE is still waiting for "slow".
kill -0 "$DEL_PID"
test ! -s "$dir/delete.status"

# Once the socket goes away, the owner thread moves on and the DELETE ends.
kill_slow
wait_for 60 sh -c "! kill -0 $DEL_PID"
test "$(cat "$dir/delete.status")" = 204
expect_error 404 vm-not-found GET /v1/vms/slow >/dev/null
test ! -e "$dir/state/vms/slow.json"
test "$(expect 200 GET /v1/vms | jq -c '[.vms[].name]')" = '["fast"]'
