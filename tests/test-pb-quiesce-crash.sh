#!/usr/bin/env bash
# pullback: a guest frozen for a quiesced backup is never left frozen,
# and a guest frozen by someone else is never thawed.  A real qemu-ga
# (hermetic, as in test-qga.sh); the daemon reaches it through a socat
# proxy the test can cut, and the test hook PULLBACK_TEST_PAUSE stops
# the daemon between the freeze and the thaw:
#   - someone else's freeze: 409 guest-frozen, left frozen, no marker;
#   - the agent connection lost in the window: 502 thaw-failed, the
#     backup undone, guest_frozen shown, no new freeze; the thaw is
#     retried until the agent is back;
#   - SIGTERM in the window: the daemon thaws before it exits;
#   - SIGKILL in the window: the next start thaws the guest through the
#     agent even while QEMU is unreachable, and the marker goes.
# SPDX-License-Identifier: BSD-3-Clause

. "$abs_top_srcdir/tests/functions.sh"
. "$abs_top_srcdir/tests/functions-pullbackd.sh"
requires_root
requires_unshare_loop
requires qemu-storage-daemon qemu-img qemu-ga mkfs.ext4 jq curl socat
set -e

make_tmpdir dir
start_qga "$dir"
# Safety first: the agent sees exactly one filesystem, the loop ext4.
test "$(qmpcmd --qga "$QGA_SOCK" guest-get-fsinfo | jq -c '[.[].mountpoint]')" = '["/mnt"]'

start_qsd "$dir" 1 16M
qsd_writer_exports "$dir"
G=$dir/guest.sock
P=$dir/agent-proxy.sock
STATE=$dir/state/vms/vm1.json
PAUSE=$dir/paused

# The agent serves one client at a time: ask only while the daemon
# holds no connection to it.
status () { qmpcmd -t 5000 --qga "$QGA_SOCK" fsfreeze-status; }
is_thawed () { test "$(status)" = thawed; }
no_marker () { jq -e '.quiesce == null' "$STATE" >/dev/null; }

# start_proxy [fork]: without fork, socat serves one connection, and
# killing it cuts the daemon's.
start_proxy ()
{
  socat "UNIX-LISTEN:$P,unlink-early${1:+,$1}" "UNIX-CONNECT:$QGA_SOCK" &
  PROXY_PID=$!
  track_pid $PROXY_PID
  wait_for 10 test -S "$P"
}
stop_proxy ()
{
  kill "$PROXY_PID"
  wait "$PROXY_PID" || true
}

# begin_bg NAME BODY: POST a backup in the background; the answer goes
# to $dir/NAME, its status to $dir/NAME.status.
begin_bg ()
{
  curl -sS --unix-socket "$PB_API" -o "$dir/$1" -w '%{http_code}' \
    -H 'Content-Type: application/json' --data-binary "$2" \
    http://localhost/v1/vms/vm1/backups >"$dir/$1.status" 2>/dev/null &
  BEGIN_PID=$!
}

VM="vm1=$QMP_SOCK,nbd=unix:$G,qga=$P"
export PULLBACK_TEST_PAUSE=after-freeze PULLBACK_TEST_PAUSE_FILE=$PAUSE
start_proxy fork
start_pullbackd "$dir" --vm "$VM"
wait_vm_connected vm1

# 1. Frozen by someone else: not ours to freeze again, nor to thaw.
test "$(qmpcmd --qga "$QGA_SOCK" fsfreeze-freeze)" = 1
expect_error 409 guest-frozen POST /v1/vms/vm1/backups '{"quiesce":true}' >/dev/null
test "$(status)" = frozen
no_marker
expect 200 GET /v1/vms/vm1 | jq -e '.guest_frozen == false'
test "$(qmpcmd --qga "$QGA_SOCK" fsfreeze-thaw)" = 1

# 2. The agent connection goes inside the window.
stop_proxy
start_proxy
begin_bg b1 '{"checkpoint":"c1","quiesce":true}'
wait_for 30 test -e "$PAUSE"
# On disk before the freeze.
jq -e '.quiesce.state == "freezing" and (.quiesce.backup | startswith("bk-"))' "$STATE"
stop_proxy
rm "$PAUSE"
wait "$BEGIN_PID" || true
test "$(cat "$dir/b1.status")" = 502
jq -e '.error.code == "thaw-failed"' "$dir/b1"
test "$(status)" = frozen
expect 200 GET /v1/vms/vm1 |
  jq -e '.guest_frozen == true and (.thaw_error | type == "string") and .backup == null'
jq -e '.quiesce.state == "freezing"' "$STATE"
# The backup was undone, its checkpoint too.
expect_error 404 checkpoint-not-found GET /v1/vms/vm1/checkpoints/c1 >/dev/null
# No new freeze over a guest we could not thaw.
expect_error 409 thaw-pending POST /v1/vms/vm1/backups '{"quiesce":true}' >/dev/null
# The agent is back: the periodic retry thaws, then forgets.
start_proxy fork
wait_for 60 is_thawed
wait_for 10 no_marker
expect 200 GET /v1/vms/vm1 | jq -e '.guest_frozen == false and .thaw_error == null'
timeout 10 sh -c "echo ok > '$QGA_MNT/after-retry'"
assert_no_leftovers "$QMP_TEST_SOCK" "$dir/run"

# 3. SIGTERM inside the window: thawed before the daemon exits.
begin_bg b2 '{"checkpoint":"c2","quiesce":true}'
wait_for 30 test -e "$PAUSE"
kill -TERM "$PB_PID"
rm "$PAUSE"
wait "$PB_PID"
PB_PID=
wait "$BEGIN_PID" || true
is_thawed
no_marker

# 4. SIGKILL inside the window: nothing thaws the guest until the next
# start, which does so through the agent even without QEMU.
start_pullbackd "$dir" --vm "$VM"
wait_vm_connected vm1
begin_bg b3 '{"checkpoint":"c3","quiesce":true}'
wait_for 30 test -e "$PAUSE"
kill -9 "$PB_PID"
wait "$PB_PID" || true
PB_PID=
wait "$BEGIN_PID" || true
rm "$PAUSE"
unset PULLBACK_TEST_PAUSE PULLBACK_TEST_PAUSE_FILE
test "$(status)" = frozen
jq -e '.quiesce.state == "freezing"' "$STATE"
start_pullbackd "$dir" --vm "vm1=$dir/no-qemu.sock,nbd=unix:$G,qga=$P"
wait_for 60 is_thawed
wait_for 10 no_marker
expect 200 GET /v1/vms/vm1 | jq -e '.guest_frozen == false and .status == "disconnected"'
timeout 10 sh -c "echo ok > '$QGA_MNT/after-crash'"
# With QEMU again, what the crash left there goes too.
kill_pullbackd
start_pullbackd "$dir" --vm "$VM"
wait_vm_connected vm1
expect_error 404 checkpoint-not-found GET /v1/vms/vm1/checkpoints/c3 >/dev/null
assert_no_leftovers "$QMP_TEST_SOCK" "$dir/run"
# And a quiesced backup works as before.
b=$(expect 201 POST /v1/vms/vm1/backups '{"checkpoint":"c4","quiesce":true}')
is_thawed
no_marker
expect 204 DELETE "/v1/vms/vm1/backups/$(jq -r .id <<<"$b")" >/dev/null
