#!/usr/bin/env bash
# pullback: pullbackd's configuration.  -n checks a file and names file,
# line and key on error; no file at all is valid; VMs come from the file
# and from --vm; SIGHUP adds and removes the file's VMs.
# SPDX-License-Identifier: BSD-3-Clause

. "$abs_top_srcdir/tests/functions.sh"
. "$abs_top_srcdir/tests/functions-pullbackd.sh"
requires qemu-storage-daemon qemu-img jq curl
set -e

make_tmpdir dir

# -n with no configuration at all: the defaults are valid.
out=$("$PULLBACKD" -n -c /dev/null)
test "$out" = "configuration OK"

cat > "$dir/good.conf" <<CONF
# comment
state-dir = $dir/state
run-dir = $dir/run
log-level = debug
backup-ttl = 60
backup-ttl-max = 120

[vm a]
qmp = $dir/a.qmp
CONF
"$PULLBACKD" -n -c "$dir/good.conf"

check_bad () # LINE-IN-FILE EXPECTED-MESSAGE
{
  printf '%s\n' "$1" > "$dir/bad.conf"
  local rc=0 err
  err=$("$PULLBACKD" -n -c "$dir/bad.conf" 2>&1) || rc=$?
  test "$rc" -eq 1
  case "$err" in
    *"$dir/bad.conf$2"*) ;;
    *) say_fail "got '$err', want '$2'"; return 1 ;;
  esac
}
check_bad "backup-ttl = soon" ":1: key 'backup-ttl': must be a whole number"
check_bad "listen = 127.0.0.1:0" ":1: key 'listen': port must be"
check_bad "[vm ../x]" ":1: VM id must start with a letter or digit"
check_bad "colour = blue" ":1: unknown key 'colour'"
check_bad "scratch-max = lots" ":1: key 'scratch-max': must be a size"
check_bad "scratch-create = maybe" ":1: key 'scratch-create': must be auto or qemu"
rc=0; err=$("$PULLBACKD" -n --vm 'x=relative' 2>&1) || rc=$?
test "$rc" -eq 1
case "$err" in *"--vm x=relative: key 'qmp' of VM 'x': must be an absolute path"*) ;; *) false ;; esac
rc=0; "$PULLBACKD" -n -c "$dir/missing.conf" 2>/dev/null || rc=$?
test "$rc" -eq 1

# A running daemon: VM a from the file, b from --vm; SIGHUP after the file
# changes adds c and removes a.
start_qsd "$dir" 1 16M
cat > "$dir/run.conf" <<CONF
[vm a]
qmp = $QMP_SOCK
CONF
start_pullbackd "$dir" -c "$dir/run.conf" --vm "b=$dir/nowhere.sock"
wait_vm_connected a
test "$(expect 200 GET /v1/vms | jq -c '[.vms[] | [.name, .status]] | sort')" = \
     '[["a","connected"],["b","disconnected"]]'
# A VM whose QEMU is not there says why, and the rest goes on.
expect 200 GET /v1/vms/b | jq -e '.error | test("nowhere.sock")'
cat > "$dir/run.conf" <<CONF
[vm c]
qmp = $QMP_SOCK
CONF
kill -HUP "$PB_PID"
wait_vm_connected c
test "$(expect 200 GET /v1/vms | jq -c '[.vms[].name] | sort')" = '["b","c"]'
# A broken file on SIGHUP keeps the VMs as they are.
echo "nonsense" > "$dir/run.conf"
kill -HUP "$PB_PID"
sleep 0.5
test "$(expect 200 GET /v1/vms | jq -c '[.vms[].name] | sort')" = '["b","c"]'
kill -0 "$PB_PID"

# --- TCP needs loopback and a bearer token --------------------------------
kill_pullbackd
check_bad "listen = 192.0.2.1:8960" ":1: key 'listen': 192.0.2.1:8960 is not a loopback address"
rc=0; err=$("$PULLBACKD" -n -c <(echo "listen = 127.0.0.1:8960") 2>&1) || rc=$?
test "$rc" -eq 1
case "$err" in *"key 'listen': TCP address 127.0.0.1:8960 needs 'token-file'"*) ;; *) false ;; esac
rc=0; err=$("$PULLBACKD" -n --listen 192.0.2.1:8960 2>&1) || rc=$?
test "$rc" -eq 1
case "$err" in *"192.0.2.1:8960 is not a loopback address"*) ;; *) false ;; esac
printf 'short\n' > "$dir/token"; chmod 600 "$dir/token"
rc=0; err=$("$PULLBACKD" -n --listen 127.0.0.1:8960 -c <(echo "token-file = $dir/token") 2>&1) || rc=$?
test "$rc" -eq 1
case "$err" in *"must be 16 to 4096 characters"*) ;; *) false ;; esac
printf 's3cret-token-0123456789\n' > "$dir/token"; chmod 644 "$dir/token"
rc=0; err=$("$PULLBACKD" -n --listen 127.0.0.1:8960 -c <(echo "token-file = $dir/token") 2>&1) || rc=$?
test "$rc" -eq 1
case "$err" in *"others may access it"*) ;; *) false ;; esac
chmod 600 "$dir/token"
port=$(free_ports 1)
echo "token-file = $dir/token" > "$dir/tcp.conf"
# The same address twice is an error, not a second listener.
rc=0; err=$("$PULLBACKD" -n --listen "$dir/x.sock" --listen "$dir/x.sock" 2>&1) || rc=$?
test "$rc" -eq 1
case "$err" in *"x.sock is given twice"*) ;; *) false ;; esac
start_pullbackd "$dir" -c "$dir/tcp.conf" --listen "127.0.0.1:$port"
wait_for 10 sh -c "curl -s -o /dev/null http://127.0.0.1:$port/v1/health"
status () { curl -s -o /dev/null -w '%{http_code}' "$@"; }
test "$(status "http://127.0.0.1:$port/v1/health")" = 401
test "$(status -H 'Authorization: Bearer wrong-token-0123456789' "http://127.0.0.1:$port/v1/health")" = 401
test "$(status -H 'Authorization: Bearer s3cret-token-0123456789x' "http://127.0.0.1:$port/v1/health")" = 401
test "$(status -H 'Authorization: s3cret-token-0123456789' "http://127.0.0.1:$port/v1/health")" = 401
curl -s "http://127.0.0.1:$port/v1/vms" | jq -e '.error.code == "unauthorized"' >/dev/null
test "$(status -H 'Authorization: Bearer s3cret-token-0123456789' "http://127.0.0.1:$port/v1/health")" = 200
# A refused request changes nothing, body or not.
test "$(status -X POST -H 'Content-Type: application/json' -d '{"name":"x","qmp":"/x.sock"}' "http://127.0.0.1:$port/v1/vms")" = 401
test ! -e "$dir/state/vms/x.json"
# The unix socket (mode 0660) needs no token.
test "$(stat -c %a "$PB_API")" = 660
expect 200 GET /v1/health >/dev/null
kill_pullbackd
