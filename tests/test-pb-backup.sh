#!/usr/bin/env bash
# pullback: full, incremental and differential backups of a two-disk VM
# (qemu-storage-daemon) while the guest keeps writing.  Oracles: the bytes
# of each export equal the disk at the begin instant; the dirty map equals
# exactly the clusters written between the begins; full + incremental in a
# qcow2 chain equals the disk at the second begin (qemu-img compare).
# SPDX-License-Identifier: BSD-3-Clause

. "$abs_top_srcdir/tests/functions.sh"
. "$abs_top_srcdir/tests/functions-pullbackd.sh"
requires qemu-storage-daemon qemu-img qemu-nbd nbdcopy nbdinfo jq curl /usr/bin/python3
set -e

make_tmpdir dir
start_qsd "$dir" 2 64M
qsd_writer_exports "$dir"
G=$dir/guest.sock
M=1048576

snap () { # NAME: copy both live disks (the oracle for a begin instant)
  for d in disk0 disk1; do
    nbdcopy "nbd+unix:///guest-$d?socket=$G" "$dir/$1-$d.raw"
  done
}

guest_write "$G" guest-disk0 0 $M 0x11
guest_write "$G" guest-disk1 $((8 * M)) $M 0x22
guest_write "$G" guest-disk1 $((60 * M)) 4096 0x23

start_pullbackd "$dir" --vm "vm1=$QMP_SOCK,nbd=unix:$G"
wait_vm_connected vm1

# --- full backup, creating c1 ------------------------------------------
snap at1
n0=$(wc -l < "$PB_LOG")
b1=$(expect 201 POST /v1/vms/vm1/backups '{"checkpoint":"c1"}')
id1=$(jq -r .id <<<"$b1")
# query-named-block-nodes (its answer grows with the VM) once for the
# disks and their bitmaps, once for the new checkpoint's granularity.
test "$(tail -n +$((n0 + 1)) "$PB_LOG" | grep -c '"execute":"query-named-block-nodes"')" -eq 2
test "$(jq -r .phase <<<"$b1")" = ready
# The scratch files were written by pullbackd: each file node was added
# inside its overlay's blockdev-add (one command per disk), as recorded.
jq -e '.backup.scratch_nested == true' "$dir/state/vms/vm1.json"
test "$(grep -c '"execute":"blockdev-add"' "$PB_LOG")" -eq 2
# QMP runs with the oob capability (QEMU reads the next command while it
# runs one), and a scratch that cannot outgrow its share of the free
# space (a 64 MiB disk, at least 1 GiB free each) gets no write threshold.
grep -q '"execute":"qmp_capabilities",[^{]*"arguments":{"enable":\["oob"\]}' "$PB_LOG"
if [ "$(df -P -k "$dir/run" | awk 'NR == 2 {print $4}')" -gt $((2 * 1024 * 1024)) ]; then
  test "$(grep -c '"execute":"block-set-write-threshold"' "$PB_LOG")" -eq 0
fi
test "$(disk_mode "$b1" disk0)" = full
test "$(disk_ctx "$b1" disk0)" = null
# While it is ready, the VM, the VM list and /metrics show it.
expect 200 GET /v1/vms/vm1 | jq -e --arg id "$id1" '.backup == $id'
expect 200 GET /v1/vms |
  jq -e --arg id "$id1" '.vms[0].backup == {"id": $id, "phase": "ready"}'
curl -sS --unix-socket "$PB_API" http://localhost/metrics |
  grep -qx 'pullback_vm_backup_active{vm="vm1"} 1'

# The guest goes on writing, over old data and new places (W1).
guest_write "$G" guest-disk0 0 65536 0xa1
guest_write "$G" guest-disk0 $((16 * M)) 65536 0xa2
guest_write "$G" guest-disk1 $((8 * M + 32768)) 4096 0xa3
guest_write "$G" guest-disk1 $((40 * M)) $((3 * M)) 0xa4

for d in disk0 disk1; do
  nbdcopy "$(disk_uri "$b1" $d)" "$dir/full-$d.raw"
  cmp "$dir/at1-$d.raw" "$dir/full-$d.raw"
done
# The exports are read-only: a client cannot change the snapshot.
nbdinfo --json "$(disk_uri "$b1" disk0)" | jq -e '.exports[0].is_read_only == true'
fails nbdcopy "$dir/at1-disk0.raw" "$(disk_uri "$b1" disk0)"
# ...while the live disk has the new data.
nbdcopy "nbd+unix:///guest-disk0?socket=$G" "$dir/live-disk0.raw"
test "$(od -An -tx1 -N1 "$dir/live-disk0.raw" | tr -d ' ')" = a1
expect 200 GET "/v1/vms/vm1/backups/$id1" | jq -e '.scratch_bytes > 0'
expect 204 DELETE "/v1/vms/vm1/backups/$id1"
expect_error 404 backup-not-found GET "/v1/vms/vm1/backups/$id1"
assert_no_leftovers "$QMP_TEST_SOCK" "$dir/run"
test "$(bitmaps "$QMP_TEST_SOCK" disk0)" = "c1:true "

# --- incremental since c1, creating c2 ----------------------------------
snap at2
b2=$(expect 201 POST /v1/vms/vm1/backups '{"checkpoint":"c2","since":"c1"}')
id2=$(jq -r .id <<<"$b2")
for d in disk0 disk1; do
  test "$(disk_mode "$b2" $d)" = incremental
  test "$(disk_ctx "$b2" $d)" = "qemu:dirty-bitmap:backup-$d"
done
# W2, after the second begin: must not show in this backup.
guest_write "$G" guest-disk0 $((32 * M)) 65536 0xb1
guest_write "$G" guest-disk1 0 4096 0xb2

assert_dirty_map "$b2" disk0 0:65536 $((16 * M)):65536
assert_dirty_map "$b2" disk1 $((8 * M + 32768)):4096 $((40 * M)):$((3 * M))

# full + incremental as a qcow2 chain == the disks at the second begin.
for d in disk0 disk1; do
  assert_chain "$dir" $d "$dir/full-$d.raw" "$(disk_uri "$b2" $d)" "$dir/at2-$d.raw"
done
expect 204 DELETE "/v1/vms/vm1/backups/$id2"
assert_no_leftovers "$QMP_TEST_SOCK" "$dir/run"

# --- differential since c1 (c2 exists), no new checkpoint ----------------
guest_write "$G" guest-disk0 $((48 * M)) 8192 0xc1
snap at3
b3=$(expect 201 POST /v1/vms/vm1/backups '{"checkpoint":null,"since":"c1"}')
test "$(jq -r .checkpoint <<<"$b3")" = null
assert_dirty_map "$b3" disk0 0:65536 $((16 * M)):65536 $((32 * M)):65536 $((48 * M)):8192
assert_dirty_map "$b3" disk1 0:4096 $((8 * M + 32768)):4096 $((40 * M)):$((3 * M))
for d in disk0 disk1; do
  qemu-img create -q -f qcow2 -b "$dir/base-$d.qcow2" -F qcow2 "$dir/diff-$d.qcow2"
  PATH="/usr/bin:$PATH" "$NBD_DIRTY" apply "$(disk_uri "$b3" $d)" \
    "qemu:dirty-bitmap:backup-$d" "$dir/diff-$d.qcow2"
  qemu-img compare -f qcow2 -F raw "$dir/diff-$d.qcow2" "$dir/at3-$d.raw"
done
expect 204 DELETE "/v1/vms/vm1/backups/$(jq -r .id <<<"$b3")"
assert_no_leftovers "$QMP_TEST_SOCK" "$dir/run"

# The checkpoints: c1 then c2, both recording on both disks.
cps=$(expect 200 GET /v1/vms/vm1/checkpoints)
test "$(jq -c '[.checkpoints[] | [.name, .parent]]' <<<"$cps")" = '[["c1",null],["c2","c1"]]'
test "$(jq -r '[.checkpoints[].disks[].state] | unique | join(",")' <<<"$cps")" = ok
test "$(bitmaps "$QMP_TEST_SOCK" disk1)" = "c1:true c2:true "

# The counters and gauges of GET /metrics (Prometheus text).
m=$(curl -sS --unix-socket "$PB_API" http://localhost/metrics)
grep -qx 'pullback_vms 1' <<<"$m"
grep -qx 'pullback_vm_connected{vm="vm1"} 1' <<<"$m"
grep -qx 'pullback_vm_checkpoints{vm="vm1"} 2' <<<"$m"
grep -qx 'pullback_vm_backup_active{vm="vm1"} 0' <<<"$m"
grep -qx 'pullback_backups_begun_total 3' <<<"$m"
grep -qx 'pullback_backups_ended_total 3' <<<"$m"
grep -qx 'pullback_backups_failed_total 0' <<<"$m"
