#!/usr/bin/env bash
# pullback: signals and reloads.
#  - SIGHUP applies a changed qmp = of a configured VM (the VM restarts
#    with its new settings) when it is idle; with an active backup it stays
#    as it is and the log says why, as DELETE /v1/vms/{vm} would refuse
#    it.  The same rule for a VM removed from the configuration: it goes
#    only once its backup has ended.
#  - SIGTERM while a backup begins: the client gets 503, the backup and
#    its checkpoint are undone, and the daemon exits cleanly.
# SPDX-License-Identifier: BSD-3-Clause

. "$abs_top_srcdir/tests/functions.sh"
. "$abs_top_srcdir/tests/functions-pullbackd.sh"
requires qemu-storage-daemon qemu-img jq curl
set -e

make_tmpdir dir
Q3=$dir/qmp3.sock
start_qsd "$dir" 1 64M --chardev "socket,id=mon2,path=$Q3,server=on,wait=off" \
  --monitor chardev=mon2
conf () { printf '[vm a]\nqmp = %s\n' "$1" > "$dir/run.conf"; }
conf "$QMP_SOCK"
start_pullbackd "$dir" -c "$dir/run.conf"
wait_vm_connected a
vm_qmp () { curl -sS --unix-socket "$PB_API" http://localhost/v1/vms/a | jq -r .qmp; }

# An idle VM takes its new qmp = at once.
conf "$Q3"
kill -HUP "$PB_PID"
wait_for 20 sh -c "test \"\$(curl -sS --unix-socket '$PB_API' http://localhost/v1/vms/a | jq -r '.qmp + \" \" + .status')\" = '$Q3 connected'"
expect 201 POST /v1/vms/a/checkpoints '{"name":"c1"}' >/dev/null

# With a backup active, neither a change nor a removal is applied.
b=$(expect 201 POST /v1/vms/a/backups '{"checkpoint":"c2"}')
id=$(jq -r .id <<<"$b")
conf "$QMP_SOCK"
n=$(grep -c "stays as it was" "$PB_LOG" || true)
kill -HUP "$PB_PID"
wait_for 20 sh -c "test \$(grep -c 'stays as it was' '$PB_LOG') -gt $n"
grep "VM a stays as it was" "$PB_LOG" | tail -n1 | grep -q "active backup"
test "$(vm_qmp)" = "$Q3"
expect 200 GET "/v1/vms/a/backups/$id" | jq -e '.phase == "ready"' >/dev/null
: > "$dir/run.conf"
n=$(grep -c "stays as it was" "$PB_LOG" || true)
kill -HUP "$PB_PID"
wait_for 20 sh -c "test \$(grep -c 'stays as it was' '$PB_LOG') -gt $n"
expect 200 GET "/v1/vms/a/backups/$id" | jq -e '.phase == "ready"' >/dev/null
# Once the backup has ended, the next reload removes it.
expect 204 DELETE "/v1/vms/a/backups/$id" >/dev/null
kill -HUP "$PB_PID"
wait_for 20 sh -c "curl -sS --unix-socket '$PB_API' http://localhost/v1/vms/a | jq -e '.error.code == \"vm-not-found\"'"
# Its checkpoints are kept (a configured VM's state stays).
jq -e '[.checkpoints[].name] == ["c1","c2"]' "$dir/state/vms/a.json" >/dev/null

# --- SIGTERM in the middle of a begin -------------------------------------
conf "$QMP_SOCK"
kill -HUP "$PB_PID"
wait_vm_connected a
# QEMU stops answering: the begin waits inside its first QMP command.
kill -STOP "$QSD_PID"
cleanup_fn kill -CONT "$QSD_PID"
sent=$(grep -c ' -> ' "$PB_LOG" || true)
curl -sS --unix-socket "$PB_API" -o "$dir/begin.out" -w '%{http_code}' \
  -H 'Content-Type: application/json' -d '{"checkpoint":"c3"}' \
  http://localhost/v1/vms/a/backups > "$dir/begin.status" 2>"$dir/begin.err" &
curl_pid=$!
wait_for 20 sh -c "test \$(grep -c ' -> ' '$PB_LOG') -gt $sent"
kill -TERM "$PB_PID"
wait_for 20 grep -q "signal 15" "$PB_LOG"
kill -CONT "$QSD_PID"
wait "$curl_pid"
test "$(cat "$dir/begin.status")" = 503
jq -e '.error.code == "shutting-down"' "$dir/begin.out" >/dev/null
rc=0; wait "$PB_PID" || rc=$?
PB_PID=
test "$rc" -eq 0
assert_no_leftovers "$QMP_TEST_SOCK" "$dir/run"
test "$(bitmaps "$QMP_TEST_SOCK" disk0)" = "c1:true c2:true "
jq -e '([.checkpoints[].name] == ["c1","c2"]) and .backup == null' \
  "$dir/state/vms/a.json" >/dev/null
