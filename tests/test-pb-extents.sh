#!/usr/bin/env bash
# pullback: GET .../disks/{disk}/extents.  On a crafted disk (data, holes,
# a dirty range that was then zeroed, a discarded range) the answer equals
# what nbdinfo --map says for each context, merged and clipped; paging with
# small limits reassembles the same list; bad parameters get 400.
# SPDX-License-Identifier: BSD-3-Clause

. "$abs_top_srcdir/tests/functions.sh"
. "$abs_top_srcdir/tests/functions-pullbackd.sh"
requires qemu-storage-daemon qemu-img nbdinfo jq curl /usr/bin/python3
set -e

make_tmpdir dir
start_qsd "$dir" 2 64M
qsd_writer_exports "$dir"
G=$dir/guest.sock
M=1048576
ORACLE=$abs_top_srcdir/tests/extents-oracle.py
start_pullbackd "$dir" --vm "vm1=$QMP_SOCK,nbd=unix:$G"
wait_vm_connected vm1

guest_write "$G" guest-disk0 0 $((4 * M)) 0x11
guest_write "$G" guest-disk0 $((20 * M)) $M 0x12
b=$(expect 201 POST /v1/vms/vm1/backups '{"checkpoint":"c1"}')
expect 204 DELETE "/v1/vms/vm1/backups/$(jq -r .id <<<"$b")" >/dev/null

# Changes: data in a hole, data over data, zeroes over data (dirty and
# now reading as zeroes), a discard, and an unaligned small write.
guest_write "$G" guest-disk0 $((8 * M)) 65536 0x21
guest_write "$G" guest-disk0 $((M + 512)) 4096 0x22
PATH="/usr/bin:$PATH" nbdsh -u "nbd+unix:///guest-disk0?socket=$G" \
  -c "h.zero($((128 * 1024)), $((2 * M))); h.trim(65536, $((20 * M))); h.flush()"
guest_write "$G" guest-disk0 $((40 * M + 100)) 10 0x23

b=$(expect 201 POST /v1/vms/vm1/backups '{"checkpoint":"c2","since":"c1","disks":["disk0"]}')
id=$(jq -r .id <<<"$b")
uri=$(disk_uri "$b" disk0)
E=/v1/vms/vm1/backups/$id/disks/disk0/extents
nbdinfo --map --json "$uri" > "$dir/alloc.json"
nbdinfo --map=qemu:dirty-bitmap:backup-disk0 --json "$uri" > "$dir/dirty.json"
size=$((64 * M))

check_range () # OFFSET LENGTH [QUERY]
{
  local want got
  want=$("$ORACLE" zero "$dir/alloc.json" "$1" "$2")
  got=$(expect 200 GET "$E?context=zero&offset=$1&length=$2" | jq -c .extents)
  test "$(jq -c . <<<"$want")" = "$got"
  want=$("$ORACLE" dirty "$dir/alloc.json" "$dir/dirty.json" "$1" "$2")
  got=$(expect 200 GET "$E?context=dirty&offset=$1&length=$2" | jq -c .extents)
  test "$(jq -c . <<<"$want")" = "$got"
}

# The whole disk, both contexts; zero is the default context.
full=$(expect 200 GET "$E")
test "$(jq -c .next_offset <<<"$full")" = null
test "$(jq -c .extents <<<"$full")" = "$("$ORACLE" zero "$dir/alloc.json" 0 $size | jq -c .)"
dirty=$(expect 200 GET "$E?context=dirty")
test "$(jq -c .extents <<<"$dirty")" = \
     "$("$ORACLE" dirty "$dir/alloc.json" "$dir/dirty.json" 0 $size | jq -c .)"
# The zeroed range: changed, and now reads as zeroes.
jq -e --argjson o $((2 * M)) '.extents[] | select(.start <= $o and $o < .start + .length) | .dirty and .zero' <<<"$dirty"
# Items cover the range exactly: contiguous, no overlap, right total.
jq -e --argjson s $size '(.extents | map(.length) | add) == $s and
  ([.extents[] | .start + .length] | .[:-1]) == ([.extents[] | .start] | .[1:])' <<<"$dirty"
# Neighbours always differ (merged).
jq -e '[.extents as $e | range(1; $e | length) | $e[.] as $b | $e[. - 1] as $a |
        ($a.dirty == $b.dirty and $a.zero == $b.zero)] | any | not' <<<"$dirty"

# Clipping to unaligned ranges.
check_range $((M + 100)) $((2 * M))
check_range $((40 * M + 101)) 5
check_range 0 1
check_range $((size - 1)) 1
# A length past the end is clipped to the disk.
test "$(expect 200 GET "$E?offset=$((size - 4096))&length=$((10 * M))" | jq '[.extents[].length] | add')" -eq 4096

# Paging with small limits reassembles the same list.
for limit in 1 2 3; do
  for ctx in zero dirty; do
    all='[]'; off=0; pages=0
    while :; do
      p=$(expect 200 GET "$E?context=$ctx&limit=$limit&offset=$off")
      test "$(jq '.extents | length' <<<"$p")" -le $limit
      all=$(jq -c --argjson a "$all" '$a + .extents' <<<"$p")
      off=$(jq -r .next_offset <<<"$p")
      pages=$((pages + 1))
      [ "$off" != null ] || break
    done
    whole=$(expect 200 GET "$E?context=$ctx" | jq -c .extents)
    test "$all" = "$whole"
    test "$pages" -ge $(( $(jq length <<<"$whole") / limit ))
  done
done

# Parameters.
bad () { expect_error 400 "$1" GET "$E?$2" | jq -e --arg f "$3" '.error.field == $f' >/dev/null; }
bad invalid-parameter "context=allocation" context
bad invalid-parameter "offset=-1" offset
bad invalid-parameter "offset=abc" offset
bad invalid-parameter "offset=99999999999999999999" offset
bad invalid-parameter "offset=$size" offset
bad invalid-parameter "offset=$((size * 2))" offset
bad invalid-parameter "length=0" length
bad invalid-parameter "length=1x" length
bad invalid-parameter "limit=0" limit
bad invalid-parameter "limit=100001" limit
bad invalid-parameter "limit=" limit
bad unknown-parameter "count=3" count
bad duplicate-parameter "offset=0&offset=1" offset
expect_error 404 disk-not-found GET "/v1/vms/vm1/backups/$id/disks/disk1/extents" >/dev/null
expect_error 404 backup-not-found GET "/v1/vms/vm1/backups/bk-0/disks/disk0/extents" >/dev/null
expect_error 400 invalid-name GET "/v1/vms/vm1/backups/$id/disks/.x/extents" >/dev/null
expect 204 DELETE "/v1/vms/vm1/backups/$id" >/dev/null
expect_error 404 backup-not-found GET "$E" >/dev/null

# A full disk has no dirty context.
b=$(expect 201 POST /v1/vms/vm1/backups '{"checkpoint":false}')
id=$(jq -r .id <<<"$b")
expect_error 404 no-dirty-context GET "/v1/vms/vm1/backups/$id/disks/disk1/extents?context=dirty" >/dev/null
expect 200 GET "/v1/vms/vm1/backups/$id/disks/disk1/extents" |
  jq -e '.extents == [{"start":0,"length":67108864,"zero":true,"hole":true}]'
expect 204 DELETE "/v1/vms/vm1/backups/$id" >/dev/null
