#!/usr/bin/env bash
# pullback: state files that cannot be used, and state that cannot be
# written.
#  - A state file of the wrong shape or a truncated one keeps its VM
#    registered but out of service, with a status naming the file and the
#    problem; the file is never overwritten; unregistering sets it aside;
#    once fixed, SIGHUP brings the VM back.
#  - A deletion of checkpoints that a crash interrupted is finished at the
#    next start.
#  - With the state filesystem full, every change answers 500
#    state-write-failed, and what did not happen is not claimed: PATCH
#    keeps the old expiry, a checkpoint is neither created nor deleted; a
#    backup ended in QEMU is recorded once space is back; a last save that
#    fails makes the daemon exit non-zero.
# SPDX-License-Identifier: BSD-3-Clause

. "$abs_top_srcdir/tests/functions.sh"
. "$abs_top_srcdir/tests/functions-pullbackd.sh"
requires qemu-storage-daemon qemu-img jq curl sha256sum mount umount
set -e

make_tmpdir dir
Q3=$dir/qmp3.sock
start_qsd "$dir" 2 64M --chardev "socket,id=mon2,path=$Q3,server=on,wait=off" \
  --monitor chardev=mon2
qsd_writer_exports "$dir"
G=$dir/guest.sock
S=$dir/state/vms
run () { start_pullbackd "$dir" --vm "vm1=$QMP_SOCK,nbd=unix:$G" "$@"; }
run
wait_vm_connected vm1
expect 201 POST /v1/vms/vm1/checkpoints '{"name":"c1"}' >/dev/null
expect 201 POST /v1/vms "{\"name\":\"vm2\",\"qmp\":\"$Q3\",\"nbd\":\"unix:$G\"}" >/dev/null
wait_vm_connected vm2
kill_pullbackd
cp "$S/vm1.json" "$dir/vm1.good"

# --- 4. unusable state files ----------------------------------------------
printf '%s\n' '{"checkpoints":[{}]}' > "$S/vm1.json"
head -c 40 "$S/vm2.json" > "$dir/vm2.bad"; cp "$dir/vm2.bad" "$S/vm2.json"
sum1=$(sha256sum < "$S/vm1.json")
logged=$(wc -l < "$PB_LOG")
run
list=$(expect 200 GET /v1/vms)
jq -e '.vms[] | select(.name == "vm1") |
  .status == "state-error" and (.error | test("vm1.json") and test("name"))' \
  <<<"$list" >/dev/null
jq -e '.vms[] | select(.name == "vm2") |
  .status == "state-error" and (.error | test("vm2.json"))' <<<"$list" >/dev/null
expect 200 GET /v1/vms/vm1 | jq -e '.status == "state-error"' >/dev/null
curl -sS --unix-socket "$PB_API" http://localhost/metrics |
  grep -qx 'pullback_vm_out_of_service{vm="vm1"} 1'
out=$(expect_error 503 vm-state-unreadable POST /v1/vms/vm1/backups '{}')
jq -e '.error.message | test("vm1.json")' <<<"$out" >/dev/null
expect_error 503 vm-state-unreadable GET /v1/vms/vm1/checkpoints >/dev/null
expect_error 503 vm-state-unreadable POST /v1/vms/vm2/checkpoints '{}' >/dev/null
# Out of service means hands off QEMU: no connection, no cleanup.
test "$(tail -n +"$((logged + 1))" "$PB_LOG" | grep -c "VM vm1: connected" || true)" = 0
test "$(sha256sum < "$S/vm1.json")" = "$sum1"
cmp "$S/vm2.json" "$dir/vm2.bad"

# Unregistering sets the file aside, byte for byte.
expect 204 DELETE /v1/vms/vm2 >/dev/null
test ! -e "$S/vm2.json"
cmp "$S"/vm2.json.rejected-* "$dir/vm2.bad"
expect_error 404 vm-not-found GET /v1/vms/vm2 >/dev/null

# Fixed by the administrator, back after SIGHUP with its checkpoint.
cp "$dir/vm1.good" "$S/vm1.json"
kill -HUP "$PB_PID"
wait_vm_connected vm1
expect 200 GET /v1/vms/vm1/checkpoints/c1 >/dev/null
kill_pullbackd

# --- 5a. a deletion a crash interrupted -----------------------------------
expect_bitmaps () { test "$(bitmaps "$QMP_TEST_SOCK" disk0)" = "$1"; }
expect_bitmaps "c1:true "
jq '.checkpoint_deleting = {"names": ["c1"]}' "$dir/vm1.good" > "$S/vm1.json"
run
wait_vm_connected vm1
wait_for 20 sh -c "jq -e '(.checkpoints | length) == 0 and
  .checkpoint_deleting == null' '$S/vm1.json'"
expect_bitmaps ""
expect_error 404 checkpoint-not-found GET /v1/vms/vm1/checkpoints/c1 >/dev/null
kill_pullbackd

# --- 5b. a full state filesystem ------------------------------------------
requires_root
rm -rf "$dir/state"; mkdir "$dir/state"
mount -t tmpfs -o size=512k tmpfs "$dir/state" || {
  echo "$0: cannot mount a tmpfs: skipped" >&2; exit 77; }
cleanup_fn umount -l "$dir/state"
run
wait_vm_connected vm1
expect 201 POST /v1/vms/vm1/checkpoints '{"name":"c5"}' >/dev/null
b=$(expect 201 POST /v1/vms/vm1/backups '{"checkpoint":"c6","ttl":600}')
id=$(jq -r .id <<<"$b")
fill () { dd if=/dev/zero of="$dir/state/fill" bs=4096 2>/dev/null || true; }
fill
before=$(sha256sum < "$S/vm1.json")

expect_error 500 state-write-failed PATCH "/v1/vms/vm1/backups/$id" '{"ttl":900}' >/dev/null
test "$(expect 200 GET "/v1/vms/vm1/backups/$id" | jq .ttl)" = 600
expect_error 500 state-write-failed POST /v1/vms/vm1/checkpoints '{"name":"c7"}' >/dev/null
expect_error 404 checkpoint-not-found GET /v1/vms/vm1/checkpoints/c7 >/dev/null
expect_error 500 state-write-failed DELETE /v1/vms/vm1/checkpoints/c5 >/dev/null
expect 200 GET /v1/vms/vm1/checkpoints/c5 >/dev/null
expect_bitmaps "c5:true c6:true "
test "$(sha256sum < "$S/vm1.json")" = "$before"

# Ending the backup tears it down in QEMU: that happened, and is said,
# but the answer is 500 because it is not recorded yet ...
expect_error 500 state-write-failed DELETE "/v1/vms/vm1/backups/$id" >/dev/null
assert_no_leftovers "$QMP_TEST_SOCK" "$dir/run"
expect_error 404 backup-not-found GET "/v1/vms/vm1/backups/$id" >/dev/null
expect 200 GET /v1/vms/vm1 | jq -e '.state_saved == false' >/dev/null
# ... and it is written as soon as there is room.
rm -f "$dir/state/fill"
wait_for 20 sh -c "jq -e '.backup == null' '$S/vm1.json'"
expect 200 GET /v1/vms/vm1 | jq -e '.state_saved == null' >/dev/null

# A last save that fails at shutdown: exit status 1.
fill
kill -TERM "$PB_PID"
rc=0; wait "$PB_PID" || rc=$?
PB_PID=
test "$rc" -eq 1
grep -q "could not be written" "$PB_LOG"
rm -f "$dir/state/fill"
run
wait_vm_connected vm1
test "$(expect 200 GET /v1/vms/vm1/checkpoints | jq -c '[.checkpoints[].name]')" = '["c5","c6"]'
kill_pullbackd
