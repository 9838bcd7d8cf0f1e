# pullback tests: helpers for tests of nbdkit-pullback-plugin.  Source
# after functions.sh:
#
#   . "$abs_top_srcdir/tests/functions.sh"
#   . "$abs_top_srcdir/tests/functions-plugin.sh"
#
# start_plugin DIR NAME ARGS...   nbdkit with the plugin on DIR/NAME.sock
# stop_plugin NAME                SIGTERM; fails on a sanitizer report
# norm_map < MAP.json             nbdinfo --map --json as merged lines
# dirty_as_delta < MAP.json       a dirty map in the delta view's form
# dirty_ranges < MAP.json         the dirty ranges of a dirty map
# overlay_ranges IMAGE            ranges stored in the top of a chain
# hold_and_cut URI CMD...         a client survives CMD ending the upstream
# gone PID                        PID has exited
#
# SPDX-License-Identifier: BSD-3-Clause

PLUGIN=${abs_top_builddir:-.}/plugin/.libs/nbdkit-pullback-plugin.so
CONTRIB=${abs_top_srcdir:-.}/contrib

# nbdkit is not instrumented.  Under --enable-sanitizers the plugin is
# built with UBSan only, whose runtime nbdkit can dlopen (see
# configure.ac); an ASan-built plugin would need libasan preloaded into
# nbdkit, which on Debian 12 hangs nbdkit at exit.
if ldd "$PLUGIN" 2>/dev/null | grep -q 'libasan\.so'; then
  echo "$0: SKIP: $PLUGIN is built with ASan, which nbdkit cannot host" >&2
  exit 77
fi

# nbdsh runs the first python3 on PATH; python3-libnbd is Debian's.
nbdsh () { PATH="/usr/bin:$PATH" command nbdsh "$@"; }

# start_plugin DIR NAME ARGS...: nbdkit serving the plugin with ARGS on
# DIR/NAME.sock, the way pullbackd runs it: 4 threads (or PLUGIN_THREADS),
# in the foreground, ending with its parent, ready once its pid file
# exists.  Log in DIR/NAME.log.  Sets NAME_PID (e.g. delta_PID) and NAME_URI.
start_plugin ()
{
  local dir=$1 name=$2 pid; shift 2
  rm -f "$dir/$name.sock" "$dir/$name.pid"
  nbdkit --exit-with-parent -f -U "$dir/$name.sock" --threads="${PLUGIN_THREADS:-4}" \
    -P "$dir/$name.pid" "$PLUGIN" "$@" >>"$dir/$name.log" 2>&1 &
  pid=$!
  track_pid $pid
  printf -v "${name}_PID" '%s' $pid
  printf -v "${name}_URI" '%s' "nbd+unix:///?socket=$dir/$name.sock"
  printf -v "_plugin_log_$name" '%s' "$dir/$name.log"
  cleanup_fn stop_plugin "$name"
  wait_for 20 _plugin_ready "$dir/$name.pid" $pid
  if ! kill -0 $pid 2>/dev/null; then
    echo "start_plugin: nbdkit $name exited:" >&2
    cat "$dir/$name.log" >&2
    return 1
  fi
}

_plugin_ready () { test -s "$1" || ! kill -0 "$2" 2>/dev/null; }

# stop_plugin NAME: SIGTERM, wait, and fail if nbdkit exited badly or a
# sanitizer complained in its log.
stop_plugin ()
{
  local name=$1 pidvar=${1}_PID logvar=_plugin_log_$1 pid rc=0
  pid=${!pidvar:-}
  if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then
    kill "$pid"
    wait "$pid" || rc=$?
  fi
  printf -v "$pidvar" '%s' ''
  if grep -q 'Sanitizer\|runtime error' "${!logvar}" 2>/dev/null; then
    say_fail "sanitizer report in ${!logvar}"
    grep -A40 'Sanitizer\|runtime error' "${!logvar}" >&2
    return 1
  fi
  if [ "$rc" -ne 0 ]; then
    say_fail "nbdkit $name exited with status $rc"
    return 1
  fi
}

# norm_map: nbdinfo --map --json on stdin as "offset length type" lines,
# neighbours of the same type merged.
norm_map ()
{
  jq -r 'reduce .[] as $e ([];
           if length > 0 and .[-1].type == $e.type
              and .[-1].offset + .[-1].length == $e.offset
           then .[-1].length += $e.length
           else . + [{offset: $e.offset, length: $e.length, type: $e.type}]
           end) | .[] | "\(.offset) \(.length) \(.type)"'
}

# dirty_as_delta: nbdinfo --map=qemu:dirty-bitmap:... --json on stdin,
# the way the delta view shows it (dirty 1 -> data 0, clean 0 -> hole
# and zero 3), merged.
dirty_as_delta ()
{
  jq '[.[] | .type = (if .type == 1 then 0 else 3 end)]' | norm_map
}

# dirty_ranges: the same, only the dirty ranges, as "offset length".
dirty_ranges ()
{
  jq '[.[] | .type = (.type % 2)]' | norm_map | awk '$3 == 1 { print $1, $2 }'
}

# overlay_ranges IMAGE: the ranges stored in IMAGE itself (depth 0 of
# qemu-img map: data or zero clusters of the top layer), merged.
overlay_ranges ()
{
  qemu-img map --output=json -f qcow2 "$1" |
    jq '[.[] | select(.depth == 0) | {offset: .start, length, type: 1}]' |
    norm_map |
    awk '{ print $1, $2 }'
}

# hold_and_cut URI CMD...: a client of URI that holds its connection
# with reads in flight while CMD takes the upstream away (CMD returns
# once it is gone).  Every request must complete, and every request
# after CMD must fail, with no hang: the whole client is bounded by
# timeout (a bound, not a timing assertion).
hold_and_cut ()
{
  timeout 120 /usr/bin/python3 - "$@" <<'PY'
import subprocess
import sys

import nbd

uri, cmd = sys.argv[1], sys.argv[2:]
h = nbd.NBD()
h.add_meta_context("base:allocation")
h.connect_uri(uri)
assert len(h.pread(65536, 0)) == 65536
size = h.get_size()
bufs = [nbd.Buffer(1 << 20) for _ in range(16)]
for i, b in enumerate(bufs):
    h.aio_pread(b, (i << 20) % size)
subprocess.run(cmd, check=True)
while h.aio_in_flight() > 0:
    h.poll(-1)
for what, f in (("read", lambda: h.pread(4096, 0)),
                ("block status",
                 lambda: h.block_status(4096, 0, lambda *a: 0))):
    try:
        f()
    except nbd.Error as e:
        print("%s after the upstream ended: %s" % (what, e))
        continue
    sys.exit("%s after the upstream ended succeeded" % what)
h.shutdown()
PY
}

# gone PID: PID exited (a zombie not yet reaped counts).
gone ()
{
  [ ! -e "/proc/$1" ] || grep -q '^State:[[:space:]]*Z' "/proc/$1/status"
}
