#!/usr/bin/env bash
# pullback: nbdkit-pullback-plugin in front of qemu-nbd -r -B on a shut-
# off image (the offline path) works like in front of QEMU: the delta
# view is the dirty map and the recipe rebuilds the image.  Each error
# has its message: upstream unreachable, export missing, context
# missing, no bitmap, several bitmaps and none chosen, bad parameters,
# a read past the end; and a client survives qemu-nbd ending.
# SPDX-License-Identifier: BSD-3-Clause

. "$abs_top_srcdir/tests/functions.sh"
. "$abs_top_srcdir/tests/functions-plugin.sh"
requires qemu-img qemu-io qemu-nbd nbdkit nbdcopy nbdinfo nbdsh jq timeout /usr/bin/python3

M=1048576
make_tmpdir dir
D=$dir/disk.qcow2
qemu-img create -q -f qcow2 "$D" 64M
qemu-io -f qcow2 -c "write -P 0x11 0 4M" -c "write -P 0x12 16M 2M" "$D" >/dev/null
qemu-img convert -f qcow2 -O qcow2 "$D" "$dir/base.qcow2"
qemu-img bitmap --add "$D" b0
# Data into a hole, a small unaligned write, a zero write over data, a
# discard of data, a write smaller than the granularity.
qemu-io -f qcow2 -d unmap -c "write -P 0x21 8M 64k" -c "write -P 0x22 1049088 4096" \
  -c "write -z 16842752 1M" -c "discard 2M 1M" -c "write -P 0x23 41943140 10" \
  "$D" >/dev/null
qemu-img bitmap --add "$D" b1

# serve NAME ARGS...: qemu-nbd -r ARGS on $dir/NAME.sock, export "vda".
serve ()
{
  local name=$1 pid; shift
  qemu-nbd -r -t --shared=8 -f qcow2 -x vda -k "$dir/$name.sock" \
    --pid-file="$dir/$name.qpid" "$@" "$D" 2>>"$dir/$name-qemu-nbd.log" &
  pid=$!
  track_pid $pid
  printf -v "${name}_QPID" '%s' $pid
  wait_for 10 test -s "$dir/$name.qpid"
}
serve q -B b0
serve q2 -B b0 -B b1
serve q0
Q="nbd+unix:///vda?socket=$dir/q.sock"

# The offline path: the same checks as against QEMU.
start_plugin "$dir" delta socket="$dir/q.sock" export=vda
nbdinfo --map=qemu:dirty-bitmap:b0 --json "$Q" > "$dir/dirty.json"
diff -u <(dirty_as_delta < "$dir/dirty.json") \
        <(nbdinfo --map --json "$delta_URI" | norm_map)
"$CONTRIB/pullback-fetch-incremental" "$delta_URI" "$dir/base.qcow2" "$dir/inc.qcow2"
"$CONTRIB/pullback-verify" "$dir/inc.qcow2" "$Q"
dirty_ranges < "$dir/dirty.json" > "$dir/dirty.ranges"
grep -q "^$((2 * M)) $M\$" "$dir/dirty.ranges"   # the discard is dirty
diff -u "$dir/dirty.ranges" <(overlay_ranges "$dir/inc.qcow2")
# The same through uri= (the magic parameter, so a bare URI works).
nbdkit -U - "$PLUGIN" "$Q" view=full \
  --run 'nbdinfo --map --json "$uri"' | norm_map > "$dir/full.map"
diff -u <(nbdinfo --map --json "$Q" | norm_map) "$dir/full.map"

# Errors when nbdkit starts: it exits 1 with one clear message.
start_fails () # MESSAGE PLUGIN-ARGS...
{
  local want=$1; shift
  fails nbdkit -U - "$PLUGIN" "$@" --run true 2> "$dir/err"
  cat "$dir/err"
  grep -qF -- "$want" "$dir/err"
}
start_fails "cannot connect to upstream $dir/nothing.sock: nbd_connect_unix: connect: No such file or directory" \
  socket="$dir/nothing.sock"
start_fails "upstream $dir/q.sock has no export \"nope\"" socket="$dir/q.sock" export=nope
start_fails "upstream $dir/q.sock: export \"vda\" does not offer qemu:dirty-bitmap:b9; it offers: qemu:dirty-bitmap:b0" \
  socket="$dir/q.sock" export=vda context=b9
start_fails "upstream $dir/q0.sock: export \"vda\" offers no qemu:dirty-bitmap: context" \
  socket="$dir/q0.sock" export=vda
start_fails "export \"vda\" offers 2 dirty bitmaps; choose one with context=:" \
  socket="$dir/q2.sock" export=vda
grep -q 'qemu:dirty-bitmap:b0' "$dir/err"
grep -q 'qemu:dirty-bitmap:b1' "$dir/err"
start_fails "view=bogus: expected delta or full" socket="$dir/q.sock" view=bogus
start_fails "exactly one of socket=PATH and uri=NBD_URI" socket="$dir/q.sock" "$Q"
start_fails "only view=delta uses a dirty bitmap" socket="$dir/q.sock" view=full context=b0
# Chosen among several: b1 was added after every write, so all clean.
nbdkit -U - "$PLUGIN" socket="$dir/q2.sock" export=vda \
  context=qemu:dirty-bitmap:b1 --run 'nbdinfo --map --json "$uri"' |
  norm_map > "$dir/b1.map"
test "$(cat "$dir/b1.map")" = "0 $((64 * M)) 3"

# A read past the end: the client gets an error, the log says why
# (nbdkit checks the range before the plugin sees it).
nbdsh -u "$delta_URI" -c "
h.set_strict_mode(0)
try:
    h.pread(8192, $((64 * M)) - 4096)
except nbd.Error as e:
    print(e)
else:
    raise SystemExit('a read past the end succeeded')
"
grep -q 'NBD_CMD_READ: offset and count are out of range' "$dir/delta.log"

# qemu-nbd ends under a connected client: clean errors, no hang.
# (The command runs in a child bash: it gets the shared helpers.)
export -f wait_for gone
hold_and_cut "$delta_URI" bash -c 'kill "$0" && wait_for 60 gone "$0"' "$q_QPID"
grep -q "connection to upstream $dir/q.sock is gone" "$dir/delta.log"
# A new client: the upstream is unreachable now.
fails nbdinfo --size "$delta_URI"
grep -q "cannot connect to upstream $dir/q.sock" "$dir/delta.log"
# And nbdkit still stops cleanly.
kill "$delta_PID"
wait_for 60 gone "$delta_PID"
stop_plugin delta
