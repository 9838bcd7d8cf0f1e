#!/usr/bin/env bash
# pullback bench: begin and end latency of a backup through the REST API,
# for VMs with 1, 2 (and more) disks on qemu-storage-daemon.
#   latency.sh [REPEATS] [DISK COUNTS...]
# Prints the median and spread of POST /backups -> ready and DELETE -> gone.
# SPDX-License-Identifier: BSD-3-Clause

. "$abs_top_srcdir/tests/functions.sh"
. "$abs_top_srcdir/tests/functions-pullbackd.sh"
set +x
requires qemu-storage-daemon qemu-img jq curl

reps=${1:-20}; shift || true
counts=("${@:-1 2}")
[ $# -gt 0 ] || counts=(1 2)

timed () # METHOD PATH [BODY]: prints "seconds status"
{
  curl -sS --unix-socket "$PB_API" -X "$1" -o "$dir/out.json" \
    -w '%{time_total} %{http_code}\n' -H 'Content-Type: application/json' \
    ${3:+--data-binary "$3"} "http://localhost$2"
}

median () { sort -n | awk '{a[NR]=$1} END {m=(NR%2)?a[(NR+1)/2]:(a[NR/2]+a[NR/2+1])/2; printf "%.1f ms (min %.1f, max %.1f)", m*1000, a[1]*1000, a[NR]*1000}'; }

printf '%-6s %-34s %-34s\n' disks "begin (POST -> ready)" "end (DELETE -> gone)"
for n in "${counts[@]}"; do
  make_tmpdir dir
  start_qsd "$dir" "$n" 10G
  qsd_writer_exports "$dir"
  start_pullbackd "$dir" --log-level warn --vm "vm1=$QMP_SOCK,nbd=unix:$dir/guest.sock"
  wait_vm_connected vm1
  : > "$dir/begin"; : > "$dir/end"
  for ((i = 0; i < reps; i++)); do
    read -r t s < <(timed POST /v1/vms/vm1/backups '{"checkpoint":false}')
    [ "$s" = 201 ] || { cat "$dir/out.json"; exit 1; }
    echo "$t" >> "$dir/begin"
    id=$(jq -r .id "$dir/out.json")
    read -r t s < <(timed DELETE "/v1/vms/vm1/backups/$id")
    [ "$s" = 204 ] || { cat "$dir/out.json"; exit 1; }
    echo "$t" >> "$dir/end"
  done
  printf '%-6s %-34s %-34s\n' "$n" "$(median < "$dir/begin")" "$(median < "$dir/end")"
  kill_pullbackd
  kill "$QSD_PID"; wait "$QSD_PID" 2>/dev/null || true
done
