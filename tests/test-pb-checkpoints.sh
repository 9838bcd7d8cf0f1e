#!/usr/bin/env bash
# pullback: checkpoints.  Create alone and within backups, list them in
# topological pages, delete the oldest, a middle one and the newest: every
# other "changed since" answer stays exactly what it was.  Bitmaps the
# daemon did not create are never touched.
# SPDX-License-Identifier: BSD-3-Clause

. "$abs_top_srcdir/tests/functions.sh"
. "$abs_top_srcdir/tests/functions-pullbackd.sh"
requires qemu-storage-daemon qemu-img nbdcopy jq curl /usr/bin/python3
set -e

make_tmpdir dir
start_qsd "$dir" 2 64M
qsd_writer_exports "$dir"
G=$dir/guest.sock
M=1048576
start_pullbackd "$dir" --vm "vm1=$QMP_SOCK,nbd=unix:$G"
wait_vm_connected vm1

# Someone else's bitmap on disk0: never ours to touch.
qmpcmd "$QMP_TEST_SOCK" block-dirty-bitmap-add \
  '{"node":"disk0","name":"foreign","persistent":true}' >/dev/null

# c1 alone; A; c2 with a backup; B; c3 alone; C; c4 alone; D.
expect 201 POST /v1/vms/vm1/checkpoints '{"name":"c1"}' | jq -e '.name == "c1" and .parent == null'
guest_write "$G" guest-disk0 0 65536 0x41
guest_write "$G" guest-disk1 $((10 * M)) 4096 0x41
b=$(expect 201 POST /v1/vms/vm1/backups '{"checkpoint":"c2"}')
expect 204 DELETE "/v1/vms/vm1/backups/$(jq -r .id <<<"$b")"
B=($((20 * M)):$((2 * M)))
guest_write "$G" guest-disk0 $((20 * M)) $((2 * M)) 0x42
guest_write "$G" guest-disk1 $((20 * M)) $((2 * M)) 0x42
expect 201 POST /v1/vms/vm1/checkpoints '{"name":"c3"}' | jq -e '.parent == "c2"'
C=($((30 * M + 512)):512)
guest_write "$G" guest-disk0 $((30 * M + 512)) 512 0x43
guest_write "$G" guest-disk1 $((30 * M + 512)) 512 0x43
expect 201 POST /v1/vms/vm1/checkpoints '{"name":"c4"}' >/dev/null
D=($((63 * M)):$M)
guest_write "$G" guest-disk0 $((63 * M)) $M 0x44
guest_write "$G" guest-disk1 $((63 * M)) $M 0x44

# changed_since CP DISK: the dirty map of a backup since CP (no new
# checkpoint), read through the export.
changed_since ()
{
  local b id out
  b=$(expect 201 POST /v1/vms/vm1/backups "{\"checkpoint\":false,\"since\":\"$1\"}")
  id=$(jq -r .id <<<"$b")
  out=$(dirty_map "$(disk_uri "$b" "$2")" "qemu:dirty-bitmap:backup-$2")
  expect 204 DELETE "/v1/vms/vm1/backups/$id" >/dev/null
  printf '%s\n' "$out"
}

declare -A want
want[c2]=$(expected_map 65536 "${B[@]}" "${C[@]}" "${D[@]}")
want[c3]=$(expected_map 65536 "${C[@]}" "${D[@]}")
want[c4]=$(expected_map 65536 "${D[@]}")
# A differs between the disks (cluster 0 on disk0, 10M on disk1).
want1_c1=$(expected_map 65536 $((10 * M)):4096 "${B[@]}" "${C[@]}" "${D[@]}")

check_all ()
{
  local cp
  for cp in "$@"; do
    test "$(changed_since "$cp" disk0)" = "${want[$cp]}"
    if [ "$cp" = c1 ]; then
      test "$(changed_since c1 disk1)" = "$want1_c1"
    else
      test "$(changed_since "$cp" disk1)" = "${want[$cp]}"
    fi
  done
}
want[c1]=$(expected_map 65536 0:65536 "${B[@]}" "${C[@]}" "${D[@]}")
check_all c1 c2 c3 c4

# Pages, parents first.
p=$(expect 200 "GET" "/v1/vms/vm1/checkpoints?limit=1")
test "$(jq -c '[[.checkpoints[].name], .next]' <<<"$p")" = '[["c1"],"c1"]'
p=$(expect 200 GET "/v1/vms/vm1/checkpoints?limit=2&after=c1")
test "$(jq -c '[[.checkpoints[] | [.name, .parent]], .next]' <<<"$p")" = '[[["c2","c1"],["c3","c2"]],"c3"]'
p=$(expect 200 GET "/v1/vms/vm1/checkpoints?after=c3")
test "$(jq -c '[[.checkpoints[].name], .next]' <<<"$p")" = '[["c4"],null]'
expect_error 404 checkpoint-not-found GET "/v1/vms/vm1/checkpoints?after=nosuch" >/dev/null
expect 200 GET /v1/vms/vm1/checkpoints/c3 | jq -e '.disks | length == 2 and all(.state == "ok") and all(.granularity == 65536)'

# Names: taken by a checkpoint, taken by a foreign bitmap.
expect_error 409 checkpoint-exists POST /v1/vms/vm1/checkpoints '{"name":"c2"}' >/dev/null
expect_error 409 bitmap-exists POST /v1/vms/vm1/checkpoints '{"name":"foreign"}' >/dev/null
expect_error 409 bitmap-exists POST /v1/vms/vm1/backups '{"checkpoint":"foreign"}' >/dev/null

# Delete the oldest, then a middle one, then the newest.  A client paging
# with after= a name deleted meanwhile goes on where it was.
expect 204 DELETE /v1/vms/vm1/checkpoints/c1 >/dev/null
check_all c2 c3 c4
expect 200 GET /v1/vms/vm1/checkpoints/c2 | jq -e '.parent == null'
p=$(expect 200 GET "/v1/vms/vm1/checkpoints?after=c1")
test "$(jq -c '[.checkpoints[].name]' <<<"$p")" = '["c2","c3","c4"]'
expect 204 DELETE /v1/vms/vm1/checkpoints/c3 >/dev/null
check_all c2 c4
p=$(expect 200 GET "/v1/vms/vm1/checkpoints?after=c3")
test "$(jq -c '[.checkpoints[].name]' <<<"$p")" = '["c4"]'
p=$(expect 200 GET "/v1/vms/vm1/checkpoints?after=c1")
test "$(jq -c '[.checkpoints[].name]' <<<"$p")" = '["c2","c4"]'
expect 200 GET /v1/vms/vm1/checkpoints/c4 | jq -e '.parent == "c2"'
expect 204 DELETE /v1/vms/vm1/checkpoints/c4 >/dev/null
check_all c2
expect_error 404 checkpoint-not-found GET /v1/vms/vm1/checkpoints/c3 >/dev/null
expect_error 404 checkpoint-not-found DELETE /v1/vms/vm1/checkpoints/c3 >/dev/null
expect_error 404 checkpoint-not-found POST /v1/vms/vm1/backups '{"since":"c1"}' >/dev/null

test "$(bitmaps "$QMP_TEST_SOCK" disk0)" = "c2:true foreign:true "
test "$(bitmaps "$QMP_TEST_SOCK" disk1)" = "c2:true "
assert_no_leftovers "$QMP_TEST_SOCK" "$dir/run"

# The metadata survives a restart of the daemon.
kill_pullbackd
start_pullbackd "$dir" --vm "vm1=$QMP_SOCK,nbd=unix:$G"
wait_vm_connected vm1
test "$(expect 200 GET /v1/vms/vm1/checkpoints | jq -c '[.checkpoints[].name]')" = '["c2"]'
check_all c2
