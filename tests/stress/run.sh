#!/usr/bin/env bash
# pullback stress (make stress): a randomized, seeded run of backups of a
# two-disk VM while the guest writes, with checkpoint deletions and
# daemon crashes in between.  Every backup is checked byte for byte:
# a full one against the disks at its begin; an incremental one by
# applying its dirty blocks to the image of its base checkpoint, which
# must give the disks at its begin.  Leftovers are checked after each
# backup, checkpoints against QEMU's bitmaps after each crash.
#
#   STRESS_ITERS=N   backups (default 40)
#   STRESS_SEED=N    the seed (default: random, printed)
# SPDX-License-Identifier: BSD-3-Clause

. "$abs_top_srcdir/tests/functions.sh"
. "$abs_top_srcdir/tests/functions-pullbackd.sh"
set +x
requires qemu-storage-daemon qemu-img nbdcopy jq curl /usr/bin/python3

ITERS=${STRESS_ITERS:-40}
SEED=${STRESS_SEED:-$RANDOM}
RANDOM=$SEED
H=$abs_top_srcdir/tests/stress/nbd-helper.py
echo "pullback stress: $ITERS backups, seed $SEED (STRESS_SEED=$SEED to repeat)"

make_tmpdir dir
G=$dir/guest.sock
start_qsd "$dir" 2 64M
qsd_writer_exports "$dir"
run () { start_pullbackd "$dir" --log-level info --vm "vm1=$QMP_SOCK,nbd=unix:$G"; wait_vm_connected vm1; }
run

guest () # WRITES: random writes on both disks
{
  for d in disk0 disk1; do
    /usr/bin/python3 "$H" write "nbd+unix:///guest-$d?socket=$G" "$RANDOM$RANDOM" "$1"
  done
}
snap () # NAME: the disks now, the oracle of a begin instant
{
  for d in disk0 disk1; do
    nbdcopy "nbd+unix:///guest-$d?socket=$G" "$dir/img-$1-$d.raw"
  done
}

cps=()      # live checkpoints, oldest first; img-<name>-<disk>.raw each
full=0 incr=0 crashes=0 deletes=0
for ((k = 1; k <= ITERS; k++)); do
  guest $((RANDOM % 20 + 1))
  snap "s$k"
  since=
  if [ ${#cps[@]} -gt 0 ] && [ $((RANDOM % 4)) -ne 0 ]; then
    since=${cps[$((RANDOM % ${#cps[@]}))]}
    body="{\"checkpoint\":\"s$k\",\"since\":\"$since\"}"
  else
    body="{\"checkpoint\":\"s$k\"}"
  fi
  b=$(expect 201 POST /v1/vms/vm1/backups "$body")
  id=$(jq -r .id <<<"$b")
  cps+=("s$k")
  # The guest goes on: none of this may show in the backup.
  guest $((RANDOM % 10 + 1))
  for d in disk0 disk1; do
    uri=$(disk_uri "$b" $d)
    if [ "$(disk_mode "$b" $d)" = incremental ]; then
      cp "$dir/img-$since-$d.raw" "$dir/pulled-$d.raw"
      /usr/bin/python3 "$H" apply "$uri" "qemu:dirty-bitmap:backup-$d" "$dir/pulled-$d.raw" >/dev/null
      incr=$((incr + 1))
    else
      [ -z "$since" ] || { say_fail "backup $k: disk $d full since $since: $(disk_reason "$b" $d)"; exit 1; }
      nbdcopy "$uri" "$dir/pulled-$d.raw"
      full=$((full + 1))
    fi
    cmp "$dir/img-s$k-$d.raw" "$dir/pulled-$d.raw" ||
      { say_fail "backup $k (since ${since:-none}), disk $d differs"; exit 1; }
  done
  expect 204 DELETE "/v1/vms/vm1/backups/$id" >/dev/null
  assert_no_leftovers "$QMP_TEST_SOCK" "$dir/run"

  # Now and then: forget an old checkpoint, or crash the daemon.
  case $((RANDOM % 6)) in
    0|1)
      if [ ${#cps[@]} -gt 3 ]; then
        i=$((RANDOM % (${#cps[@]} - 1)))
        expect 204 DELETE "/v1/vms/vm1/checkpoints/${cps[$i]}" >/dev/null
        rm -f "$dir/img-${cps[$i]}-"*.raw
        cps=("${cps[@]:0:$i}" "${cps[@]:$((i + 1))}")
        deletes=$((deletes + 1))
      fi ;;
    2)
      b=$(expect 201 POST /v1/vms/vm1/backups '{"checkpoint":false}')
      kill -9 "$PB_PID"; wait "$PB_PID" 2>/dev/null || true; PB_PID=
      run
      assert_no_leftovers "$QMP_TEST_SOCK" "$dir/run"
      crashes=$((crashes + 1)) ;;
  esac
  want=$(printf '%s:true\n' "${cps[@]}" | sort | tr '\n' ' ')
  test "$(bitmaps "$QMP_TEST_SOCK" disk0)" = "$want" ||
    { say_fail "after backup $k, disk0 has $(bitmaps "$QMP_TEST_SOCK" disk0), want $want"; exit 1; }
  # Images of checkpoints that are gone are no longer needed.
  for f in "$dir"/img-s*-disk0.raw; do
    n=${f#"$dir/img-"}; n=${n%-disk0.raw}
    [[ " ${cps[*]} " == *" $n "* ]] || rm -f "$dir/img-$n-"*.raw
  done
done
kill_pullbackd
echo "pullback stress: $ITERS backups ($full full and $incr incremental disk pulls), $deletes checkpoint deletions, $crashes daemon crashes: all byte-exact, seed $SEED"
