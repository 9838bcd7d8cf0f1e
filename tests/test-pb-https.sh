#!/usr/bin/env bash
# pullback: HTTPS for the REST API.  TCP off loopback only with TLS (a
# config error naming the line otherwise); the key file closed to others;
# curl --cacert with a bearer token works on loopback and on 0.0.0.0, no
# or a wrong token is 401, plain HTTP to the HTTPS port is 400
# https-required, no TLS at all is closed; several tokens, re-read at
# SIGHUP (a removed one 401, a new one 200, a broken file keeps the old
# ones); with tls-client-ca a client certificate is required and checked
# (none, another CA's, one not for clients: 403; a good one: 200, still
# with a token); a backup begun, its extents streamed (the same as on the
# unix socket) and ended over HTTPS; idle TCP connections and hanging
# handshakes lock no client out and cost no thread.  Certificates are made here (certtool).
# SPDX-License-Identifier: BSD-3-Clause

. "$abs_top_srcdir/tests/functions.sh"
. "$abs_top_srcdir/tests/functions-pullbackd.sh"
. "$abs_top_srcdir/tests/functions-certs.sh"
requires curl jq python3 certtool qemu-storage-daemon qemu-img nbdsh
set -e

make_tmpdir dir
cd "$dir"

# --- Certificates -----------------------------------------------------------
make_ca ca
make_ca other-ca
make_cert server ca tls_www_server 127.0.0.1
make_cert client ca tls_www_client
make_cert stranger other-ca tls_www_client
# Signed by the right CA, but for servers only.
make_cert server2 ca tls_www_server

t1=tok-one-0123456789abcdef
t2=tok-two-0123456789abcdef
t3=tok-three-0123456789abcdef
cat > tokens <<EOF
# API clients of pullbackd
$t1

$t2   # the backup proxy
EOF
chmod 600 tokens

p1=$(free_ports 1)
p2=$(free_ports 1 0.0.0.0)

# --- Configuration ----------------------------------------------------------
# bad CONF-TEXT MESSAGE: pullbackd -n refuses CONF-TEXT saying MESSAGE.
bad ()
{
  refused_conf "$@"
  # Never a key or a token in a message.
  fails grep -q "PRIVATE\|$t1\|$t2" <<<"$REFUSED_ERR"
}
tls="tls-cert = $dir/server.pem
tls-key = $dir/server-key.pem"
# Off loopback without TLS: refused, naming the line.
bad "token-file = $dir/tokens
listen = 0.0.0.0:$p2" \
  "bad.conf:2: key 'listen': 0.0.0.0:$p2 is not a loopback address; off loopback the API is served over HTTPS only: set 'tls-cert' and 'tls-key'"
bad "token-file = $dir/tokens
tls-cert = $dir/server.pem
listen = 0.0.0.0:$p2" "bad.conf:2: key 'tls-cert': needs 'tls-key' too"
bad "token-file = $dir/tokens
tls-client-ca = $dir/ca.pem" "bad.conf:2: key 'tls-client-ca': client certificates need HTTPS"
rc=0; err=$("$PULLBACKD" -n -c <(echo "token-file = $dir/tokens") --listen "0.0.0.0:$p2" 2>&1) || rc=$?
test "$rc" -eq 1
case "$err" in *"--listen: key 'listen': 0.0.0.0:$p2 is not a loopback address"*) ;; *) false ;; esac
# With TLS it is allowed; and so is loopback without TLS.
printf '%s\n' "token-file = $dir/tokens" "$tls" "listen = 0.0.0.0:$p2" > ok.conf
test "$("$PULLBACKD" -n -c ok.conf)" = "configuration OK"
printf '%s\n' "token-file = $dir/tokens" "listen = 127.0.0.1:$p1" > ok2.conf
test "$("$PULLBACKD" -n -c ok2.conf)" = "configuration OK"
# A key file others may read, or its group write: refused at start.
chmod 644 server-key.pem
bad "token-file = $dir/tokens
$tls" "tls-key $dir/server-key.pem: others may access it or its group may write it (mode 644); make it 0600 or 0640"
chmod 660 server-key.pem
bad "token-file = $dir/tokens
$tls" "(mode 660)"
chmod 640 server-key.pem
# A key that is not the certificate's.
bad "token-file = $dir/tokens
tls-cert = $dir/server.pem
tls-key = $dir/client-key.pem" "tls-cert $dir/server.pem, tls-key $dir/client-key.pem:"
bad "$tls
tls-client-ca = $dir/tokens" "tls-client-ca $dir/tokens:"
# The tokens file: errors name the line, never the token.
printf '# x\n%s\nshort-token\n' "$t1" > badtokens; chmod 600 badtokens
bad "token-file = $dir/badtokens" "token-file $dir/badtokens:3: a token must be 16 to 4096 characters"
printf '%s %s\n' "$t1" "$t2" > badtokens
bad "token-file = $dir/badtokens" "token-file $dir/badtokens:1: one token a line"
printf '# nothing\n\n' > badtokens
bad "token-file = $dir/badtokens" "token-file $dir/badtokens: no token in it"

# --- HTTPS with tokens ------------------------------------------------------
printf '%s\n' "token-file = $dir/tokens" "$tls" > https.conf
start_pullbackd "$dir" -c https.conf --listen "127.0.0.1:$p1" \
  --listen "0.0.0.0:$p2"
u1=https://127.0.0.1:$p1
u2=https://127.0.0.1:$p2
status () { curl -sS -o /dev/null -w '%{http_code}' --cacert ca.pem "$@"; }
bearer () { printf 'Authorization: Bearer %s' "$1"; }
wait_for 10 curl -sf --cacert ca.pem -H "$(bearer $t1)" "$u1/v1/health"
for u in "$u1" "$u2"; do
  for t in $t1 $t2; do
    out=$(curl -sS --cacert ca.pem -H "$(bearer $t)" "$u/v1/health")
    jq -e '.status == "ok"' <<<"$out" >/dev/null
  done
  test "$(status "$u/v1/health")" = 401
  test "$(status -H "$(bearer $t3)" "$u/v1/health")" = 401
  curl -sS --cacert ca.pem "$u/v1/vms" | jq -e '.error.code == "unauthorized"' >/dev/null
  # 401 before the body is read: nothing is registered.
  test "$(status -X POST -H 'Content-Type: application/json' \
           -d '{"name":"x","qmp":"/x.sock"}' "$u/v1/vms")" = 401
done
test ! -e state/vms/x.json
# The server is who it says only to those who trust its CA.
rc=0; curl -sS -o /dev/null "$u1/v1/health" 2>/dev/null || rc=$?
test "$rc" -eq 60
# Plain HTTP to the HTTPS port: a clear refusal, in the clear.
out=$(curl -sS -w '\n%{http_code}' -H "$(bearer $t1)" "http://127.0.0.1:$p1/v1/health")
test "$(tail -1 <<<"$out")" = 400
head -1 <<<"$out" | jq -e '.error.code == "https-required"' >/dev/null
# Neither TLS nor HTTP: closed without a byte (reset, as what it sent
# was not read).
got=$(python3 -c '
import socket, sys
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=30)
s.sendall(b"\x00\x01\x02garbage\r\n\r\n")
try:
    print(len(s.recv(100)))
except ConnectionResetError:
    print("reset")' "$p1")
case "$got" in 0|reset) ;; *) false ;; esac
# The unix socket stays plain HTTP, without a token.
expect 200 GET /v1/health >/dev/null

# --- Tokens re-read at SIGHUP -----------------------------------------------
# hup PATTERN: SIGHUP, then wait for one more log line with PATTERN.
hup ()
{
  local n
  n=$(grep -c "$1" "$PB_LOG" || true)
  kill -HUP "$PB_PID"
  wait_for 30 sh -c "[ \$(grep -c '$1' '$PB_LOG') -gt $n ]"
}
printf '%s\n%s\n' "$t2" "$t3" > tokens.new; chmod 600 tokens.new
mv tokens.new tokens
hup "reload: 2 bearer tokens from $dir/tokens"
test "$(status -H "$(bearer $t1)" "$u1/v1/health")" = 401
test "$(status -H "$(bearer $t2)" "$u1/v1/health")" = 200
test "$(status -H "$(bearer $t3)" "$u2/v1/health")" = 200
# A broken file, or one open to others, keeps the tokens as they are.
printf 'short\n' > tokens
hup "keeping the current tokens"
test "$(status -H "$(bearer $t3)" "$u1/v1/health")" = 200
printf '%s\n' "$t1" > tokens; chmod 604 tokens
hup "keeping the current tokens"
test "$(status -H "$(bearer $t1)" "$u1/v1/health")" = 401
test "$(status -H "$(bearer $t3)" "$u1/v1/health")" = 200
chmod 600 tokens
hup "reload: 1 bearer token from"
test "$(status -H "$(bearer $t1)" "$u1/v1/health")" = 200
test "$(status -H "$(bearer $t3)" "$u1/v1/health")" = 401
kill_pullbackd
# Never a token nor a key in the log.
fails grep -q "PRIVATE\|$t1\|$t2\|$t3" "$PB_LOG"

# --- Client certificates ----------------------------------------------------
printf '%s\n' "$t1" "$t2" > tokens
printf '%s\n' "token-file = $dir/tokens" "$tls" "tls-client-ca = $dir/ca.pem" \
  > mtls.conf
start_qsd "$dir" 1 256M
qsd_writer_exports "$dir"
# Data every 128 KiB (two qcow2 clusters): thousands of extents, a
# streamed answer of several chunks.
PATH="/usr/bin:$PATH" nbdsh -u "nbd+unix:///guest-disk0?socket=$dir/guest.sock" \
  -c "for i in range(2048): h.pwrite(b'x' * 4096, i * 131072)" -c "h.flush()"
start_pullbackd "$dir" -c mtls.conf --listen "127.0.0.1:$p1" \
  --vm "vm1=$QMP_SOCK,nbd=unix:$dir/guest.sock"
mine=(--cert client.pem --key client-key.pem)
wait_for 10 curl -sf --cacert ca.pem "${mine[@]}" -H "$(bearer $t1)" "$u1/v1/health"
out=$(curl -sS --cacert ca.pem "${mine[@]}" -H "$(bearer $t2)" "$u1/v1/health")
jq -e '.status == "ok"' <<<"$out" >/dev/null
# A certificate is not a token.
test "$(status "${mine[@]}" "$u1/v1/health")" = 401
# No certificate: refused before the token is looked at.
out=$(curl -sS --cacert ca.pem -H "$(bearer $t1)" -w '\n%{http_code}' "$u1/v1/health")
test "$(tail -1 <<<"$out")" = 403
head -1 <<<"$out" | jq -e '.error.code == "client-certificate-required"' >/dev/null
# Another CA's, or the right CA's but not for a client: refused.
for c in stranger server2; do
  out=$(curl -sS --cacert ca.pem --cert $c.pem --key $c-key.pem \
          -H "$(bearer $t1)" -w '\n%{http_code}' "$u1/v1/health")
  test "$(tail -1 <<<"$out")" = 403
  head -1 <<<"$out" | jq -e '.error.code == "client-certificate-invalid"' >/dev/null
done
# Nor is anything done for them.
test "$(status --cert stranger.pem --key stranger-key.pem -H "$(bearer $t1)" \
         -X POST -H 'Content-Type: application/json' \
         -d '{"name":"x","qmp":"/x.sock"}' "$u1/v1/vms")" = 403
test ! -e state/vms/x.json
# A backup over HTTPS: begin, extents (streamed), end.
wait_vm_connected vm1
api_tls () { curl -sS --cacert ca.pem "${mine[@]}" -H "$(bearer $t2)" "$@"; }
b=$(api_tls -H 'Content-Type: application/json' -d '{"checkpoint":"c1"}' \
      -w '\n%{http_code}' "$u1/v1/vms/vm1/backups")
test "$(tail -1 <<<"$b")" = 201
id=$(head -1 <<<"$b" | jq -r .id)
E=/v1/vms/vm1/backups/$id/disks/disk0/extents
api_tls "$u1$E" > extents-https.json
expect 200 GET "$E" > extents-unix.json
cmp extents-https.json extents-unix.json
test "$(jq '.extents | length' extents-https.json)" -ge 4096
test "$(stat -c %s extents-https.json)" -gt $((3 * 65536))
test "$(status "${mine[@]}" -H "$(bearer $t2)" -X DELETE "$u1/v1/vms/vm1/backups/$id")" = 204
kill_pullbackd

# --- Idle connections lock no one out ---------------------------------------
# With 1024 file descriptors, at most 256 are held for connections that
# wait (api/http.c, fd_budget): 300 connections that never send a byte,
# then 300 that send a ClientHello and hang (each held twice while it
# waits, by libmicrohttpd and by the door), make the oldest go.
cat > pullbackd-1024 <<EOF
#!/bin/sh
ulimit -n 1024 && exec "$PULLBACKD" "\$@"
EOF
chmod +x pullbackd-1024
PULLBACKD=$dir/pullbackd-1024 start_pullbackd "$dir" -c https.conf \
  --listen "127.0.0.1:$p1"
wait_for 10 curl -sf --cacert ca.pem -H "$(bearer $t1)" "$u1/v1/health"
python3 "$abs_top_srcdir/tests/hold-tls.py" 127.0.0.1 "$p1" 300 300 \
  >hold.out 2>hold.log &
hold=$!
track_pid $hold
wait_for 120 grep -q '^open 600$' hold.out
closed () { sed -n 's/^closed //p' hold.out | tail -1; }
# The oldest went to make room (at most 128 hanging handshakes stay).
wait_for 60 sh -c "[ \$(sed -n 's/^closed //p' hold.out | tail -1) -ge 472 ] 2>/dev/null"
# Answers, not a lock-out (--max-time is a bound, not a timing claim).
out=$(curl -sS --max-time 30 --cacert ca.pem -H "$(bearer $t2)" "$u1/v1/health")
jq -e '.status == "ok"' <<<"$out" >/dev/null
threads=$(ls "/proc/$PB_PID/task" | wc -l)
echo "closed so far: $(closed), threads: $threads"
test "$threads" -lt 50
# Those left are ended at their deadline, handshake or not.
wait_for 120 sh -c "[ \$(sed -n 's/^closed //p' hold.out | tail -1) -eq 600 ] 2>/dev/null"
out=$(curl -sS --max-time 30 --cacert ca.pem -H "$(bearer $t1)" "$u1/v1/vms")
jq -e '.vms == []' <<<"$out" >/dev/null
kill $hold
wait $hold 2>/dev/null || true
kill_pullbackd
