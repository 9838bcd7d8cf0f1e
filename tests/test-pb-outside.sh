#!/usr/bin/env bash
# pullback: somebody else touches a backup's QEMU objects.  A cancelled
# copy-before-write job would let the export serve the live disk, so the
# backup is ended at once (failed, job-ended) and its exports cut off; an
# export deleted by hand ends it too (export-deleted).  A checkpoint
# whose creation was started but never recorded (a crash between the
# transaction and the state file) has its bitmaps removed at the next
# start, and is not a checkpoint.
# SPDX-License-Identifier: BSD-3-Clause

. "$abs_top_srcdir/tests/functions.sh"
. "$abs_top_srcdir/tests/functions-pullbackd.sh"
requires qemu-storage-daemon qemu-img nbdinfo jq curl /usr/bin/python3
set -e

make_tmpdir dir
G=$dir/guest.sock
start_qsd "$dir" 2 64M
qsd_writer_exports "$dir"
start_pullbackd "$dir" --vm "vm1=$QMP_SOCK,nbd=unix:$G"
wait_vm_connected vm1

failed_with () # ID REASON
{
  wait_for 10 sh -c "curl -sS --unix-socket '$PB_API' http://localhost/v1/vms/vm1/backups/$1 | jq -e '.phase == \"failed\"' >/dev/null"
  expect 200 GET "/v1/vms/vm1/backups/$1" | jq -e --arg r "$2" '.reason == $r'
}

# The job of disk0 is cancelled behind pullbackd's back.
b=$(expect 201 POST /v1/vms/vm1/backups '{"checkpoint":"c1"}')
id=$(jq -r .id <<<"$b")
uri=$(disk_uri "$b" disk1)
nbdinfo --size "$uri" >/dev/null
qmpcmd "$QMP_TEST_SOCK" block-job-cancel '{"device":"pb-job-0","force":true}' >/dev/null
failed_with "$id" job-ended
grep -q 'BLOCK_JOB_CANCELLED for pb-job-0 of disk disk0, not by pullbackd' "$PB_LOG"
fails nbdinfo --size "$uri"
assert_no_leftovers "$QMP_TEST_SOCK" "$dir/run"
# The checkpoint was made with the snapshot and stays.
expect 200 GET /v1/vms/vm1/checkpoints/c1 | jq -e 'all(.disks[]; .state == "ok")'
expect 204 DELETE "/v1/vms/vm1/backups/$id"

# An export deleted by hand.
b=$(expect 201 POST /v1/vms/vm1/backups '{"checkpoint":false}')
id=$(jq -r .id <<<"$b")
qmpcmd "$QMP_TEST_SOCK" block-export-del '{"id":"pb-exp-1","mode":"hard"}' >/dev/null
failed_with "$id" export-deleted
assert_no_leftovers "$QMP_TEST_SOCK" "$dir/run"
expect 204 DELETE "/v1/vms/vm1/backups/$id"

# A checkpoint creation the daemon recorded as pending, then crashed:
# the bitmaps QEMU has under that name go at the next start.
kill -9 "$PB_PID"; wait "$PB_PID" 2>/dev/null || true; PB_PID=
for d in disk0 disk1; do
  qmpcmd "$QMP_TEST_SOCK" block-dirty-bitmap-add \
    "{\"node\":\"$d\",\"name\":\"c2\",\"persistent\":true}" >/dev/null
done
jq '.checkpoint_pending = {"name": "c2", "disks": [{"disk": "disk0", "node": "disk0", "bitmap": "c2"}, {"disk": "disk1", "node": "disk1", "bitmap": "c2"}]}' \
  "$dir/state/vms/vm1.json" > "$dir/state.tmp"
mv "$dir/state.tmp" "$dir/state/vms/vm1.json"
start_pullbackd "$dir" --vm "vm1=$QMP_SOCK,nbd=unix:$G"
wait_vm_connected vm1
wait_for 10 sh -c "! jq -e .checkpoint_pending '$dir/state/vms/vm1.json' >/dev/null"
test "$(bitmaps "$QMP_TEST_SOCK" disk0)" = "c1:true "
test "$(bitmaps "$QMP_TEST_SOCK" disk1)" = "c1:true "
expect_error 404 checkpoint-not-found GET /v1/vms/vm1/checkpoints/c2 >/dev/null
# The name is free again.
expect 201 POST /v1/vms/vm1/checkpoints '{"name":"c2"}' >/dev/null
test "$(bitmaps "$QMP_TEST_SOCK" disk0)" = "c1:true c2:true "
jq -e 'has("checkpoint_pending") | not' "$dir/state/vms/vm1.json"
kill_pullbackd
