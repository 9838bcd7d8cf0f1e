#!/usr/bin/env bash
# pullback: idle connections lock no one out.  500 connections that never
# send a byte, on the unix socket and on loopback TCP (no token), do not
# keep an authenticated client from its answer, cost no thread each, and
# are closed by the daemon (short head deadline).
# SPDX-License-Identifier: BSD-3-Clause

. "$abs_top_srcdir/tests/functions.sh"
. "$abs_top_srcdir/tests/functions-pullbackd.sh"
requires curl jq python3
set -e

make_tmpdir dir
token=s3cret-token-0123456789
printf '%s\n' "$token" > "$dir/token"; chmod 600 "$dir/token"
echo "token-file = $dir/token" > "$dir/tcp.conf"
port=$(free_ports 1)
start_pullbackd "$dir" -c "$dir/tcp.conf" --listen "127.0.0.1:$port"
wait_for 10 sh -c "curl -s -o /dev/null http://127.0.0.1:$port/v1/health"

n=500
python3 "$abs_top_srcdir/tests/hold-conns.py" "unix:$PB_API" $n \
  "tcp:127.0.0.1:$port" $n >"$dir/hold.out" 2>"$dir/hold.log" &
hold=$!
track_pid $hold
wait_for 90 grep -q '^open ' "$dir/hold.out"

# Answers, not a lock-out (--max-time is a bound, not a timing claim).
out=$(curl -sS --max-time 20 --unix-socket "$PB_API" http://localhost/v1/health)
jq -e '.status == "ok"' <<<"$out" >/dev/null
out=$(curl -sS --max-time 20 -H "Authorization: Bearer $token" \
  "http://127.0.0.1:$port/v1/health")
jq -e '.status == "ok"' <<<"$out" >/dev/null
# They were all connected, and the daemon holds them (accepted, not left
# in a listen queue)...
grep -q "^open $((2 * n))\$" "$dir/hold.out"
fds () { ls "/proc/$PB_PID/fd" | wc -l; }
wait_for 60 sh -c "[ \$(ls /proc/$PB_PID/fd | wc -l) -ge $((2 * n)) ]"
# ...with no thread for each.
threads=$(ls "/proc/$PB_PID/task" | wc -l)
echo "fds: $(fds), threads: $threads"
test "$threads" -lt 50
out=$(curl -sS --max-time 20 -H "Authorization: Bearer $token" \
  "http://127.0.0.1:$port/v1/health")
jq -e '.status == "ok"' <<<"$out" >/dev/null

# Idle connections do not stay: the daemon closes them (and the helper
# opens others, so the pressure stays).
wait_for 120 sh -c "[ \$(tail -1 '$dir/hold.out' | sed -n 's/^closed //p') -ge $((2 * n)) ] 2>/dev/null"
out=$(curl -sS --max-time 20 -H "Authorization: Bearer $token" \
  "http://127.0.0.1:$port/v1/vms")
jq -e '.vms == []' <<<"$out" >/dev/null

kill $hold
wait $hold 2>/dev/null || true
kill_pullbackd
