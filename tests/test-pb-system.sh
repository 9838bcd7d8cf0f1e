#!/usr/bin/env bash
# pullback: device-attached disks on qemu-system-x86_64 -M q35 -S -accel
# tcg with virtio-blk.  Disks are named after their devices; pullbackd
# starts QEMU's NBD server itself on a socket it creates (getfd), with
# mode 0660; full and incremental backups are byte-exact while the
# "guest" (HMP qemu-io on the device) writes; the scratch files go to
# another directory (scratch=) while the socket stays in the run
# directory; a QEMU already running an NBD server it did not start is
# refused, changing nothing and leaving no socket; SHUTDOWN fails an
# active backup.
# SPDX-License-Identifier: BSD-3-Clause

. "$abs_top_srcdir/tests/functions.sh"
. "$abs_top_srcdir/tests/functions-pullbackd.sh"
requires qemu-system-x86_64 qemu-img qemu-nbd nbdcopy jq curl /usr/bin/python3
set -e

make_tmpdir dir
M=1048576
start_qemu_system "$dir" 2 64M
start_pullbackd "$dir" --vm "vm1=$QMP_SOCK,scratch=$dir/scratch"
wait_vm_connected vm1

vm=$(expect 200 GET /v1/vms/vm1)
test "$(jq -c '[.disks[] | [.name, .node, .format, .size]]' <<<"$vm")" = \
     '[["vd0","disk0","qcow2",67108864],["vd1","disk1","qcow2",67108864]]'

hmp_write "$QMP_TEST_SOCK" vd0 0 $M 0x11
hmp_write "$QMP_TEST_SOCK" vd1 $((4 * M)) 65536 0x22
b=$(expect 201 POST /v1/vms/vm1/backups '{"checkpoint":"c1"}')
sock=$dir/run/vms/vm1/nbd.sock
test "$(disk_uri "$b" vd0)" = "nbd+unix:///vd0?socket=$sock"
test "$(stat -c %a "$sock")" = 660
test "$(stat -c %a "$dir/run/vms/vm1")" = 750
test "$(stat -c %a "$dir/scratch")" = 700
test "$(find "$dir/scratch" -name 'pullback-vm1.*.qcow2' | wc -l)" -eq 2
test "$(find "$dir/run" -name 'pullback-*.qcow2' | wc -l)" -eq 0
# The guest writes after the snapshot: not in the backup.
hmp_write "$QMP_TEST_SOCK" vd0 0 65536 0xa1
hmp_write "$QMP_TEST_SOCK" vd1 $((8 * M)) 4096 0xa2
expect_image "$dir/want-vd0.raw" 0:$M:0x11
expect_image "$dir/want-vd1.raw" $((4 * M)):65536:0x22
for d in vd0 vd1; do
  nbdcopy "$(disk_uri "$b" $d)" "$dir/full-$d.raw"
  cmp "$dir/want-$d.raw" "$dir/full-$d.raw"
done
expect 204 DELETE "/v1/vms/vm1/backups/$(jq -r .id <<<"$b")"
assert_no_leftovers "$QMP_TEST_SOCK" "$dir"
# Nothing else was exported: the server we started is stopped.
test ! -e "$sock"

# Incremental since c1.
b=$(expect 201 POST /v1/vms/vm1/backups '{"checkpoint":"c2","since":"c1"}')
test "$(disk_ctx "$b" vd1)" = qemu:dirty-bitmap:backup-vd1
assert_dirty_map "$b" vd0 0:65536
assert_dirty_map "$b" vd1 $((8 * M)):4096
expect_image "$dir/want2-vd0.raw" 0:$M:0x11 0:65536:0xa1
expect_image "$dir/want2-vd1.raw" $((4 * M)):65536:0x22 $((8 * M)):4096:0xa2
for d in vd0 vd1; do
  assert_chain "$dir" $d "$dir/full-$d.raw" "$(disk_uri "$b" $d)" "$dir/want2-$d.raw"
done
expect 204 DELETE "/v1/vms/vm1/backups/$(jq -r .id <<<"$b")"
assert_no_leftovers "$QMP_TEST_SOCK" "$dir"

# Somebody else's NBD server: refused, and nothing changes.
qmpcmd "$QMP_TEST_SOCK" nbd-server-start \
  "{\"addr\":{\"type\":\"unix\",\"data\":{\"path\":\"$dir/other.sock\"}}}" >/dev/null
expect_error 409 nbd-server-busy POST /v1/vms/vm1/backups '{"checkpoint":"c3"}' >/dev/null
expect_error 404 checkpoint-not-found GET /v1/vms/vm1/checkpoints/c3 >/dev/null
test "$(bitmaps "$QMP_TEST_SOCK" disk0)" = "c1:true c2:true "
assert_no_leftovers "$QMP_TEST_SOCK" "$dir"
# The socket pullbackd made for the start that failed is gone: left, it
# would pass for a server of ours.
test ! -e "$sock"
qmpcmd "$QMP_TEST_SOCK" nbd-server-stop >/dev/null

# QEMU shuts down during a backup: SHUTDOWN fails it with that reason.
b=$(expect 201 POST /v1/vms/vm1/backups '{"checkpoint":false}')
id=$(jq -r .id <<<"$b")
qmpcmd "$QMP_TEST_SOCK" quit >/dev/null || true
wait_for 10 sh -c "curl -sS --unix-socket '$PB_API' http://localhost/v1/vms/vm1/backups/$id | grep -q failed"
test "$(api GET "/v1/vms/vm1/backups/$id" | jq -r '"\(.phase):\(.reason)"')" = failed:qemu-shutdown
test "$(find "$dir" -name 'pullback-*.qcow2' | wc -l)" -eq 0
