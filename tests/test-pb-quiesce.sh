#!/usr/bin/env bash
# pullback: quiesced backups.  A real qemu-ga (hermetic: it can only see a
# loop-mounted ext4) freezes the guest filesystems around the snapshot;
# the backup reports how long; the guest is thawed after.  An agent that
# does not answer fails the begin and changes nothing.
# SPDX-License-Identifier: BSD-3-Clause

. "$abs_top_srcdir/tests/functions.sh"
. "$abs_top_srcdir/tests/functions-pullbackd.sh"
requires_root
requires_unshare_loop
requires qemu-storage-daemon qemu-img qemu-ga mkfs.ext4 jq curl
set -e

make_tmpdir dir
start_qga "$dir"
# Safety first: the agent sees exactly one filesystem, the loop ext4.
test "$(qmpcmd --qga "$QGA_SOCK" guest-get-fsinfo | jq -c '[.[].mountpoint]')" = '["/mnt"]'

start_qsd "$dir" 1 16M
qsd_writer_exports "$dir"
G=$dir/guest.sock
start_pullbackd "$dir" --vm "vm1=$QMP_SOCK,nbd=unix:$G,qga=$QGA_SOCK"
wait_vm_connected vm1

b=$(expect 201 POST /v1/vms/vm1/backups '{"checkpoint":"c1","quiesce":true}')
jq -e '.freeze_ms | type == "number" and . >= 0' <<<"$b"
test "$(qmpcmd --qga "$QGA_SOCK" fsfreeze-status)" = thawed
# The agent did freeze and thaw (its log says so).
grep -q '"execute":"guest-fsfreeze-freeze"' "/proc/$QGA_PID/root/run/qga.log"
grep -q 'logging re-enabled due to filesystem unfreeze' "/proc/$QGA_PID/root/run/qga.log"
echo data > "$QGA_MNT/after-thaw"
expect 204 DELETE "/v1/vms/vm1/backups/$(jq -r .id <<<"$b")" >/dev/null

# Without a working agent: 502, no backup, no checkpoint, no leftovers.
# (The same QEMU as vm2: a QMP monitor serves one client at a time.)
kill_pullbackd
start_pullbackd "$dir" --vm "vm2=$QMP_SOCK,nbd=unix:$G,qga=$dir/no-agent.sock"
wait_vm_connected vm2
expect_error 502 quiesce-failed POST /v1/vms/vm2/backups '{"checkpoint":"q1","quiesce":true}' >/dev/null
expect_error 404 checkpoint-not-found GET /v1/vms/vm2/checkpoints/q1 >/dev/null
test "$(bitmaps "$QMP_TEST_SOCK" disk0)" = "c1:true "
assert_no_leftovers "$QMP_TEST_SOCK" "$dir/run"
