#!/usr/bin/env bash
# pullback: the set of VMs and the daemon around it.
#  - A VM still making its first QMP connection (a socket that accepts and
#    never answers) has a real status, and GET /metrics works meanwhile.
#  - One daemon per state directory: a second one refuses to start and
#    touches nothing; a live API socket of another daemon is never taken
#    over or removed.
#  - DELETE /v1/vms/{vm} with checkpoints: 409 unless checkpoints=delete
#    (bitmaps removed from QEMU too) or checkpoints=keep (records kept for
#    a later registration under the same name).
# SPDX-License-Identifier: BSD-3-Clause

. "$abs_top_srcdir/tests/functions.sh"
. "$abs_top_srcdir/tests/functions-pullbackd.sh"
requires qemu-storage-daemon qemu-img jq curl /usr/bin/python3
set -e

make_tmpdir dir
# A third monitor for the VMs registered through the API (QEMU serves one
# client per monitor).
Q3=$dir/qmp3.sock
start_qsd "$dir" 2 64M --chardev "socket,id=mon2,path=$Q3,server=on,wait=off" \
  --monitor chardev=mon2
qsd_writer_exports "$dir"
G=$dir/guest.sock

# A unix socket that accepts connections and never says a word.
python3 - "$dir/mute.sock" <<'PY' &
import os, socket, sys, time
s = socket.socket(socket.AF_UNIX)
s.bind(sys.argv[1]); s.listen(16)
held = []
while True:
    c, _ = s.accept()
    held.append(c)
PY
track_pid $!
wait_for 10 test -S "$dir/mute.sock"

start_pullbackd "$dir" --vm "vm1=$QMP_SOCK,nbd=unix:$G" \
  --vm "mute=$dir/mute.sock"
wait_vm_connected vm1

# --- 1. a VM that is still connecting ------------------------------------
# Until its first attempt fails (after the QMP timeout) it is
# "connecting"; after that "disconnected" with the reason.  Never null.
st=$(expect 200 GET /v1/vms | jq -r '.vms[] | select(.name == "mute") | .status')
case "$st" in
  connecting) ;;
  disconnected) grep -q "VM mute:" "$PB_LOG" ;;
  *) say_fail "status of VM mute is '$st'"; false ;;
esac
m=$(curl -sS --unix-socket "$PB_API" -w '\n%{http_code}' http://localhost/metrics)
test "$(tail -n1 <<<"$m")" = 200
grep -qx 'pullback_vm_connected{vm="mute"} 0' <<<"$m"
grep -qx 'pullback_vm_connected{vm="vm1"} 1' <<<"$m"
grep -qx 'pullback_vms 2' <<<"$m"
kill -0 "$PB_PID"

# --- 3. a second daemon on the same state directory -----------------------
expect 201 POST /v1/vms/vm1/checkpoints '{"name":"c1"}' >/dev/null
b=$(expect 201 POST /v1/vms/vm1/backups '{"checkpoint":"c2","since":"c1"}')
state_before=$(sha256sum < "$dir/state/vms/vm1.json")
rc=0
timeout 60 "$PULLBACKD" -f --state-dir "$dir/state" --run-dir "$dir/run2" \
  --listen "$dir/api2.sock" --vm "vm1=$QMP_SOCK,nbd=unix:$G" \
  >"$dir/second.log" 2>&1 || rc=$?
test "$rc" -eq 1
grep -q "another pullbackd (pid $PB_PID) uses the state directory" "$dir/second.log"
test ! -e "$dir/api2.sock"
test ! -e "$dir/run2/vms"
test "$(sha256sum < "$dir/state/vms/vm1.json")" = "$state_before"
# The first one's backup is untouched and still readable.
expect 200 GET "/v1/vms/vm1/backups/$(jq -r .id <<<"$b")" |
  jq -e '.phase == "ready"' >/dev/null
test -n "$(find "$dir/run" -name 'pullback-vm1.*.qcow2')"

# Nor on the same run directory (NBD sockets, scratch files).
rc=0
timeout 60 "$PULLBACKD" -f --state-dir "$dir/state4" --run-dir "$dir/run" \
  --listen "$dir/api4.sock" >"$dir/fourth.log" 2>&1 || rc=$?
test "$rc" -eq 1
grep -q "another pullbackd (pid $PB_PID) uses the run directory" "$dir/fourth.log"
test ! -e "$dir/api4.sock"
test ! -e "$dir/state4/vms"

# A second daemon with its own state but the first one's API socket: it
# must not unlink it or take it over.
rc=0
timeout 60 "$PULLBACKD" -f --state-dir "$dir/state3" --run-dir "$dir/run3" \
  --listen "$PB_API" >"$dir/third.log" 2>&1 || rc=$?
test "$rc" -eq 1
grep -q "Address already in use" "$dir/third.log"
test -S "$PB_API"
expect 200 GET /v1/health >/dev/null
expect 204 DELETE "/v1/vms/vm1/backups/$(jq -r .id <<<"$b")"

# A daemon removes only the socket file it made: here another one took
# the name after this one's file was removed by hand.
B_API=$dir/b.sock
"$PULLBACKD" -f --state-dir "$dir/stateB" --run-dir "$dir/runB" \
  --listen "$B_API" >"$dir/b.log" 2>&1 &
B_PID=$!
track_pid $B_PID
wait_for 10 test -S "$B_API"
rm "$B_API"
"$PULLBACKD" -f --state-dir "$dir/stateC" --run-dir "$dir/runC" \
  --listen "$B_API" >"$dir/c.log" 2>&1 &
C_PID=$!
track_pid $C_PID
wait_for 10 sh -c "curl -sS --unix-socket '$B_API' http://localhost/v1/health | jq -e .status"
kill -TERM "$B_PID"; wait "$B_PID"
test -S "$B_API"
curl -sS --unix-socket "$B_API" http://localhost/v1/health | jq -e .status >/dev/null
kill -TERM "$C_PID"; wait "$C_PID"
test ! -e "$B_API"

# --- 6. unregistering a VM that has checkpoints ---------------------------
reg () { expect 201 POST /v1/vms "{\"name\":\"$1\",\"qmp\":\"$Q3\",\"nbd\":\"unix:$G\"}" >/dev/null; wait_vm_connected "$1"; }
reg vm2
expect 201 POST /v1/vms/vm2/checkpoints '{"name":"k1"}' >/dev/null
expect 201 POST /v1/vms/vm2/checkpoints '{"name":"k2"}' >/dev/null
test "$(bitmaps "$QMP_TEST_SOCK" disk0)" = "c1:true c2:true k1:true k2:true "
out=$(expect_error 409 checkpoints-exist DELETE /v1/vms/vm2)
jq -e '.error.field == "checkpoints"' <<<"$out" >/dev/null
expect_error 400 invalid-parameter DELETE '/v1/vms/vm2?checkpoints=maybe' >/dev/null
expect 200 GET /v1/vms/vm2 >/dev/null

# keep: unregistered, records kept without the registration; not loaded
# at the next start; a new registration under the same name has them.
expect 204 DELETE '/v1/vms/vm2?checkpoints=keep' >/dev/null
expect_error 404 vm-not-found GET /v1/vms/vm2 >/dev/null
jq -e '(.registration == null) and ([.checkpoints[].name] == ["k1","k2"])' \
  "$dir/state/vms/vm2.json" >/dev/null
test "$(bitmaps "$QMP_TEST_SOCK" disk0)" = "c1:true c2:true k1:true k2:true "
kill_pullbackd
start_pullbackd "$dir" --vm "vm1=$QMP_SOCK,nbd=unix:$G"
wait_vm_connected vm1
expect_error 404 vm-not-found GET /v1/vms/vm2 >/dev/null
reg vm2
test "$(expect 200 GET /v1/vms/vm2/checkpoints | jq -c '[.checkpoints[].name]')" = '["k1","k2"]'

# delete: the bitmaps go from QEMU, then the VM and its state file.
expect 204 DELETE '/v1/vms/vm2?checkpoints=delete' >/dev/null
test "$(bitmaps "$QMP_TEST_SOCK" disk0)" = "c1:true c2:true "
test "$(bitmaps "$QMP_TEST_SOCK" disk1)" = "c1:true c2:true "
test ! -e "$dir/state/vms/vm2.json"
expect_error 404 vm-not-found GET /v1/vms/vm2 >/dev/null

# Without checkpoints no parameter is needed.
reg vm3
expect 204 DELETE /v1/vms/vm3 >/dev/null
test ! -e "$dir/state/vms/vm3.json"

# delete needs QEMU: with it gone, 503 and nothing changes; keep does
# not need it.
reg vm4
expect 201 POST /v1/vms/vm4/checkpoints '{"name":"q1"}' >/dev/null
kill -9 "$QSD_PID"
wait_for 20 sh -c "curl -sS --unix-socket '$PB_API' http://localhost/v1/vms/vm4 |
  jq -e '.status == \"disconnected\"'"
state_before=$(sha256sum < "$dir/state/vms/vm4.json")
expect_error 503 qemu-unavailable DELETE '/v1/vms/vm4?checkpoints=delete' >/dev/null
test "$(sha256sum < "$dir/state/vms/vm4.json")" = "$state_before"
expect 200 GET /v1/vms/vm4 >/dev/null
expect 204 DELETE '/v1/vms/vm4?checkpoints=keep' >/dev/null
jq -e '[.checkpoints[].name] == ["q1"]' "$dir/state/vms/vm4.json" >/dev/null

kill_pullbackd
