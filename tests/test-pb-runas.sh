#!/usr/bin/env bash
# pullback: a QEMU that runs as another user (-runas nobody), as most
# do.  pullbackd (root) writes the scratch overlays and, for NBD over
# TCP with TLS-PSK, the keys file; QEMU must reach both through the run
# directory, which stays closed to everyone else: QEMU's user gets an
# ACL entry allowing it to pass through the directories (not to list
# them), nothing more, and may read the keys file.  A full backup on the unix transport and one over
# TLS-PSK both pull byte-exact; another unprivileged user can neither
# list the VM's run directory nor connect to its NBD socket.
# SPDX-License-Identifier: BSD-3-Clause

. "$abs_top_srcdir/tests/functions.sh"
. "$abs_top_srcdir/tests/functions-pullbackd.sh"
requires qemu-system-x86_64 qemu-img nbdcopy nbdinfo jq curl setpriv python3
set -e

id nobody >/dev/null 2>&1 || { echo "$0: SKIP: no user nobody" >&2; exit 77; }
[ "$(id -u)" -eq 0 ] || { echo "$0: SKIP: needs root" >&2; exit 77; }

make_tmpdir dir
# The test directory stands in for /run: others may pass through it.
chmod 0711 "$dir"
as () { local u=$1; shift; setpriv --reuid="$u" --regid="$(id -g "$u")" --clear-groups "$@"; }
as nobody test -x "$dir" ||
  { echo "$0: SKIP: user nobody cannot reach $dir (TMPDIR closed)" >&2; exit 77; }
M=1048576
mkdir "$dir/vm1" "$dir/vm2"
for v in vm1 vm2; do
  qemu-img create -q -f qcow2 "$dir/$v/disk0.qcow2" 64M
  start_qemu_system_args "$dir/$v" -runas nobody \
    -blockdev "driver=file,filename=$dir/$v/disk0.qcow2,node-name=disk0-file" \
    -blockdev "driver=qcow2,file=disk0-file,node-name=disk0" \
    -device "virtio-blk-pci,drive=disk0,id=vd0"
  printf -v "Q_$v" '%s' "$QMP_TEST_SOCK"
  printf -v "S_$v" '%s' "$QMP_SOCK"
  printf -v "P_$v" '%s' "$QEMU_PID"
done
# QEMU has dropped root.
test "$(stat -c %U "/proc/$P_vm1")" = nobody
hmp_write "$Q_vm1" vd0 0 $M 0x61
hmp_write "$Q_vm2" vd0 $((3 * M)) $M 0x62
expect_image "$dir/want1.raw" 0:$M:0x61
expect_image "$dir/want2.raw" $((3 * M)):$M:0x62

port=$(free_ports 1)
cat > "$dir/pb.conf" <<EOF
nbd-ports = $port-$port
[vm vm1]
qmp = $S_vm1
[vm vm2]
qmp = $S_vm2
nbd-transport = tcp
nbd-tls = psk
nbd-address = 127.0.0.1
EOF
start_pullbackd "$dir" -c "$dir/pb.conf"
wait_vm_connected vm1
wait_vm_connected vm2

# Unix transport: the scratch file pullbackd wrote is QEMU's to use.
b=$(expect 201 POST /v1/vms/vm1/backups '{"checkpoint":"c1"}')
nobody_uid=$(id -u nobody)
test "$(stat -c %u "$dir/run/vms/vm1/pullback-vm1.0.qcow2")" -eq "$nobody_uid"
hmp_write "$Q_vm1" vd0 0 $M 0x71 # after the snapshot: not in the backup
nbdcopy "$(disk_uri "$b" vd0)" "$dir/got1.raw"
cmp "$dir/got1.raw" "$dir/want1.raw"

# The run directories stay closed: mode 0750, and an ACL entry for
# QEMU's user that lets it through, not list.
acl () # PATH: the access ACL's entries as TAG:ID:PERM, one per line
{
  python3 - "$1" <<'PY'
import os, struct, sys
tags = {1: "user_obj", 2: "user", 4: "group_obj", 8: "group", 16: "mask", 32: "other"}
try:
    a = os.getxattr(sys.argv[1], "system.posix_acl_access")
except OSError:
    sys.exit(0)
for i in range(4, len(a), 8):
    tag, perm, uid = struct.unpack("<HHI", a[i:i + 8])
    print("%s:%s:%d" % (tags[tag], "" if uid == 0xffffffff else uid, perm))
PY
}
for d in "$dir/run" "$dir/run/vms" "$dir/run/vms/vm1"; do
  test "$(stat -c %a "$d")" = 750
  acl "$d" | grep -qx "user:$nobody_uid:1"
  acl "$d" | grep -qx "other::0"
done
# QEMU's user can pass, not list, and cannot reach the NBD socket
# (pullbackd's, 0660); another user cannot even pass.
fails as nobody ls "$dir/run/vms/vm1"
fails as nobody nbdinfo "$(disk_uri "$b" vd0)"
if id daemon >/dev/null 2>&1; then
  fails as daemon test -x "$dir/run/vms/vm1"
fi
expect 204 DELETE "/v1/vms/vm1/backups/$(jq -r .id <<<"$b")"
assert_no_leftovers "$Q_vm1" "$dir/run"

# TLS-PSK on TCP: QEMU reads the keys file pullbackd wrote.
b=$(expect 201 POST /v1/vms/vm2/backups '{"checkpoint":"c1"}')
# The keys file stays pullbackd's; QEMU's user may read it, nobody else.
test "$(stat -c %u "$dir/run/vms/vm2/keys.psk")" -eq 0
test "$(acl "$dir/run/vms/vm2/keys.psk" | tr '\n' ' ')" = \
  "user_obj::6 user:$nobody_uid:4 group_obj::0 mask::4 other::0 "
as nobody test -r "$dir/run/vms/vm2/keys.psk"
fails as nobody test -w "$dir/run/vms/vm2/keys.psk"
user=$(jq -r .nbd_tls_psk.username <<<"$b")
printf '%s:%s\n' "$user" "$(jq -r .nbd_tls_psk.key <<<"$b")" > "$dir/client.psk"
chmod 600 "$dir/client.psk"
nbdcopy "$(disk_uri "$b" vd0)?tls-psk-file=$dir/client.psk" "$dir/got2.raw"
cmp "$dir/got2.raw" "$dir/want2.raw"
expect 204 DELETE "/v1/vms/vm2/backups/$(jq -r .id <<<"$b")"
assert_no_leftovers "$Q_vm2" "$dir/run"
