#!/usr/bin/env bash
# pullback: the test harness on qemu-system-x86_64 -M q35 -S -accel tcg
# with virtio-blk disks: the devices and their nodes as query-block shows
# them, the guest's writes through HMP qemu-io landing in the images.
# SPDX-License-Identifier: BSD-3-Clause

. "$abs_top_srcdir/tests/functions.sh"
requires qemu-system-x86_64 qemu-img qemu-io jq
set -e

make_tmpdir dir
start_qemu_system "$dir" 2 32M

test "$(qmpcmd "$QMP_TEST_SOCK" query-status | jq -r .status)" = prelaunch
blocks=$(qmpcmd "$QMP_TEST_SOCK" query-block)
test "$(jq -c '[.[] | [.qdev, .inserted."node-name"]]' <<<"$blocks")" = \
     '[["/machine/peripheral/vd0/virtio-backend","disk0"],["/machine/peripheral/vd1/virtio-backend","disk1"]]'
qmpcmd --has-command "$QMP_TEST_SOCK" getfd
qmpcmd --has-command "$QMP_TEST_SOCK" human-monitor-command

hmp_write "$QMP_TEST_SOCK" vd0 0 65536 0x5c
hmp_write "$QMP_TEST_SOCK" vd1 $((5 << 20)) 4096 0x6d
# A write to a device that does not exist is an error, not silence.
fails hmp_write "$QMP_TEST_SOCK" vd9 0 512 0x11 2>/dev/null

qmpcmd "$QMP_TEST_SOCK" quit >/dev/null || true
wait "$QEMU_PID" || true
image_has "$dir/disk0.qcow2" 0 64k 0x5c
image_has "$dir/disk1.qcow2" 5M 4k 0x6d
image_has "$dir/disk0.qcow2" 64k 64k 0
fails image_has "$dir/disk0.qcow2" 0 64k 0x11
