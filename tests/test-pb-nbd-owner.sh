#!/usr/bin/env bash
# pullback: whose NBD server is it?  pullbackd never stops a server it did
# not start (DESIGN section 7), even when a socket file of its own was
# left in its run directory: by a QEMU killed with -9 during a backup,
# or by anything else.  Such a file is removed when nobody answers on it;
# a QEMU that runs someone else's server (qemu-storage-daemon
# --nbd-server, or one the test started over QMP) keeps it, with or
# without exports, and a backup is refused with 409 nbd-server-busy.  A
# server of pullbackd's own that still answers (pullbackd killed with -9
# during a backup) is taken back and stopped once idle.
# SPDX-License-Identifier: BSD-3-Clause

. "$abs_top_srcdir/tests/functions.sh"
. "$abs_top_srcdir/tests/functions-pullbackd.sh"
requires qemu-storage-daemon qemu-img nbdinfo jq curl /usr/bin/python3
set -e

make_tmpdir dir
F=$dir/foreign.sock
sock=$dir/run/vms/vm1/nbd.sock
start_qsd "$dir" 1 16M
start_pullbackd "$dir" --vm "vm1=$QMP_SOCK"
wait_vm_connected vm1

# foreign_alive: the server the test started answers on its socket.
foreign_alive () { nbdinfo --list "nbd+unix://?socket=$F" >/dev/null; }
# exports: the ids of QEMU's exports, sorted.
exports () { qmpcmd "$QMP_TEST_SOCK" query-block-exports | jq -c '[.[].id] | sort'; }

# --- QEMU killed with -9 during a backup, back with its own server -----
b=$(expect 201 POST /v1/vms/vm1/backups '{"checkpoint":false}')
id=$(jq -r .id <<<"$b")
test "$(disk_uri "$b" disk0)" = "nbd+unix:///disk0?socket=$sock"
nbdinfo "$(disk_uri "$b" disk0)" >/dev/null
kill -9 "$QSD_PID"
wait "$QSD_PID" 2>/dev/null || true
wait_for 10 sh -c "curl -sS --unix-socket '$PB_API' http://localhost/v1/vms/vm1/backups/$id | grep -q failed"
# QEMU's socket file outlived it.
test -S "$sock"
fails nbdinfo --list "nbd+unix://?socket=$sock"

start_qsd "$dir" 1 16M --nbd-server "addr.type=unix,addr.path=$F"
foreign_alive
wait_vm_connected vm1
# Connected means recovered: the foreign server runs, the dead file is
# gone.
foreign_alive
test ! -e "$sock"
grep -q "VM vm1: removed stale NBD socket $sock" "$PB_LOG"
expect 204 DELETE "/v1/vms/vm1/backups/$id"
expect_error 409 nbd-server-busy POST /v1/vms/vm1/backups '{"checkpoint":false}' >/dev/null
foreign_alive
test ! -e "$sock"
assert_no_leftovers "$QMP_TEST_SOCK" "$dir/run"

# --- a stale file made by hand; the foreign server has an export -------
qmpcmd "$QMP_TEST_SOCK" block-export-add \
  '{"type":"nbd","id":"other-disk0","node-name":"disk0","name":"other-disk0"}' >/dev/null
kill_pullbackd
/usr/bin/python3 -c '
import socket, sys
s = socket.socket(socket.AF_UNIX)
s.bind(sys.argv[1])
s.close()
' "$sock"
test -S "$sock"
start_pullbackd "$dir" --vm "vm1=$QMP_SOCK"
wait_vm_connected vm1
test ! -e "$sock"
# Not taken for ours: no URI on a dead socket, the export is untouched.
expect_error 409 nbd-server-busy POST /v1/vms/vm1/backups '{"checkpoint":false}' >/dev/null
foreign_alive
test "$(exports)" = '["other-disk0"]'
nbdinfo "nbd+unix:///other-disk0?socket=$F" >/dev/null
test ! -e "$sock"
assert_no_leftovers "$QMP_TEST_SOCK" "$dir/run"

# --- pullbackd killed with -9 while its own server runs ----------------
qmpcmd "$QMP_TEST_SOCK" nbd-server-stop >/dev/null
b=$(expect 201 POST /v1/vms/vm1/backups '{"checkpoint":false}')
test "$(disk_uri "$b" disk0)" = "nbd+unix:///disk0?socket=$sock"
nbdinfo "$(disk_uri "$b" disk0)" >/dev/null
kill -9 "$PB_PID"
wait "$PB_PID" 2>/dev/null || true
PB_PID=
nbdinfo "$(disk_uri "$b" disk0)" >/dev/null
start_pullbackd "$dir" --vm "vm1=$QMP_SOCK"
wait_vm_connected vm1
# Taken back: its backup's export removed, then the idle server stopped.
assert_no_leftovers "$QMP_TEST_SOCK" "$dir/run"
test "$(exports)" = '[]'
test ! -e "$sock"
fails nbdinfo --list "nbd+unix://?socket=$sock"
# And pullbackd starts it again for the next backup.
b=$(expect 201 POST /v1/vms/vm1/backups '{"checkpoint":false}')
nbdinfo "$(disk_uri "$b" disk0)" >/dev/null
expect 204 DELETE "/v1/vms/vm1/backups/$(jq -r .id <<<"$b")"
test ! -e "$sock"
assert_no_leftovers "$QMP_TEST_SOCK" "$dir/run"
