# pullback tests: helpers for tests that run pullbackd.  Source after
# functions.sh:
#
#   . "$abs_top_srcdir/tests/functions.sh"
#   . "$abs_top_srcdir/tests/functions-pullbackd.sh"
#
# SPDX-License-Identifier: BSD-3-Clause

PULLBACKD="${abs_top_builddir:-.}/server/pullbackd"
NBD_DIRTY="${abs_top_srcdir:-.}/tests/nbd-dirty.py"

# start_pullbackd DIR ARGS...: run pullbackd in the foreground (debug log
# in DIR/pullbackd.log) with its state and run dirs under DIR and its API
# on the unix socket DIR/api.sock.  Requests may name paths under DIR
# (--allowed-root DIR) unless PB_NO_ROOT is set.  Sets PB_PID and PB_API.
start_pullbackd ()
{
  local dir=$1; shift
  local root=(--allowed-root "$dir")
  [ -z "${PB_NO_ROOT:-}" ] || root=()
  PB_API=$dir/api.sock
  PB_LOG=$dir/pullbackd.log
  rm -f "$PB_API"
  "$PULLBACKD" -f --log-level debug --state-dir "$dir/state" \
    --run-dir "$dir/run" --listen "$PB_API" "${root[@]}" "$@" \
    >>"$PB_LOG" 2>&1 &
  PB_PID=$!
  cleanup_fn kill_pullbackd
  wait_for 10 test -S "$PB_API"
}

# Stop pullbackd (SIGTERM: it ends its backups) and fail if it did not
# exit cleanly or a sanitizer complained in its log.
kill_pullbackd ()
{
  local rc=0
  if [ -n "${PB_PID:-}" ] && kill -0 "$PB_PID" 2>/dev/null; then
    kill "$PB_PID" 2>/dev/null || true
    wait "$PB_PID" 2>/dev/null || rc=$?
  fi
  PB_PID=
  if grep -q 'Sanitizer\|runtime error' "$PB_LOG" 2>/dev/null; then
    say_fail "sanitizer report in $PB_LOG"
    grep -A30 'Sanitizer\|runtime error' "$PB_LOG" >&2
    return 1
  fi
  if [ "$rc" -ne 0 ]; then
    say_fail "pullbackd exited with status $rc"
    return 1
  fi
}

# api METHOD PATH [BODY]: prints the response body; the status goes to
# $API_STATUS (through the file $PB_API.status, as api runs in $(...)).
api ()
{
  local method=$1 path=$2 body=${3-}
  local args=(-sS --unix-socket "$PB_API" -X "$method" -o /dev/stdout
              -w '%{stderr}%{http_code}' "http://localhost$path")
  if [ $# -ge 3 ]; then
    args+=(-H 'Content-Type: application/json' --data-binary "$body")
  fi
  curl "${args[@]}" 2>"$PB_API.status"
}

api_status () { cat "$PB_API.status"; }

# expect STATUS METHOD PATH [BODY]: run api and fail unless the status is
# STATUS; prints the body.
expect ()
{
  local want=$1; shift
  local out
  out=$(api "$@")
  if [ "$(api_status)" != "$want" ]; then
    say_fail "$* -> $(api_status), expected $want: $out"
    return 1
  fi
  printf '%s\n' "$out"
}

# expect_error STATUS CODE METHOD PATH [BODY]: the error code too.
expect_error ()
{
  local status=$1 code=$2; shift 2
  local out
  out=$(expect "$status" "$@") || return 1
  if [ "$(jq -r .error.code <<<"$out")" != "$code" ]; then
    say_fail "$* -> error $(jq -c .error <<<"$out"), expected code $code"
    return 1
  fi
  printf '%s\n' "$out"
}

# wait_vm_connected VM: until pullbackd reports the VM's QEMU connected.
wait_vm_connected ()
{
  wait_for 20 sh -c "curl -sS --unix-socket '$PB_API' \
    http://localhost/v1/vms/$1 | jq -e '.status == \"connected\"' >/dev/null"
}

# dirty_map URI CONTEXT: the dirty extents as JSON [[offset, length], ...].
dirty_map ()
{
  PATH="/usr/bin:$PATH" "$NBD_DIRTY" map "$1" "$2"
}

# expected_map GRANULARITY OFFSET:LENGTH...: the clusters those writes
# dirty, merged, in the form dirty_map prints.
expected_map ()
{
  python3 - "$@" <<'PY'
import json, sys
g = int(sys.argv[1])
clusters = set()
for w in sys.argv[2:]:
    off, length = (int(x) for x in w.split(":"))
    clusters.update(range(off // g, (off + length + g - 1) // g))
out = []
for c in sorted(clusters):
    if out and out[-1][0] + out[-1][1] == c * g:
        out[-1][1] += g
    else:
        out.append([c * g, g])
print(json.dumps(out))
PY
}

# disk_uri JSON DISK / disk_ctx JSON DISK: from a backup answer.
disk_uri () { jq -r ".disks[] | select(.name == \"$2\") | .nbd.uri" <<<"$1"; }
disk_ctx () { jq -r ".disks[] | select(.name == \"$2\") | .nbd.dirty_bitmap_context" <<<"$1"; }
disk_mode () { jq -r ".disks[] | select(.name == \"$2\") | .mode" <<<"$1"; }
disk_reason () { jq -r ".disks[] | select(.name == \"$2\") | .reason" <<<"$1"; }

# assert_no_leftovers QMP_SOCKET SCRATCH_DIR: QEMU holds no node, job,
# export or temporary bitmap of ours, and no scratch file is left.
assert_no_leftovers ()
{
  local qmp=$1 scratch=$2 n
  n=$(qmpcmd "$qmp" query-named-block-nodes '{"flat":true}' |
      jq '[.[] | select(."node-name" | test("^pb-"))] | length')
  [ "$n" -eq 0 ] || { say_fail "$n pb-* nodes left"; return 1; }
  n=$(qmpcmd "$qmp" query-jobs | jq 'length')
  [ "$n" -eq 0 ] || { say_fail "$n jobs left"; return 1; }
  n=$(qmpcmd "$qmp" query-block-exports |
      jq '[.[] | select(.id | test("^pb-"))] | length')
  [ "$n" -eq 0 ] || { say_fail "$n pb-* exports left"; return 1; }
  n=$(qmpcmd "$qmp" query-named-block-nodes '{"flat":true}' |
      jq '[.[]."dirty-bitmaps"[]? | select(.name? // "" | test("^backup-"))] | length')
  [ "$n" -eq 0 ] || { say_fail "$n backup-* bitmaps left"; return 1; }
  n=$(find "$scratch" -name 'pullback-*.qcow2' 2>/dev/null | wc -l)
  [ "$n" -eq 0 ] || { say_fail "$n scratch files left"; return 1; }
}

# assert_no_nbd_net_leftovers QMP_SOCKET LO HI RUN_DIR: no TLS or authz
# object of ours (pb-*) in QEMU, no export, nothing listening on the TCP
# ports LO..HI, no PSK keys file in the run directory.
assert_no_nbd_net_leftovers ()
{
  local qmp=$1 lo=$2 hi=$3 run=$4 n p
  n=$(qmpcmd "$qmp" qom-list '{"path":"/objects"}' |
      jq '[.[] | select(.name | test("^pb-"))] | length')
  [ "$n" -eq 0 ] || { say_fail "$n pb- objects left"; return 1; }
  n=$(qmpcmd "$qmp" query-block-exports | jq 'length')
  [ "$n" -eq 0 ] || { say_fail "$n exports left"; return 1; }
  for ((p = lo; p <= hi; p++)); do
    if ss -Hltn "sport = :$p" | grep -q .; then
      say_fail "port $p still listening"; return 1
    fi
  done
  if ls "$run"/vms/*/keys.psk >/dev/null 2>&1; then
    say_fail "a keys.psk is left"; return 1
  fi
}

# port_of URI: the port of a TCP NBD URI.
port_of () { sed -E 's|.*:([0-9]+)/.*|\1|' <<<"$1"; }

# refused CMD...: CMD fails (within 20 s).
refused () { fails timeout 20 "$@" >/dev/null 2>&1; }

# assert_dirty_map BACKUP DISK OFFSET:LENGTH...: the dirty-bitmap context
# of DISK in the backup answer BACKUP marks exactly the 64 KiB clusters
# those writes touched.
assert_dirty_map ()
{
  local b=$1 disk=$2; shift 2
  local got want
  got=$(dirty_map "$(disk_uri "$b" "$disk")" "qemu:dirty-bitmap:backup-$disk")
  want=$(expected_map 65536 "$@")
  if [ "$got" != "$want" ]; then
    say_fail "disk $disk: dirty map $got, want $want"
    return 1
  fi
}

# assert_chain DIR DISK FULL URI WANT: a vendor's incremental restore.
# The full backup FULL (raw) becomes DIR/base-DISK.qcow2, exactly the
# blocks the incremental export URI marks dirty (context
# qemu:dirty-bitmap:backup-DISK) are copied into an overlay
# DIR/inc-DISK.qcow2 on it, and the chain must equal WANT (raw).
assert_chain ()
{
  local dir=$1 disk=$2 full=$3 uri=$4 want=$5
  qemu-img convert -f raw -O qcow2 "$full" "$dir/base-$disk.qcow2"
  qemu-img create -q -f qcow2 -b "$dir/base-$disk.qcow2" -F qcow2 \
    "$dir/inc-$disk.qcow2"
  PATH="/usr/bin:$PATH" "$NBD_DIRTY" apply "$uri" \
    "qemu:dirty-bitmap:backup-$disk" "$dir/inc-$disk.qcow2"
  qemu-img compare -f qcow2 -F raw "$dir/inc-$disk.qcow2" "$want"
}

# bitmaps QMP_SOCKET NODE: "name:recording" of each named bitmap, sorted.
bitmaps ()
{
  qmpcmd "$1" query-named-block-nodes '{"flat":true}' |
    jq -r --arg n "$2" '.[] | select(."node-name" == $n) |
      ."dirty-bitmaps"[]? | select(.name) |
      "\(.name):\(.recording)\(if .inconsistent then ":inconsistent" else "" end)"' |
    sort | tr '\n' ' '
}

# expect_image FILE WRITE...: FILE holds zeroes except the writes
# OFFSET:LENGTH:BYTE, later ones over earlier ones; 64 MiB, the size of
# the test disks.
expect_image ()
{
  python3 - "$@" <<'PY'
import sys
path, writes = sys.argv[1], sys.argv[2:]
img = bytearray(64 << 20)
for w in writes:
    off, length, byte = w.split(":")
    off, length = int(off), int(length)
    img[off:off + length] = bytes([int(byte, 0)]) * length
open(path, "wb").write(img)
PY
}

# refused_conf CONF-TEXT MESSAGE: pullbackd -n refuses CONF-TEXT (written
# to ./bad.conf) with exit status 1 and a message containing MESSAGE.
# The message is left in $REFUSED_ERR.
refused_conf ()
{
  local rc=0
  printf '%s\n' "$1" > bad.conf
  REFUSED_ERR=$("$PULLBACKD" -n -c bad.conf 2>&1) || rc=$?
  test "$rc" -eq 1
  case "$REFUSED_ERR" in
    *"$2"*) ;;
    *) say_fail "got '$REFUSED_ERR', want '$2'"; return 1 ;;
  esac
}
