#!/usr/bin/env bash
# pullback: what comes through the HTTP door is checked before routing,
# and every error is the documented JSON, whoever answers it.
#  - a NUL (%00) or invalid UTF-8 in a path or query is 400 invalid-url
#    and routes nowhere (DELETE /v1/vms/vm2%00/checkpoints/mon once
#    unregistered vm2);
#  - ambiguous or malformed framing (two Content-Lengths, chunked with a
#    Content-Length, a negative length) is 400 in JSON, as are requests
#    libmicrohttpd refuses by itself (a bad header line, a head too
#    large, an unknown HTTP version);
#  - media types compare without case;
#  - a refused request's body is read and dropped: the client sees the
#    answer, not a broken pipe.
# SPDX-License-Identifier: BSD-3-Clause

. "$abs_top_srcdir/tests/functions.sh"
. "$abs_top_srcdir/tests/functions-pullbackd.sh"
requires qemu-storage-daemon qemu-img jq curl python3 sha256sum
set -e

make_tmpdir dir
start_qsd "$dir" 1 64M
token=s3cret-token-0123456789
printf '%s\n' "$token" > "$dir/token"; chmod 600 "$dir/token"
echo "token-file = $dir/token" > "$dir/tcp.conf"
port=$(free_ports 1)
start_pullbackd "$dir" -c "$dir/tcp.conf" --listen "127.0.0.1:$port"
wait_for 10 sh -c "curl -s -o /dev/null http://127.0.0.1:$port/v1/health"
expect 201 POST /v1/vms "{\"name\":\"vm2\",\"qmp\":\"$QMP_SOCK\"}" >/dev/null
wait_vm_connected vm2
expect 201 POST /v1/vms/vm2/checkpoints '{"name":"mon"}' >/dev/null
state=$dir/state/vms/vm2.json
before=$(sha256sum <"$state")

# raw [ADDR]: send the request on stdin (raw runs at the end of a
# pipeline, in a subshell: the answer goes to a file); then STATUS, CTYPE
# and BODY print its parts.
raw ()
{
  python3 "$abs_top_srcdir/tests/http-raw.py" "${1:-unix:$PB_API}" >"$dir/raw.out"
}
STATUS () { sed -n 1p "$dir/raw.out"; }
CTYPE () { sed -n 2p "$dir/raw.out"; }
BODY () { sed -n '3,$p' "$dir/raw.out"; }
# raw_error STATUS CODE [FIELD]: the last answer is that error, in JSON.
raw_error ()
{
  if [ "$(STATUS)" != "$1" ]; then
    say_fail "status $(STATUS), expected $1: $(BODY)"; return 1
  fi
  case "$(CTYPE)" in application/json*) ;;
    *) say_fail "Content-Type '$(CTYPE)': $(BODY)"; return 1 ;; esac
  BODY | jq -e --arg c "$2" '.error.code == $c and (.error.message | length > 0)' >/dev/null ||
    { say_fail "expected error $2: $(BODY)"; return 1; }
  if [ $# -ge 3 ]; then
    BODY | jq -e --arg f "$3" '.error.field == $f' >/dev/null ||
      { say_fail "expected field $3: $(BODY)"; return 1; }
  fi
}

# --- NUL and invalid UTF-8 in the URL: 400 before routing ---------------
expect_error 400 invalid-url DELETE '/v1/vms/vm2%00/checkpoints/mon' |
  jq -e '.error.field == "path"' >/dev/null
expect_error 400 invalid-url DELETE '/v1/vms/vm2%00' >/dev/null
expect_error 400 invalid-url GET '/v1/vms/vm2/checkpoints?limit=5%00abc' |
  jq -e '.error.field == "limit"' >/dev/null
expect_error 400 invalid-url GET '/v1/vms/vm2%C3%28' |
  jq -e '.error.field == "path"' >/dev/null
expect_error 400 invalid-url GET '/v1/vms/%FF/checkpoints' >/dev/null
expect_error 400 invalid-url DELETE '/v1/vms/vm2/checkpoints/mon%FF' >/dev/null
expect_error 400 invalid-url GET '/v1/vms/vm2/checkpoints?after=%C3%28' |
  jq -e '.error.field == "after"' >/dev/null
expect_error 400 invalid-url GET '/v1/vms/vm2/checkpoints?limit=%FF' |
  jq -e '.error.field == "limit"' >/dev/null
expect_error 400 invalid-url GET '/v1/vms/vm2/checkpoints?%00=1' |
  jq -e '.error.field == "query"' >/dev/null
expect_error 400 invalid-url GET '/v1/vms/vm2/checkpoints?li%FFmit=1' >/dev/null
expect_error 400 invalid-url GET '/v1/vms/vm2%0a' >/dev/null
# Raw bytes, not escaped, the same.
printf 'GET /v1/vms/vm2\xff HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n' | raw
raw_error 400 invalid-url path
printf 'DELETE /v1/vms/vm2\x01/checkpoints/mon HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n' | raw
raw_error 400 invalid-url path
# vm2 and its checkpoint are untouched; valid UTF-8 is just a bad name.
expect 200 GET /v1/vms/vm2 >/dev/null
expect 200 GET /v1/vms/vm2/checkpoints/mon >/dev/null
test "$(sha256sum <"$state")" = "$before"
expect_error 400 invalid-name GET '/v1/vms/caf%C3%A9' >/dev/null
expect 200 GET '/v1/vms/vm2/checkpoints?limit=5' >/dev/null

# --- Framing ------------------------------------------------------------
C='POST /v1/vms/vm2/checkpoints HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Type: application/json\r\n'
printf "$C"'Content-Length: 2\r\nContent-Length: 2\r\n\r\n{}' | raw
raw_error 400 invalid-header Content-Length
printf "$C"'Content-Length: 2\r\nContent-Length: 20\r\n\r\n{}' | raw
raw_error 400 invalid-header Content-Length
printf "$C"'Transfer-Encoding: chunked\r\nContent-Length: 2\r\n\r\n2\r\n{}\r\n0\r\n\r\n' | raw
raw_error 400 invalid-header Transfer-Encoding
printf "$C"'Transfer-Encoding: gzip\r\n\r\n' | raw
raw_error 400 invalid-header Transfer-Encoding
printf "$C"'Content-Length: -5\r\n\r\n' | raw
raw_error 400 invalid-header Content-Length
printf "$C"'Content-Length: abc\r\n\r\n' | raw
raw_error 400 invalid-header Content-Length
printf "$C"'Content-Length: 1x\r\n\r\n{' | raw
raw_error 400 invalid-header Content-Length
# (A malformed chunk inside a chunked body is still refused by
# libmicrohttpd itself, in its HTML: see pullback-api(7).)
printf "$C"'Transfer-Encoding: chunked\r\n\r\nzz\r\n{}\r\n0\r\n\r\n' | raw
test "$(STATUS)" = 400
# What libmicrohttpd used to answer in HTML.
printf 'GET /v1/health HTTP/1.1\r\nHost: x\r\nNoColon\r\n\r\n' | raw
raw_error 400 invalid-header
printf 'GET /v1/health HTTP/1.1\r\nHost : x\r\n\r\n' | raw
raw_error 400 invalid-header
printf 'GET /v1/health HTTP/1.1\r\nHost: x\r\n folded\r\n\r\n' | raw
raw_error 400 invalid-header
printf 'GARBAGE\r\n\r\n' | raw
raw_error 400 invalid-request-line
big=$(head -c 70000 /dev/zero | tr '\0' a)
printf 'GET /v1/health HTTP/1.1\r\nHost: x\r\nX-Big: %s\r\n\r\n' "$big" | raw
raw_error 431 header-too-large
printf 'GET /v1/health HTTP/2.0\r\nHost: x\r\n\r\n' | raw
raw_error 505 unsupported-http-version
printf 'GET /v1/health\r\n\r\n' | raw
raw_error 400 invalid-request-line
# Nothing of that changed anything.
test "$(sha256sum <"$state")" = "$before"

# --- Media types --------------------------------------------------------
B='POST /v1/vms/vm2/checkpoints HTTP/1.1\r\nHost: x\r\nConnection: close\r\n'
printf "$B"'Content-Type: Application/JSON; charset=utf-8\r\nContent-Length: 15\r\n\r\n{"name":"c2"}\r\n' | raw
test "$(STATUS)" = 201
printf "$B"'Content-Type: APPLICATION/json\r\nContent-Length: 15\r\n\r\n{"name":"c3"}\r\n' | raw
test "$(STATUS)" = 201
printf "$B"'Content-Type: application/jsonx\r\nContent-Length: 15\r\n\r\n{"name":"c4"}\r\n' | raw
raw_error 415 unsupported-media-type
printf "$B"'Content-Type: text/plain\r\nContent-Length: 15\r\n\r\n{"name":"c4"}\r\n' | raw
raw_error 415 unsupported-media-type
test "$(expect 200 GET /v1/vms/vm2/checkpoints | jq -c '[.checkpoints[].name]')" = '["mon","c2","c3"]'

# --- A refused request's body is read, the answer is seen ---------------
# A body declared too large, sent without waiting for 100 Continue: the
# daemon reads and drops it instead of closing under the client's feet.
printf 'POST /v1/vms/vm2/checkpoints HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 8000000\r\n\r\n' |
  python3 "$abs_top_srcdir/tests/http-raw.py" "unix:$PB_API" 8000000 >"$dir/raw.out"
raw_error 413 body-too-large
printf 'POST /v1/vms HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 8000000\r\n\r\n' |
  python3 "$abs_top_srcdir/tests/http-raw.py" "tcp:127.0.0.1:$port" 8000000 >"$dir/raw.out"
raw_error 401 unauthorized
# Over TCP without a token: 401 after a body of 8 MB sent at once.
out=$(head -c 8000000 /dev/zero | curl -sS -H 'Expect:' -H 'Content-Type: application/json' \
  --data-binary @- -w '\n%{http_code}' "http://127.0.0.1:$port/v1/vms" || true)
test "$(tail -1 <<<"$out")" = 401
# The scheme of Authorization has no case.
out=$(curl -sS -H "Authorization: bearer $token" -w '\n%{http_code}' \
  "http://127.0.0.1:$port/v1/health")
test "$(tail -1 <<<"$out")" = 200

kill_pullbackd
