#!/usr/bin/env bash
# pullback: NBD over TCP with TLS-PSK (issue 9), two VMs.  vm1 from the
# configuration, vm2 registered through POST /v1/vms with nbd_* fields.
# Each begin makes an identity and key for its backup, given once (the
# begin answer; never in GET); the answer's nbds://USER@HOST:PORT URI
# with tls-psk-file= pulls byte-exact with nbdcopy, qemu-img reads it with
# a tls-creds-psk object; a wrong key and plain NBD are refused; the two
# VMs get different ports of the range; after kill -9 and a restart the
# servers, TLS objects, keys files and ports are gone.  Bad nbd_* fields
# are refused naming the field.  The cipher with a PSK is AES-128-GCM
# (pullbackd sets the TLS priority), not ChaCha20-Poly1305.
# SPDX-License-Identifier: BSD-3-Clause

. "$abs_top_srcdir/tests/functions.sh"
. "$abs_top_srcdir/tests/functions-pullbackd.sh"
requires qemu-system-x86_64 qemu-img nbdcopy nbdinfo jq curl ss python3
set -e

make_tmpdir dir
cd "$dir"
M=1048576
lo=$(free_ports 2)
hi=$((lo + 1))

mkdir vm1 vm2
start_qemu_system "$dir/vm1" 1
Q1=$QMP_TEST_SOCK S1=$QMP_SOCK
start_qemu_system "$dir/vm2" 1
Q2=$QMP_TEST_SOCK S2=$QMP_SOCK
hmp_write "$Q1" vd0 0 $M 0x41
hmp_write "$Q2" vd0 $((2 * M)) $M 0x42
expect_image want1.raw 0:$M:0x41
expect_image want2.raw $((2 * M)):$M:0x42

cat > pb.conf <<EOF
nbd-ports = $lo-$hi
[vm vm1]
qmp = $S1
nbd-transport = tcp
nbd-tls = psk
EOF
start_pullbackd "$dir" -c "$dir/pb.conf"
wait_vm_connected vm1

# Registration: bad fields name the field.
reg='"name":"vm2","qmp":"'$S2'"'
expect_error 400 invalid-value POST /v1/vms "{$reg,\"nbd_tls\":\"bogus\"}" |
  jq -e '.error.field == "nbd_tls"'
expect_error 400 invalid-value POST /v1/vms "{$reg,\"nbd_tls_verify_peer\":\"yes\"}" |
  jq -e '.error.field == "nbd_tls_verify_peer"'
expect_error 422 invalid-nbd-settings POST /v1/vms \
  "{$reg,\"nbd_transport\":\"tcp\",\"nbd_address\":\"0.0.0.0\",\"nbd_tls\":\"off\"}" |
  jq -e '.error.field == "nbd_tls"'
expect 201 POST /v1/vms "{$reg,\"nbd_transport\":\"tcp\",\"nbd_tls\":\"psk\"}" |
  jq -e '.nbd_transport == "tcp"'
wait_vm_connected vm2

# pull VM WANT: begin, check the answer, pull with nbdcopy and qemu-img,
# refuse a wrong key and plain NBD.  Sets B (the answer) and URI.
pull ()
{
  local vm=$1 want=$2 user key port disk
  B=$(expect 201 POST "/v1/vms/$vm/backups" '{}')
  disk=$(jq -r '.disks[0].name' <<<"$B")
  URI=$(disk_uri "$B" "$disk")
  user=$(jq -r .nbd_tls_psk.username <<<"$B")
  key=$(jq -r .nbd_tls_psk.key <<<"$B")
  test ${#key} -eq 64
  jq -e --arg u "$user" '.disks[0].nbd.tls == "psk" and .disks[0].nbd.tls_username == $u' <<<"$B"
  case "$URI" in "nbds://$user@127.0.0.1:"*"/$disk") ;; *) say_fail "$URI"; return 1 ;; esac
  # Given once: not in GET.
  expect 200 GET "/v1/vms/$vm/backups/$(jq -r .id <<<"$B")" |
    jq -e '.nbd_tls_psk == null'
  fails grep -q "$key" "$PB_LOG"
  mkdir -p "psk-$vm" "wrong-$vm"
  printf '%s:%s\n' "$user" "$key" > "psk-$vm/keys.psk"
  printf '%s:%s\n' "$user" "$(printf '%064d' 7)" > "wrong-$vm/keys.psk"
  chmod 600 "psk-$vm/keys.psk" "wrong-$vm/keys.psk"
  nbdcopy "$URI?tls-psk-file=$dir/psk-$vm/keys.psk" "got-$vm.raw"
  cmp "$want" "got-$vm.raw"
  # pullbackd's own reads over TLS: GET .../extents as nbdinfo maps it;
  # what it reads with is in no answer.
  nbdinfo --map --json "$URI?tls-psk-file=$dir/psk-$vm/keys.psk" > "alloc-$vm.json"
  expect 200 GET "/v1/vms/$vm/backups/$(jq -r .id <<<"$B")/disks/$disk/extents" |
    jq -c .extents > "ext-$vm.json"
  test "$(cat "ext-$vm.json")" = \
    "$("$abs_top_srcdir/tests/extents-oracle.py" zero "alloc-$vm.json" 0 $((64 * M)) | jq -c .)"
  expect 200 GET "/v1/vms/$vm/backups/$(jq -r .id <<<"$B")" |
    jq -e '.nbd_client == null'
  jq -e '.nbd_client == null' <<<"$B"
  port=$(port_of "$URI")
  qemu-img convert -O raw \
    --object "tls-creds-psk,id=p0,endpoint=client,dir=$dir/psk-$vm,username=$user" \
    --image-opts "driver=nbd,server.type=inet,server.host=127.0.0.1,server.port=$port,export=$disk,tls-creds=p0" \
    "qi-$vm.raw"
  cmp "$want" "qi-$vm.raw"
  refused nbdinfo "$URI?tls-psk-file=$dir/wrong-$vm/keys.psk"
  refused nbdinfo "nbd://127.0.0.1:$port/$disk"
  nbdinfo "$URI?tls-psk-file=$dir/psk-$vm/keys.psk" >/dev/null
  # AES-GCM, not GnuTLS's choice with a PSK (ChaCha20, slower here).
  LIBNBD_DEBUG=1 nbdinfo "$URI?tls-psk-file=$dir/psk-$vm/keys.psk" 2>&1 |
    grep 'connection is using TLS' | grep -q 'cipher AES-128-GCM'
}
pull vm1 want1.raw
B1=$B U1=$URI
pull vm2 want2.raw
B2=$B U2=$URI
p1=$(port_of "$U1") p2=$(port_of "$U2")
test "$p1" -ne "$p2"
test "$p1" -ge "$lo" && test "$p1" -le "$hi" && test "$p2" -ge "$lo" && test "$p2" -le "$hi"

# The range is full: a third begin would find no port (vm1 again is
# refused as busy, so check that the ports are both ours).
ss -Hltn "sport = :$p1" | grep -q . && ss -Hltn "sport = :$p2" | grep -q .

# Ended: all gone for vm1, vm2 untouched.
expect 204 DELETE "/v1/vms/vm1/backups/$(jq -r .id <<<"$B1")"
listening () { ss -Hltn "sport = :$1" | grep -q .; }
fails listening "$p1"
ss -Hltn "sport = :$p2" | grep -q .
test -f "$dir/run/vms/vm2/keys.psk"
test "$(stat -c %a "$dir/run/vms/vm2/keys.psk")" = 600

# kill -9 with vm2's backup (and a new one of vm1) up; a restart cleans.
B1=$(expect 201 POST /v1/vms/vm1/backups '{}')
kill -9 "$PB_PID"
wait "$PB_PID" 2>/dev/null || true
PB_PID=
ss -Hltn "sport = :$p2" | grep -q .
start_pullbackd "$dir" -c "$dir/pb.conf"
wait_vm_connected vm1
wait_vm_connected vm2
wait_for 20 assert_no_nbd_net_leftovers "$Q1" "$lo" "$hi" "$dir/run"
assert_no_nbd_net_leftovers "$Q2" "$lo" "$hi" "$dir/run"
# ...and the ports are free for the next backups.
pull vm2 want2.raw
expect 204 DELETE "/v1/vms/vm2/backups/$(jq -r .id <<<"$B")"
assert_no_nbd_net_leftovers "$Q2" "$lo" "$hi" "$dir/run"
