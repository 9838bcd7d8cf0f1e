#!/usr/bin/env bash
# pullback: the paths a request names, and the files pullbackd makes.
# pullbackd runs as root, so POST /v1/vms may name only paths under
# allowed-roots (none by default), written plainly, of the right type,
# reached without symlinks, and never pullbackd's own; a refused
# registration changes nothing on disk.  A VM's run directory goes with
# the VM.  A symlink or file planted at a scratch file's name fails the
# begin and is not followed, with either scratch-create.  NBD URIs are
# percent-encoded, so a run directory with '#', '%' and a space works for
# nbdinfo and the extents endpoint.
# SPDX-License-Identifier: BSD-3-Clause

. "$abs_top_srcdir/tests/functions.sh"
. "$abs_top_srcdir/tests/functions-pullbackd.sh"
requires qemu-storage-daemon qemu-img nbdinfo jq curl python3
set -e

make_tmpdir dir
make_tmpdir out
V=/v1/vms
start_qsd "$dir" 2 64M \
  --chardev "socket,id=mon2,path=$dir/qmp-cycle.sock,server=on,wait=off" \
  --monitor chardev=mon2

# A socket nobody listens on (connecting fails at once), made by bind.
mksock () { python3 -c 'import socket,sys; socket.socket(socket.AF_UNIX).bind(sys.argv[1])' "$1"; }

# What is on disk under the test's directories (logs and the answer
# status file change by design).
snap ()
{
  find "$dir" "$out" \( -name '*.log' -o -name '*.status' \) -prune -o \
    -printf '%p %y %m %s %l\n' | sort
}

# refuse STATUS CODE FIELD BODY: the registration is refused naming
# FIELD, and nothing changed on disk.
refuse ()
{
  local status=$1 code=$2 field=$3 body=$4 before e
  before=$(snap)
  e=$(expect_error "$status" "$code" POST $V "$body")
  test "$(jq -r .error.field <<<"$e")" = "$field"
  test "$(snap)" = "$before"
  expect 200 GET $V | jq -e '[.vms[].name] | index("vm2") == null' >/dev/null
}

mksock "$out/q.sock"
mkdir "$dir/sub" "$dir/scratch"
mkfifo "$dir/fifo"
echo data > "$dir/file"
ln -s "$out" "$dir/lnk"
ln -s sub "$dir/inlnk"
mksock "$dir/sub/q.sock"

# No allowed-roots (the default): a request cannot name any path.
PB_NO_ROOT=1 start_pullbackd "$dir"
e=$(refuse 422 path-not-allowed qmp "{\"name\":\"vm2\",\"qmp\":\"$QMP_SOCK\"}")
jq -e '.error.message | test("allowed-roots")' <<<"$e"
kill_pullbackd

# Root "/": still not through /proc's symlinks, nor pullbackd's own.
PB_NO_ROOT=1 start_pullbackd "$dir" --allowed-root /
refuse 422 path-not-allowed qmp "{\"name\":\"vm2\",\"qmp\":\"/proc/$QSD_PID/root$QMP_SOCK\"}"
refuse 422 path-not-allowed qmp "{\"name\":\"vm2\",\"qmp\":\"/proc/self/cwd$QMP_SOCK\"}"
refuse 422 path-not-allowed qmp "{\"name\":\"vm2\",\"qmp\":\"$PB_API\"}"
refuse 422 path-not-allowed scratch_dir "{\"name\":\"vm2\",\"qmp\":\"$QMP_SOCK\",\"scratch_dir\":\"$dir/state\"}"
refuse 422 path-not-allowed scratch_dir "{\"name\":\"vm2\",\"qmp\":\"$QMP_SOCK\",\"scratch_dir\":\"$dir/run/vms\"}"
# Not created, even as root.
refuse 422 path-not-found scratch_dir "{\"name\":\"vm2\",\"qmp\":\"$QMP_SOCK\",\"scratch_dir\":\"/etc/pb-scratch-created-$$\"}"
test ! -e "/etc/pb-scratch-created-$$"
kill_pullbackd

# Root DIR (the helper's default).
start_pullbackd "$dir"
q=$QMP_SOCK
refuse 422 path-not-allowed qmp "{\"name\":\"vm2\",\"qmp\":\"$out/q.sock\"}"
refuse 400 invalid-path qmp "{\"name\":\"vm2\",\"qmp\":\"$dir/../$(basename "$out")/q.sock\"}"
refuse 400 invalid-path qmp "{\"name\":\"vm2\",\"qmp\":\"$dir/./qmp.sock\"}"
refuse 400 invalid-path qmp "{\"name\":\"vm2\",\"qmp\":\"$dir//qmp.sock\"}"
refuse 400 invalid-path qmp "{\"name\":\"vm2\",\"qmp\":\"$dir/q\\u0001.sock\"}"
refuse 400 invalid-path scratch_dir "{\"name\":\"vm2\",\"qmp\":\"$q\",\"scratch_dir\":\"$dir/scratch/\"}"
refuse 422 path-not-allowed qmp "{\"name\":\"vm2\",\"qmp\":\"$dir/lnk/q.sock\"}"
refuse 422 path-not-allowed qmp "{\"name\":\"vm2\",\"qmp\":\"$dir/inlnk/q.sock\"}"
refuse 422 path-not-allowed scratch_dir "{\"name\":\"vm2\",\"qmp\":\"$q\",\"scratch_dir\":\"$dir/lnk\"}"
refuse 422 path-wrong-type qmp "{\"name\":\"vm2\",\"qmp\":\"$dir/fifo\"}"
refuse 422 path-wrong-type qmp "{\"name\":\"vm2\",\"qmp\":\"$dir/file\"}"
refuse 422 path-wrong-type qmp "{\"name\":\"vm2\",\"qmp\":\"$dir/sub\"}"
refuse 422 path-wrong-type qga "{\"name\":\"vm2\",\"qmp\":\"$q\",\"qga\":\"$dir/fifo\"}"
refuse 422 path-wrong-type nbd "{\"name\":\"vm2\",\"qmp\":\"$q\",\"nbd\":\"unix:$dir/file\"}"
refuse 422 path-wrong-type scratch_dir "{\"name\":\"vm2\",\"qmp\":\"$q\",\"scratch_dir\":\"$dir/file\"}"
refuse 422 path-not-found qmp "{\"name\":\"vm2\",\"qmp\":\"$dir/none.sock\"}"
refuse 422 path-not-found scratch_dir "{\"name\":\"vm2\",\"qmp\":\"$q\",\"scratch_dir\":\"$dir/newscratch\"}"
test ! -e "$dir/newscratch"
refuse 422 path-not-allowed qmp "{\"name\":\"vm2\",\"qmp\":\"$PB_API\"}"
refuse 422 path-not-allowed scratch_dir "{\"name\":\"vm2\",\"qmp\":\"$q\",\"scratch_dir\":\"$dir/run\"}"

# Accepted under the root, and it works: a backup begins.
victim=$dir/victim
head -c 4096 /dev/urandom > "$victim"
chmod 0644 "$victim"
cp "$victim" "$dir/victim.orig"
expect 201 POST $V "{\"name\":\"vm2\",\"qmp\":\"$q\",\"scratch_dir\":\"$dir/scratch\"}" >/dev/null
wait_vm_connected vm2
test -d "$dir/run/vms/vm2"

# A symlink at a scratch file's name (scratch-create = auto): the whole
# begin fails (409), nothing is made, the target is untouched.
victim_intact ()
{
  cmp "$victim" "$dir/victim.orig"
  test "$(stat -c %a "$victim")" = 644
  test -L "$dir/scratch/pullback-vm2.0.qcow2"
  expect 200 GET $V/vm2 | jq -e '.backup == null' >/dev/null
  n=$(qmpcmd "$QMP_TEST_SOCK" query-named-block-nodes '{"flat":true}' |
      jq '[.[] | select(."node-name" | test("^pb-"))] | length')
  test "$n" -eq 0
  test -z "$(ls "$dir/scratch" | grep -v '^pullback-vm2.0.qcow2$')"
}
ln -s "$victim" "$dir/scratch/pullback-vm2.0.qcow2"
e=$(expect_error 409 scratch-exists POST $V/vm2/backups '{"checkpoint":false}')
jq -e '.error.message | test("symbolic link")' <<<"$e"
victim_intact
rm "$dir/scratch/pullback-vm2.0.qcow2"
b=$(expect 201 POST $V/vm2/backups '{"checkpoint":false}')
test -S "$dir/run/vms/vm2/nbd.sock"
nbdinfo --size "$(disk_uri "$b" disk0)"
expect 204 DELETE "$V/vm2/backups/$(jq -r .id <<<"$b")"
expect 204 DELETE $V/vm2
test ! -e "$dir/run/vms/vm2"

# Registered and unregistered many times: no run directory is left.
for i in $(seq 1 50); do
  expect 201 POST $V "{\"name\":\"c$i\",\"qmp\":\"$dir/qmp-cycle.sock\"}" >/dev/null
  expect 204 DELETE "$V/c$i"
done
test -z "$(ls "$dir/run/vms")"
# What pullbackd did not make stays, and a symlink there is not followed.
expect 201 POST $V "{\"name\":\"vm3\",\"qmp\":\"$dir/qmp-cycle.sock\"}" >/dev/null
ln -s "$victim" "$dir/run/vms/vm3/nbd.sock"
echo mine > "$dir/run/vms/vm3/keep"
expect 204 DELETE $V/vm3
test "$(ls "$dir/run/vms/vm3")" = keep
cmp "$victim" "$dir/victim.orig"
rm -r "$dir/run/vms/vm3"
kill_pullbackd

# scratch-create = qemu, and a run directory NBD URIs must encode.
run="$dir/r #%x?"
echo "scratch-create = qemu" > "$dir/qemu.conf"
start_pullbackd "$dir" -c "$dir/qemu.conf" --run-dir "$run"
expect 201 POST $V "{\"name\":\"vm2\",\"qmp\":\"$q\",\"scratch_dir\":\"$dir/scratch\"}" >/dev/null
wait_vm_connected vm2
ln -s "$victim" "$dir/scratch/pullback-vm2.0.qcow2"
expect_error 409 scratch-exists POST $V/vm2/backups '{"checkpoint":false}' >/dev/null
victim_intact
rm "$dir/scratch/pullback-vm2.0.qcow2"
b=$(expect 201 POST $V/vm2/backups '{"checkpoint":false}')
id=$(jq -r .id <<<"$b")
uri=$(disk_uri "$b" disk0)
grep -F 'r%20%23%25x%3F' <<<"$uri"
test "$(nbdinfo --size "$uri")" = 67108864
test "$(stat -c %a "$dir/scratch/pullback-vm2.0.qcow2")" = 600
# QEMU made the files: file nodes added apart, and so recorded.
jq -e '.backup.scratch_nested != true' "$dir/state/vms/vm2.json"
expect 200 GET "$V/vm2/backups/$id/disks/disk0/extents" | jq -e '.extents | length > 0'
expect 204 DELETE "$V/vm2/backups/$id"
expect 204 DELETE $V/vm2
test -z "$(ls "$run/vms")"
kill_pullbackd
