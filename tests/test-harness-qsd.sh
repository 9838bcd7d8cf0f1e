#!/usr/bin/env bash
# pullback: the test harness itself, on qemu-storage-daemon.  start_qsd
# makes N qcow2 disks with two QMP monitors; the "guest" writes through
# writable NBD exports; what it writes is in the image; cleanup kills only
# what the test started.  qmpcmd reports QEMU's errors with its class.
# SPDX-License-Identifier: BSD-3-Clause

. "$abs_top_srcdir/tests/functions.sh"
requires qemu-storage-daemon qemu-img qemu-io nbdcopy nbdinfo jq
set -e

make_tmpdir dir
start_qsd "$dir" 2 32M
qsd_writer_exports "$dir"
G=$dir/guest.sock

test "$(qmpcmd --version "$QMP_TEST_SOCK" | cut -d. -f1)" -ge 7
nodes=$(qmpcmd "$QMP_TEST_SOCK" query-named-block-nodes '{"flat":true}')
test "$(jq -c '[.[] | select(.drv == "qcow2") | [."node-name", .image."virtual-size"]] | sort' <<<"$nodes")" = \
     '[["disk0",33554432],["disk1",33554432]]'
# Both monitors answer at once: one for pullbackd, one for the test.
qmpcmd "$QMP_SOCK" query-version >/dev/null
# qemu-storage-daemon has no getfd and no HMP.
fails qmpcmd --has-command "$QMP_TEST_SOCK" getfd
fails qmpcmd --has-command "$QMP_TEST_SOCK" human-monitor-command
qmpcmd --has-command "$QMP_TEST_SOCK" block-export-add
qmpcmd --has-arg "$QMP_TEST_SOCK" block-export-add allocation-depth

# Guest writes land in the disks.
test "$(nbdinfo --size "nbd+unix:///guest-disk1?socket=$G")" = 33554432
guest_write "$G" guest-disk0 4096 8192 0x5a
guest_write "$G" guest-disk1 $((1 << 20)) 512 0xa5
nbdcopy "nbd+unix:///guest-disk0?socket=$G" "$dir/d0.raw"
python3 - "$dir/d0.raw" <<'PY'
import sys
d = open(sys.argv[1], "rb").read()
want = bytearray(32 << 20)
want[4096:4096 + 8192] = b"\x5a" * 8192
assert d == want, "disk0 does not hold what the guest wrote"
PY

# QEMU errors keep their class, and qmpcmd says which kind of failure.
rc=0; out=$(qmpcmd "$QMP_TEST_SOCK" block-dirty-bitmap-add '{"node":"nosuch","name":"b"}' 2>&1) || rc=$?
test "$rc" -eq 1
case "$out" in *"GenericError: Cannot find device='nosuch' nor node-name='nosuch'"*) ;; *) false ;; esac
rc=0; qmpcmd "$dir/nowhere.sock" query-version 2>/dev/null || rc=$?
test "$rc" -eq 4

# After a clean quit the images hold the data.
qmpcmd "$QMP_TEST_SOCK" quit >/dev/null || true
wait "$QSD_PID" || true
image_has "$dir/disk1.qcow2" 1M 512 0xa5
fails image_has "$dir/disk1.qcow2" 1M 513 0xa5

# The cleanup kills what a test started, and only that.
sleep 300 &
other=$!
mkdir "$dir/inner"
bash -c '. "$abs_top_srcdir/tests/functions.sh"; start_qsd "$1" 1 1M
         echo "$QSD_PID" > "$1.pid"' sh "$dir/inner" 2>/dev/null
inner=$(cat "$dir/inner.pid")
fails kill -0 "$inner" 2>/dev/null
kill -0 "$other"
kill "$other"
