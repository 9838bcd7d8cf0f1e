#!/usr/bin/env bash
# pullback: NBD over TCP when things go wrong (issue 9 review).
#  - After a restart, an "nbd_server" record whose server is gone (QEMU
#    has no pb-nbd-tls object: QEMU restarted, or a record left by a
#    failed begin) is dropped: an NBD server QEMU runs then is someone
#    else's, neither stopped (idle) nor used (with exports).
#  - QEMU finds the port in use (its own network namespace, where a
#    chardev holds it) and the range has no other: 503 nbd-no-port, and
#    no port record, TLS object or keys file is left.
#  - A VM removed while its QEMU is gone gives its port back to the table.
#  - A registration's nbd_tls_psk_file replaced by a symlink after the
#    registration is refused at begin, not followed (root reads it).
#  - A saved registration whose NBD settings no longer pass (its PSK file
#    now readable by others) keeps the VM out of service, file untouched,
#    until fixed and SIGHUP; never a silent fallback to the unix socket.
# SPDX-License-Identifier: BSD-3-Clause

. "$abs_top_srcdir/tests/functions.sh"
. "$abs_top_srcdir/tests/functions-pullbackd.sh"
requires qemu-storage-daemon qemu-img jq curl ss python3 unshare ip
if ! unshare -n true 2>/dev/null; then
  echo "$0: SKIP: network namespaces are not available" >&2
  exit 77
fi
set -e

make_tmpdir dir
make_tmpdir outside
cd "$dir"

# Four free ports.
p1=$(free_ports 4)
p2=$((p1 + 1)) p3=$((p1 + 2)) p4=$((p1 + 3))

# no_port_record VM: the VM's state file exists and records no port.
no_port_record ()
{
  local rec
  rec=$(jq -c '.nbd_server // empty' "$dir/state/vms/$1.json")
  [ -z "$rec" ] || { say_fail "VM $1: port record left: $rec"; return 1; }
}
pb_objects () { qmpcmd "$1" qom-list '{"path":"/objects"}' | jq '[.[] | select(.name | test("^pb-"))] | length'; }

# a: QEMU runs an NBD server with the guest's exports; b: an idle one.
mkdir a b c d e f
start_qsd "$dir/a" 1
QA=$QMP_TEST_SOCK SA=$QMP_SOCK
qsd_writer_exports "$dir/a"
start_qsd "$dir/b" 1
QB=$QMP_TEST_SOCK SB=$QMP_SOCK
qmpcmd "$QB" nbd-server-start \
  "{\"addr\":{\"type\":\"unix\",\"data\":{\"path\":\"$dir/b/other.sock\"}}}" >/dev/null

# c: QEMU in its own network namespace, where a chardev listens on p3.
qemu-storage-daemon () { exec unshare -n sh -c 'ip link set lo up && exec qemu-storage-daemon "$@"' sh "$@"; }
start_qsd "$dir/c" 1 64M --chardev "socket,id=hold,host=127.0.0.1,port=$p3,server=on,wait=off"
unset -f qemu-storage-daemon
QC=$QMP_TEST_SOCK SC=$QMP_SOCK

cat > pb.conf <<EOF
nbd-transport = tcp
nbd-tls = psk
nbd-ports = $p1-$p1
[vm a]
qmp = $SA
[vm b]
qmp = $SB
[vm c]
qmp = $SC
nbd-ports = $p3-$p3
EOF
start_pullbackd "$dir" -c "$dir/pb.conf"
wait_vm_connected a
wait_vm_connected b
wait_vm_connected c

# --- QEMU says "in use" and no other port is left --------------------------
ss -Hltn "sport = :$p3" | fails grep -q .   # free here, not in QEMU's
expect 201 POST /v1/vms/c/checkpoints '{}' >/dev/null # a state file to read
expect_error 503 nbd-no-port POST /v1/vms/c/backups '{}'
no_port_record c
test "$(pb_objects "$QC")" -eq 0
fails test -e "$dir/run/vms/c/keys.psk"
test "$(qmpcmd "$QC" query-block-exports | jq length)" -eq 0

# --- A record whose server is gone ------------------------------------------
kill_pullbackd
for vm in a b; do
  [ -f "state/vms/$vm.json" ] || echo '{"version":1}' > "state/vms/$vm.json"
  jq --argjson p "$p1" '.nbd_server = {"port": $p, "tls": "psk"}' \
    "state/vms/$vm.json" > "state/vms/$vm.json.new"
  mv "state/vms/$vm.json.new" "state/vms/$vm.json"
done
start_pullbackd "$dir" -c "$dir/pb.conf"
wait_vm_connected a
wait_vm_connected b
# The guest's exports are where they were, the idle server still runs:
# a begin finds both servers busy (and uses neither).
qmpcmd "$QA" query-block-exports | jq -e 'map(.id) == ["guest-disk0"]'
expect_error 409 nbd-server-busy POST /v1/vms/a/backups '{}'
expect_error 409 nbd-server-busy POST /v1/vms/b/backups '{}'
qmpcmd "$QA" query-block-exports | jq -e 'map(.id) == ["guest-disk0"]'
no_port_record a
no_port_record b
ss -Hltn "sport = :$p1" | fails grep -q .

# --- A VM removed while its QEMU is gone frees its port ---------------------
start_qsd "$dir/d" 1
QD=$QMP_TEST_SOCK SD=$QMP_SOCK QSD_D=$QSD_PID
start_qsd "$dir/e" 1
QE=$QMP_TEST_SOCK SE=$QMP_SOCK
net=',"nbd_transport":"tcp","nbd_tls":"psk","nbd_ports":"'$p4'"'
expect 201 POST /v1/vms '{"name":"d","qmp":"'$SD'"'"$net"'}' >/dev/null
wait_vm_connected d
b=$(expect 201 POST /v1/vms/d/backups '{}')
jq -e --arg p ":$p4/" '.disks[0].nbd.uri | contains($p)' <<<"$b"
kill -9 "$QSD_D"
wait_for 20 sh -c "curl -sS --unix-socket '$PB_API' http://localhost/v1/vms/d |
  jq -e '.status != \"connected\"'"
expect 204 DELETE "/v1/vms/d?checkpoints=keep" >/dev/null
expect 201 POST /v1/vms '{"name":"e","qmp":"'$SE'"'"$net"'}' >/dev/null
wait_vm_connected e
b=$(expect 201 POST /v1/vms/e/backups '{}')
jq -e --arg p ":$p4/" '.disks[0].nbd.uri | contains($p)' <<<"$b"
expect 204 DELETE "/v1/vms/e/backups/$(jq -r .id <<<"$b")"
assert_no_nbd_net_leftovers "$QE" "$p4" "$p4" "$dir/run"

# --- A registration's PSK file swapped for a symlink ------------------------
start_qsd "$dir/f" 1
QF=$QMP_TEST_SOCK SF=$QMP_SOCK
mkdir keys
printf 'alice:%064d\n' 1 > keys/f.psk
printf 'secretuser:%064d\n' 2 > "$outside/secret.psk"
chmod 600 keys/f.psk "$outside/secret.psk"
expect 201 POST /v1/vms '{"name":"f","qmp":"'$SF'","nbd_transport":"tcp","nbd_ports":"'$p2'","nbd_tls_psk_file":"'$dir/keys/f.psk'"}' >/dev/null
wait_vm_connected f
rm keys/f.psk
ln -s "$outside/secret.psk" keys/f.psk
expect_error 422 path-not-allowed POST /v1/vms/f/backups '{}' |
  jq -e '.error.field == "nbd_tls_psk_file"'
fails test -e "$dir/run/vms/f/keys.psk"
assert_no_nbd_net_leftovers "$QF" "$p2" "$p2" "$dir/run"
# The file itself again: the identity is the file's first.
rm keys/f.psk
printf 'alice:%064d\n' 1 > keys/f.psk
chmod 600 keys/f.psk
b=$(expect 201 POST /v1/vms/f/backups '{}')
jq -e '.disks[0].nbd.tls_username == "alice" and .nbd_tls_psk == null' <<<"$b"
expect 204 DELETE "/v1/vms/f/backups/$(jq -r .id <<<"$b")"
assert_no_nbd_net_leftovers "$QF" "$p2" "$p2" "$dir/run"

# --- A saved registration whose NBD settings no longer pass -----------------
# Its PSK file became readable by others while the daemon was down: the VM
# stays registered out of service (not silently on the unix socket, which
# its TCP clients cannot reach and whose next save would forget the
# settings), its file untouched; fixed, SIGHUP brings it back on TCP.
kill_pullbackd
chmod 644 keys/f.psk
saved=$(sha256sum < state/vms/f.json)
start_pullbackd "$dir" -c "$dir/pb.conf"
wait_vm_connected a
v=$(expect 200 GET /v1/vms/f)
jq -e '.status == "state-error" and (.error | test("NBD settings")) and
       (.error | test("f.psk"))' <<<"$v"
expect_error 503 vm-state-unreadable POST /v1/vms/f/backups '{}' >/dev/null
test "$(sha256sum < state/vms/f.json)" = "$saved"
chmod 600 keys/f.psk
kill -HUP "$PB_PID"
wait_vm_connected f
b=$(expect 201 POST /v1/vms/f/backups '{}')
jq -e '.disks[0].nbd.uri | startswith("nbds://")' <<<"$b"
expect 204 DELETE "/v1/vms/f/backups/$(jq -r .id <<<"$b")"
assert_no_nbd_net_leftovers "$QF" "$p2" "$p2" "$dir/run"
