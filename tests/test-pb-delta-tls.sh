#!/usr/bin/env bash
# pullback: the delta view over TCP with TLS-PSK.  When the VM's NBD
# transport is TCP, the delta view's nbdkit listens on a port of
# nbd-ports (not QEMU's) with QEMU's TLS: the begin answer's identity and
# key open it, delta_uri is nbds://USER@HOST:PORT/ and "delta" says
# which TLS applies.  Plain nbdcopy pulls the incremental through it into
# a qcow2 overlay of the previous full, and the chain equals the disk at
# the begin.  A wrong key and plain NBD are refused by nbdkit.  No nbdkit
# and no listening port are left after DELETE, nor after kill -9 and a
# restart, and the ports are taken again by the next backup.  x509
# with verify-peer: nbdkit serves with nbd-tls-x509-dir and refuses a
# client without a certificate; with nbd-tls-allowed-dn there is no
# delta view (nbdkit cannot check DNs), and the answer says why.
# SPDX-License-Identifier: BSD-3-Clause

. "$abs_top_srcdir/tests/functions.sh"
. "$abs_top_srcdir/tests/functions-pullbackd.sh"
. "$abs_top_srcdir/tests/functions-plugin.sh"
. "$abs_top_srcdir/tests/functions-certs.sh"
requires qemu-system-x86_64 qemu-img qemu-nbd nbdkit nbdcopy nbdinfo jq curl ss \
  python3 certtool
set -e

make_tmpdir dir
cd "$dir"
M=1048576
K=65536
lo=$(free_ports 4)
hi=$((lo + 3))

mkdir vm1
start_qemu_system "$dir/vm1" 1
Q=$QMP_TEST_SOCK S=$QMP_SOCK
# conf LINES: pb.conf with vm1 on TCP, and LINES (its TLS settings).
conf ()
{
  cat > pb.conf <<EOF
delta-plugin = $PLUGIN
nbd-ports = $lo-$hi
[vm vm1]
qmp = $S
nbd-transport = tcp
$1
EOF
}
conf "nbd-tls = psk"
run () { start_pullbackd "$dir" -c "$dir/pb.conf"; wait_vm_connected vm1; }
run
# ([n] keeps pgrep from finding a shell whose command line holds this.)
nbdkits () { pgrep -f "[n]bdkit.*--tls-psk=$dir/run/vms/vm1/keys.psk" | wc -l; }
listening () { ss -Hltn "sport = :$1" | grep -q .; }

# begin BODY: sets B, ID, URI (QEMU's export) and PSK (a keys file
# holding the answer's identity and key).
begin ()
{
  B=$(expect 201 POST /v1/vms/vm1/backups "$1")
  ID=$(jq -r .id <<<"$B")
  URI=$(disk_uri "$B" vd0)
  PSK=$dir/psk-$ID/keys.psk
  mkdir -p "$dir/psk-$ID"
  jq -r '"\(.nbd_tls_psk.username):\(.nbd_tls_psk.key)"' <<<"$B" > "$PSK"
  chmod 600 "$PSK"
}

# The base: a full backup with checkpoint c1, pulled; no delta view.
hmp_write "$Q" vd0 0 $((2 * M)) 0x11
begin '{"checkpoint":"c1"}'
jq -e '.disks[0].delta_uri == null and .disks[0].delta == null' <<<"$B" >/dev/null
test "$(nbdkits)" -eq 0
nbdcopy "$URI?tls-psk-file=$PSK" full.raw
qemu-img convert -f raw -O qcow2 full.raw full.qcow2
expect 204 DELETE "/v1/vms/vm1/backups/$ID"

# Changes: data, and a write smaller than the granularity.
hmp_write "$Q" vd0 $((8 * M)) $((3 * K)) 0x22
hmp_write "$Q" vd0 $((20 * M + 512)) 512 0x33

begin '{"checkpoint":"c2","since":"c1"}'
test "$(disk_mode "$B" vd0)" = incremental
user=$(jq -r .nbd_tls_psk.username <<<"$B")
delta=$(jq -r '.disks[0].delta_uri' <<<"$B")
case "$delta" in "nbds://$user@127.0.0.1:"*/) ;; *) say_fail "delta_uri $delta"; false ;; esac
jq -e --arg d "$delta" --arg u "$user" \
  '.disks[0].delta == {uri: $d, tls: "psk", tls_username: $u}' <<<"$B" >/dev/null
dport=$(port_of "$delta") qport=$(port_of "$URI")
test "$dport" -ne "$qport"
test "$dport" -ge "$lo" && test "$dport" -le "$hi"
listening "$dport"
test "$(nbdkits)" -eq 1
expect 200 GET "/v1/vms/vm1/backups/$ID" |
  jq -e --arg d "$delta" '.disks[0].delta_uri == $d and .nbd_tls_psk == null' >/dev/null
# The snapshot as QEMU's export serves it, then a write after the begin
# that the backup must not see.
nbdcopy "$URI?tls-psk-file=$PSK" snap.raw
hmp_write "$Q" vd0 $((8 * M)) $K 0x44

"$abs_top_srcdir/contrib/pullback-fetch-incremental" "$delta?tls-psk-file=$PSK" \
  full.qcow2 inc.qcow2
qemu-img compare -f qcow2 -F raw inc.qcow2 snap.raw
got=$(overlay_ranges inc.qcow2)
want=$(printf '%s\n' "$((8 * M)) $((3 * K))" "$((20 * M)) $K")
test "$got" = "$want" || { say_fail "overlay holds $got, want $want"; false; }

# nbdkit refuses a wrong key and plain NBD.
mkdir wrong
printf '%s:%064d\n' "$user" 7 > wrong/keys.psk
chmod 600 wrong/keys.psk
refused nbdinfo "$delta?tls-psk-file=$dir/wrong/keys.psk"
refused nbdinfo "nbd://127.0.0.1:$dport/"
nbdinfo "$delta?tls-psk-file=$PSK" >/dev/null

# DELETE stops it and gives the port back.
expect 204 DELETE "/v1/vms/vm1/backups/$ID"
test "$(nbdkits)" -eq 0
assert_no_nbd_net_leftovers "$Q" "$lo" "$hi" "$dir/run"

# kill -9: nbdkit ends with the daemon; the restart leaves nothing.
begin '{"checkpoint":"c3","since":"c2"}'
test "$(nbdkits)" -eq 1
kill -9 "$PB_PID"; wait "$PB_PID" 2>/dev/null || true; PB_PID=
wait_for 20 sh -c "test \$(pgrep -f '[n]bdkit.*--tls-psk=$dir/run/vms/vm1/keys.psk' | wc -l) -eq 0"
run
wait_for 20 assert_no_nbd_net_leftovers "$Q" "$lo" "$hi" "$dir/run"
test -z "$(find "$dir/run" -name 'delta-*')"

# The table has every port again: two more backups in a row each get
# a QEMU port and a delta port of the four.
for c in c4 c5; do
  base=$(expect 200 GET /v1/vms/vm1/checkpoints | jq -r '.checkpoints[-1].name')
  begin "{\"checkpoint\":\"$c\",\"since\":\"$base\"}"
  test "$(disk_mode "$B" vd0)" = incremental
  delta=$(jq -r '.disks[0].delta_uri' <<<"$B")
  nbdinfo "$delta?tls-psk-file=$PSK" >/dev/null
  expect 204 DELETE "/v1/vms/vm1/backups/$ID"
done
assert_no_nbd_net_leftovers "$Q" "$lo" "$hi" "$dir/run"
test "$(nbdkits)" -eq 0
kill_pullbackd

# --- x509 (verify-peer is the default) ---------------------------------
make_ca ca
make_cert server ca tls_www_server 127.0.0.1
make_cert client ca tls_www_client
mkdir x509
cp ca.pem x509/ca-cert.pem
cp server.pem x509/server-cert.pem
cp server-key.pem x509/server-key.pem
cp client.pem x509/client-cert.pem
cp client-key.pem x509/client-key.pem
chmod 600 x509/*-key.pem
client_dir good client
mkdir noclient
cp ca.pem noclient/ca-cert.pem
client_dn=$(certtool -i --infile client.pem | sed -n 's/^[[:space:]]*Subject: //p' |
  head -1 | tr ',' '\n' | tac | paste -sd,)
x509conf () { conf "$(printf 'nbd-tls = x509\nnbd-tls-x509-dir = %s\n%s' "$dir/x509" "$1")"; }
x509s () { pgrep -f "[n]bdkit.*--tls-certificates=$dir/x509" | wc -l; }
last () { expect 200 GET /v1/vms/vm1/checkpoints | jq -r '.checkpoints[-1].name'; }

x509conf ""
run
hmp_write "$Q" vd0 $((30 * M)) $K 0x55
begin "{\"checkpoint\":\"c6\",\"since\":\"$(last)\"}"
delta=$(jq -r '.disks[0].delta_uri' <<<"$B")
case "$delta" in nbds://127.0.0.1:*/) ;; *) say_fail "delta_uri $delta"; false ;; esac
jq -e --arg d "$delta" --arg ca "$dir/x509/ca-cert.pem" \
  '.disks[0].delta == {uri: $d, tls: "x509", tls_ca_cert: $ca}' <<<"$B" >/dev/null
test "$(x509s)" -eq 1
# Reads pass through: the view reads as QEMU's export (block status
# aside: it is not an image).
nbdcopy "$URI?tls-certificates=$dir/good" snap6.raw
nbdcopy --no-extents "$delta?tls-certificates=$dir/good" delta6.raw
cmp snap6.raw delta6.raw
refused nbdinfo "$delta?tls-certificates=$dir/noclient"
refused nbdinfo "nbd://127.0.0.1:$(port_of "$delta")/"
expect 204 DELETE "/v1/vms/vm1/backups/$ID"
test "$(x509s)" -eq 0
assert_no_nbd_net_leftovers "$Q" "$lo" "$hi" "$dir/run"
kill_pullbackd

x509conf "nbd-tls-allowed-dn = $client_dn"
run
begin "{\"checkpoint\":\"c7\",\"since\":\"$(last)\"}"
test "$(disk_mode "$B" vd0)" = incremental
jq -e '.disks[0].delta_uri == null and
       (.disks[0].delta.unavailable | test("nbd-tls-allowed-dn"))' <<<"$B" >/dev/null
test "$(pgrep -f "[n]bdkit.*$dir/" | wc -l)" -eq 0
nbdinfo "$URI?tls-certificates=$dir/good" >/dev/null
expect 204 DELETE "/v1/vms/vm1/backups/$ID"
assert_no_nbd_net_leftovers "$Q" "$lo" "$hi" "$dir/run"
kill_pullbackd
