#!/usr/bin/env bash
# pullback: a state directory written by the release before the typed
# checkpoint records (e3758a7) loads and works.
# tests/unit/data/state-e3758a7-vm1.json is the file that pullbackd wrote
# after: checkpoints c1, c2, c3; c1 deleted; a backup since c3 making c4;
# kill -9 (so the ready backup is left for recovery).  Its run directory
# is @RUN@ here.  The bitmaps it made live in the images, so they are
# made again in this QEMU, with the leftovers of the backup.
#  - The leftovers are removed by the old record.
#  - The checkpoints are listed as recorded; paging from the deleted c1
#    still works.
#  - An incremental since the old c4 holds exactly the writes after it.
#  - The file written now keeps the old records as they were.
# SPDX-License-Identifier: BSD-3-Clause

. "$abs_top_srcdir/tests/functions.sh"
. "$abs_top_srcdir/tests/functions-pullbackd.sh"
requires qemu-storage-daemon qemu-img nbdsh jq curl /usr/bin/python3
set -e

OLD=$abs_top_srcdir/tests/unit/data/state-e3758a7-vm1.json
make_tmpdir dir
start_qsd "$dir" 2 64M
qsd_writer_exports "$dir"
G=$dir/guest.sock
for d in disk0 disk1; do
  for c in c2 c3 c4; do
    qmpcmd "$QMP_TEST_SOCK" block-dirty-bitmap-add \
      "{\"node\":\"$d\",\"name\":\"$c\",\"persistent\":true}" >/dev/null
  done
done
qmpcmd "$QMP_TEST_SOCK" block-dirty-bitmap-add \
  '{"node":"disk0","name":"backup-disk0","disabled":true}' >/dev/null
mkdir -p "$dir/state/vms" "$dir/run/vms/vm1"
qemu-img create -q -f qcow2 "$dir/run/vms/vm1/pullback-vm1.0.qcow2" 64M
sed "s|@RUN@|$dir/run|g" "$OLD" > "$dir/state/vms/vm1.json"

start_pullbackd "$dir" --vm "vm1=$QMP_SOCK,nbd=unix:$G"
wait_vm_connected vm1
expect 200 GET /v1/vms/vm1 |
  jq -e '.status == "connected" and .backup == null and .checkpoints == 3
         and .cleanup_pending == 0' >/dev/null
assert_no_leftovers "$QMP_TEST_SOCK" "$dir/run"

expect 200 GET /v1/vms/vm1/checkpoints | jq -e '
  [.checkpoints[] | "\(.name):\(.parent)"] == ["c2:null", "c3:c2", "c4:c3"]
  and all(.checkpoints[].disks[]; .state == "ok" and .granularity == 65536)
  and .next == null' >/dev/null
expect 200 GET "/v1/vms/vm1/checkpoints?after=c1&limit=1" |
  jq -e '[.checkpoints[].name] == ["c2"] and .next == "c2"' >/dev/null
expect 200 GET /v1/vms/vm1/checkpoints/c3 |
  jq -e '.created > 0 and [.disks[].name] == ["disk0", "disk1"]' >/dev/null

guest_write "$G" guest-disk0 0 65536 0x41
b=$(expect 201 POST /v1/vms/vm1/backups '{"checkpoint":"c5","since":"c4"}')
jq -e '[.disks[].mode] == ["incremental", "incremental"]' <<<"$b" >/dev/null
assert_dirty_map "$b" disk0 0:65536
assert_dirty_map "$b" disk1
expect 204 DELETE "/v1/vms/vm1/backups/$(jq -r .id <<<"$b")"
assert_no_leftovers "$QMP_TEST_SOCK" "$dir/run"

kill_pullbackd
jq -e --slurpfile old "$OLD" '
  .version == 1 and .backup == null and .cleanup == []
  and .checkpoints[0:3] == $old[0].checkpoints
  and .checkpoints[3].name == "c5" and .checkpoints[3].parent == "c4"
  and .deleted == $old[0].deleted
  and (has("checkpoint_pending") | not)
  and (has("checkpoint_deleting") | not)' "$dir/state/vms/vm1.json" >/dev/null
