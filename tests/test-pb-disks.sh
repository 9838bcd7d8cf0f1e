#!/usr/bin/env bash
# pullback: which block nodes are disks, and what a disk can hold.
# qemu-storage-daemon: of a backing chain only the top is a disk, also
# when a filter sits in the chain; a read-only disk is exported full
# ("disk-read-only") and holds no checkpoint bitmap, while full and
# incremental backups of the others are byte-exact.  Deleting a
# checkpoint leaves alone a bitmap of its name on a disk where it is
# broken (someone else's now).  A failed disk discovery at connect marks
# no checkpoint "disk-missing".  qemu-system: a device is named by its
# qdev id, not its drive's id, and a read-only device disk is full-only.
# SPDX-License-Identifier: BSD-3-Clause

. "$abs_top_srcdir/tests/functions.sh"
. "$abs_top_srcdir/tests/functions-pullbackd.sh"
requires qemu-storage-daemon qemu-system-x86_64 qemu-img qemu-io nbdcopy \
  jq curl /usr/bin/python3
set -e

make_tmpdir dir
G=$dir/guest.sock
M=1048576

# Two chains, the overlays made by qemu-img in the images' directory so
# their headers name the base relatively ("base0.qcow2"): disk0 over
# base0, and disk1 over base1 through a throttle filter.  rodisk is a
# read-only qcow2.  The bases and rodisk hold data of their own.
for i in 0 1; do
  qemu-img create -q -f qcow2 "$dir/base$i.qcow2" 64M
  qemu-io -f qcow2 -c "write -P 0x1$i 0 $((2 * M))" "$dir/base$i.qcow2" >/dev/null
  (cd "$dir" && qemu-img create -q -f qcow2 -b "base$i.qcow2" -F qcow2 "disk$i.qcow2")
done
test "$(qemu-img info --output=json "$dir/disk0.qcow2" | jq -r '."backing-filename"')" = base0.qcow2
qemu-img create -q -f qcow2 "$dir/rodisk.qcow2" 64M
qemu-io -f qcow2 -c "write -P 0x5e $((10 * M)) $M" "$dir/rodisk.qcow2" >/dev/null
expect_image "$dir/want-rodisk.raw" $((10 * M)):$M:0x5e

start_qsd_args "$dir" \
  --object throttle-group,id=tg1,x-bps-total=1073741824 \
  --blockdev "driver=file,filename=$dir/base0.qcow2,node-name=base0-file" \
  --blockdev "driver=qcow2,file=base0-file,node-name=base0" \
  --blockdev "driver=file,filename=$dir/disk0.qcow2,node-name=disk0-file" \
  --blockdev "driver=qcow2,file=disk0-file,node-name=disk0,backing=base0" \
  --blockdev "driver=file,filename=$dir/base1.qcow2,node-name=base1-file" \
  --blockdev "driver=qcow2,file=base1-file,node-name=base1" \
  --blockdev "driver=throttle,file=base1,throttle-group=tg1,node-name=thr1" \
  --blockdev "driver=file,filename=$dir/disk1.qcow2,node-name=disk1-file" \
  --blockdev "driver=qcow2,file=disk1-file,node-name=disk1,backing=thr1" \
  --blockdev "driver=file,filename=$dir/rodisk.qcow2,node-name=rodisk-file,read-only=on" \
  --blockdev "driver=qcow2,file=rodisk-file,node-name=rodisk,read-only=on"
QSD_QMP=$QMP_SOCK
QSD_TEST=$QMP_TEST_SOCK
qsd_writer_exports "$dir"
start_pullbackd "$dir" --vm "vm1=$QSD_QMP,nbd=unix:$G"
wait_vm_connected vm1

# QEMU 7.2 answers this for the graph pullbackd reads.
qmpcmd "$QSD_TEST" x-debug-query-block-graph |
  jq -e '[.edges[] | select(.name == "backing")] | length == 2' >/dev/null

vm=$(expect 200 GET /v1/vms/vm1)
test "$(jq -c '[.disks[] | [.name, .format, .size, .ro]]' <<<"$vm")" = \
     '[["disk0","qcow2",67108864,false],["disk1","qcow2",67108864,false],["rodisk","qcow2",67108864,true]]'

snap () { # NAME: the live writable disks (the oracle for a begin instant)
  for d in disk0 disk1; do
    nbdcopy "nbd+unix:///guest-$d?socket=$G" "$dir/$1-$d.raw"
  done
}

# --- full, creating c1: every disk, the read-only one included ---------
guest_write "$G" guest-disk0 $M 65536 0x21
guest_write "$G" guest-disk1 $((5 * M)) $M 0x22
snap at1
b=$(expect 201 POST /v1/vms/vm1/backups '{"checkpoint":"c1"}')
test "$(jq -c '[.disks[] | [.name, .mode]]' <<<"$b")" = \
     '[["disk0","full"],["disk1","full"],["rodisk","full"]]'
guest_write "$G" guest-disk0 0 4096 0x31
for d in disk0 disk1; do
  nbdcopy "$(disk_uri "$b" $d)" "$dir/full-$d.raw"
  cmp "$dir/at1-$d.raw" "$dir/full-$d.raw"
done
nbdcopy "$(disk_uri "$b" rodisk)" "$dir/full-rodisk.raw"
cmp "$dir/want-rodisk.raw" "$dir/full-rodisk.raw"
expect 204 DELETE "/v1/vms/vm1/backups/$(jq -r .id <<<"$b")"
assert_no_leftovers "$QSD_TEST" "$dir/run"
test "$(expect 200 GET /v1/vms/vm1/checkpoints/c1 | jq -c '[.disks[].name]')" = \
     '["disk0","disk1"]'
for n in disk0 disk1; do test "$(bitmaps "$QSD_TEST" $n)" = "c1:true "; done
for n in base0 base1 rodisk; do test "$(bitmaps "$QSD_TEST" $n)" = ""; done

# --- incremental since c1, creating c2 ---------------------------------
guest_write "$G" guest-disk1 $((30 * M)) 8192 0x32
snap at2
b=$(expect 201 POST /v1/vms/vm1/backups '{"checkpoint":"c2","since":"c1"}')
test "$(disk_mode "$b" disk0):$(disk_mode "$b" disk1)" = incremental:incremental
test "$(disk_mode "$b" rodisk):$(disk_reason "$b" rodisk)" = full:disk-read-only
test "$(disk_ctx "$b" rodisk)" = null
assert_dirty_map "$b" disk0 0:4096
assert_dirty_map "$b" disk1 $((30 * M)):8192
for d in disk0 disk1; do
  assert_chain "$dir" $d "$dir/full-$d.raw" "$(disk_uri "$b" $d)" "$dir/at2-$d.raw"
done
nbdcopy "$(disk_uri "$b" rodisk)" "$dir/inc-rodisk.raw"
cmp "$dir/want-rodisk.raw" "$dir/inc-rodisk.raw"
expect 204 DELETE "/v1/vms/vm1/backups/$(jq -r .id <<<"$b")"
assert_no_leftovers "$QSD_TEST" "$dir/run"

# A checkpoint alone skips the read-only disk too.
test "$(expect 201 POST /v1/vms/vm1/checkpoints '{"name":"c3"}' | jq -c '[.disks[].name]')" = \
     '["disk0","disk1"]'
test "$(bitmaps "$QSD_TEST" rodisk)" = ""

# --- deleting a checkpoint broken on a disk ----------------------------
# c2's bitmap on disk1 goes behind our back; the next begin finds c2
# broken there.  Then someone else makes a bitmap named c2 on disk1.
qmpcmd "$QSD_TEST" block-dirty-bitmap-remove '{"node":"disk1","name":"c2"}' >/dev/null
b=$(expect 201 POST /v1/vms/vm1/backups '{"checkpoint":false,"since":"c2"}')
test "$(disk_mode "$b" disk1):$(disk_reason "$b" disk1)" = full:checkpoint-missing
expect 204 DELETE "/v1/vms/vm1/backups/$(jq -r .id <<<"$b")"
qmpcmd "$QSD_TEST" block-dirty-bitmap-add \
  '{"node":"disk1","name":"c2","persistent":true}' >/dev/null
expect 204 DELETE /v1/vms/vm1/checkpoints/c2 >/dev/null
test "$(bitmaps "$QSD_TEST" disk0)" = "c1:true c3:true "
test "$(bitmaps "$QSD_TEST" disk1)" = "c1:true c2:true c3:true "
qmpcmd "$QSD_TEST" block-dirty-bitmap-remove '{"node":"disk1","name":"c2"}' >/dev/null

# --- disk discovery fails at connect -----------------------------------
# pullbackd restarts behind a QMP proxy.  While $dir/fail exists, the
# proxy answers the Nth query-named-block-nodes with an error where the
# Nth letter in that file is "f": "pf" lets the connect's cleanup look
# through, fails disk discovery, and lets the bitmaps through.  The
# checkpoints must stay whole.
P=$dir/qmp-proxy.sock
/usr/bin/python3 -c '
import json, os, socket, sys, threading
listen, target, flag = sys.argv[1:4]
s = socket.socket(socket.AF_UNIX)
s.bind(listen)
s.listen(4)
calls = [0]

def inject():
    try:
        pattern = open(flag).read().strip()
    except OSError:
        calls[0] = 0
        return False
    n = calls[0]
    calls[0] += 1
    return n < len(pattern) and pattern[n] == "f"

def serve(cli):
    srv = socket.socket(socket.AF_UNIX)
    srv.connect(target)
    lock = threading.Lock()
    def up():
        buf = b""
        while True:
            data = srv.recv(65536)
            if not data:
                break
            buf += data
            *lines, buf = buf.split(b"\n")
            with lock:
                for l in lines:
                    cli.sendall(l + b"\n")
        cli.close()
    threading.Thread(target=up, daemon=True).start()
    dec = json.JSONDecoder()
    buf = ""
    while True:
        data = cli.recv(65536)
        if not data:
            break
        buf += data.decode()
        while True:
            buf = buf.lstrip()
            try:
                msg, end = dec.raw_decode(buf)
            except ValueError:
                break
            buf = buf[end:]
            if msg.get("execute") == "query-named-block-nodes" and inject():
                reply = {"error": {"class": "GenericError", "desc": "injected"}}
                if "id" in msg:
                    reply["id"] = msg["id"]
                with lock:
                    cli.sendall(json.dumps(reply).encode() + b"\r\n")
            else:
                srv.sendall(json.dumps(msg).encode() + b"\n")
    srv.close()

while True:
    c, _ = s.accept()
    threading.Thread(target=serve, args=(c,), daemon=True).start()
' "$P" "$QSD_QMP" "$dir/fail" >>"$dir/proxy.log" 2>&1 &
track_pid $!
wait_for 10 test -S "$P"
kill_pullbackd
echo pf >"$dir/fail"
start_pullbackd "$dir" --vm "vm1=$P,nbd=unix:$G"
wait_vm_connected vm1
grep -q 'discovering disks: injected' "$PB_LOG"
cps=$(expect 200 GET /v1/vms/vm1/checkpoints)
test "$(jq -c '[.checkpoints[] | [.name, ([.disks[].state] | unique)]]' <<<"$cps")" = \
     '[["c1",["ok"]],["c3",["ok"]]]'
rm "$dir/fail"
guest_write "$G" guest-disk0 $((40 * M)) 4096 0x41
b=$(expect 201 POST /v1/vms/vm1/backups '{"checkpoint":false,"since":"c3"}')
test "$(disk_mode "$b" disk0):$(disk_mode "$b" disk1)" = incremental:incremental
assert_dirty_map "$b" disk0 $((40 * M)):4096
expect 204 DELETE "/v1/vms/vm1/backups/$(jq -r .id <<<"$b")"
assert_no_leftovers "$QSD_TEST" "$dir/run"

# --- qemu-system: device names, a read-only device disk ----------------
# vdx is a -drive (id drive0) under a device with id vdx; vdro a
# read-only -blockdev under a device.
sys=$dir/sys
mkdir "$sys"
qemu-img create -q -f qcow2 "$sys/x.qcow2" 64M
qemu-img create -q -f qcow2 "$sys/ro.qcow2" 64M
qemu-io -f qcow2 -c "write -P 0x6e $((3 * M)) $M" "$sys/ro.qcow2" >/dev/null
expect_image "$sys/want-vdro.raw" $((3 * M)):$M:0x6e
start_qemu_system_args "$sys" \
  -drive "if=none,id=drive0,file=$sys/x.qcow2,format=qcow2,node-name=xnode" \
  -device virtio-blk-pci,drive=drive0,id=vdx \
  -blockdev "driver=file,filename=$sys/ro.qcow2,node-name=ro-file,read-only=on" \
  -blockdev driver=qcow2,file=ro-file,node-name=ronode,read-only=on \
  -device virtio-blk-pci,drive=ronode,id=vdro
expect 201 POST /v1/vms "{\"name\":\"vm2\",\"qmp\":\"$QMP_SOCK\"}" >/dev/null
wait_vm_connected vm2
test "$(expect 200 GET /v1/vms/vm2 | jq -c '[.disks[] | [.name, .node, .ro]]')" = \
     '[["vdx","xnode",false],["vdro","ronode",true]]'
hmp_write "$QMP_TEST_SOCK" vdx 0 $M 0x71
b=$(expect 201 POST /v1/vms/vm2/backups '{"checkpoint":"s1"}')
expect_image "$sys/want-vdx.raw" 0:$M:0x71
nbdcopy "$(disk_uri "$b" vdx)" "$sys/full-vdx.raw"
cmp "$sys/want-vdx.raw" "$sys/full-vdx.raw"
nbdcopy "$(disk_uri "$b" vdro)" "$sys/full-vdro.raw"
cmp "$sys/want-vdro.raw" "$sys/full-vdro.raw"
expect 204 DELETE "/v1/vms/vm2/backups/$(jq -r .id <<<"$b")"
test "$(expect 200 GET /v1/vms/vm2/checkpoints/s1 | jq -c '[.disks[].name]')" = '["vdx"]'
hmp_write "$QMP_TEST_SOCK" vdx $((8 * M)) 4096 0x72
b=$(expect 201 POST /v1/vms/vm2/backups '{"checkpoint":"s2","since":"s1"}')
test "$(disk_mode "$b" vdx)" = incremental
test "$(disk_mode "$b" vdro):$(disk_reason "$b" vdro)" = full:disk-read-only
assert_dirty_map "$b" vdx $((8 * M)):4096
nbdcopy "$(disk_uri "$b" vdro)" "$sys/inc-vdro.raw"
cmp "$sys/want-vdro.raw" "$sys/inc-vdro.raw"
expect 204 DELETE "/v1/vms/vm2/backups/$(jq -r .id <<<"$b")"
assert_no_leftovers "$QMP_TEST_SOCK" "$dir/run"
test "$(bitmaps "$QMP_TEST_SOCK" ronode)" = ""
test "$(bitmaps "$QMP_TEST_SOCK" xnode)" = "s1:true s2:true "
