#!/usr/bin/env bash
# pullback: bad input gets a clear error, names the field, and changes
# nothing.  Also VM registration through the API.
# SPDX-License-Identifier: BSD-3-Clause

. "$abs_top_srcdir/tests/functions.sh"
. "$abs_top_srcdir/tests/functions-pullbackd.sh"
requires qemu-storage-daemon qemu-img jq curl sha256sum
set -e

make_tmpdir dir
start_qsd "$dir" 2 64M
qsd_writer_exports "$dir"
G=$dir/guest.sock
start_pullbackd "$dir" --vm "vm1=$QMP_SOCK,nbd=unix:$G"
wait_vm_connected vm1
expect 201 POST /v1/vms/vm1/checkpoints '{"name":"c1"}' >/dev/null

fingerprint ()
{
  { sha256sum "$dir/state/vms/vm1.json"
    bitmaps "$QMP_TEST_SOCK" disk0; bitmaps "$QMP_TEST_SOCK" disk1
    qmpcmd "$QMP_TEST_SOCK" query-block-exports | jq -c '[.[].id]'
    find "$dir/run" -name '*.qcow2'; } | sha256sum
}
before=$(fingerprint)

long=$(printf 'x%.0s' $(seq 300))
bad ()  # STATUS CODE FIELD METHOD PATH [BODY]
{
  local status=$1 code=$2 field=$3 out; shift 3
  out=$(expect_error "$status" "$code" "$@")
  if [ "$field" != - ]; then
    test "$(jq -r .error.field <<<"$out")" = "$field" ||
      { say_fail "$* names field $(jq -r .error.field <<<"$out"), not $field"; return 1; }
  fi
  jq -e '.error.message | length > 0' <<<"$out" >/dev/null
}
B=/v1/vms/vm1/backups

# Malformed bodies.
bad 400 malformed-json - POST $B '{"checkpoint":'
bad 400 malformed-json - POST $B 'not json'
bad 400 invalid-type - POST $B '[]'
bad 400 invalid-type - POST $B '"string"'
bad 400 duplicate-key - POST $B '{"ttl":10,"ttl":20}'
# Unknown fields and wrong types.
bad 400 unknown-field foo POST $B '{"foo":1}'
bad 400 unknown-field Checkpoint POST $B '{"Checkpoint":"c2"}'
bad 400 invalid-type ttl POST $B '{"ttl":"10"}'
bad 400 invalid-type ttl POST $B '{"ttl":1.5}'
bad 400 out-of-range ttl POST $B '{"ttl":0}'
bad 400 out-of-range ttl POST $B '{"ttl":-5}'
bad 400 out-of-range ttl POST $B '{"ttl":99999999999999999}'
bad 400 invalid-type quiesce POST $B '{"quiesce":1}'
bad 400 invalid-type disks POST $B '{"disks":"disk0"}'
bad 400 invalid-type disks POST $B '{"disks":[]}'
bad 400 invalid-type disks POST $B '{"disks":[1]}'
bad 400 duplicate-name disks POST $B '{"disks":["disk0","disk0"]}'
bad 400 invalid-type since POST $B '{"since":true}'
bad 400 invalid-type checkpoint POST $B '{"checkpoint":true}'
# Names outside the rules: '/', '..', 300 characters, reserved prefix.
bad 400 invalid-name checkpoint POST $B '{"checkpoint":"a/b"}'
bad 400 invalid-name checkpoint POST $B '{"checkpoint":".."}'
bad 400 invalid-name since POST $B '{"since":"../c1"}'
bad 400 invalid-name checkpoint POST $B "{\"checkpoint\":\"$long\"}"
bad 400 invalid-name checkpoint POST $B '{"checkpoint":"backup-disk0"}'
bad 400 invalid-name checkpoint POST $B '{"checkpoint":""}'
bad 400 invalid-name disks POST $B '{"disks":["../disk0"]}'
bad 400 invalid-name name POST /v1/vms/vm1/checkpoints '{"name":"a b"}'
bad 400 invalid-name vm GET "/v1/vms/$long"
bad 400 invalid-name vm GET "/v1/vms/.x"
bad 400 invalid-name vm GET "/v1/vms/a%20b"
# An encoded '/' is a '/' by the time it is routed: no such endpoint.
bad 404 not-found - GET "/v1/vms/..%2Fetc"
bad 400 invalid-name checkpoint GET /v1/vms/vm1/checkpoints/.hidden
bad 400 invalid-name backup GET "/v1/vms/vm1/backups/$long"
# Semantics: the body is fine, the request is impossible.
bad 422 ttl-too-large ttl POST $B '{"ttl":999999}'
bad 422 disk-not-found disks POST $B '{"disks":["disk9"]}'
bad 422 no-guest-agent quiesce POST $B '{"quiesce":true}'
bad 404 checkpoint-not-found since POST $B '{"since":"c9"}'
bad 409 checkpoint-exists checkpoint POST $B '{"checkpoint":"c1"}'
bad 409 checkpoint-exists name POST /v1/vms/vm1/checkpoints '{"name":"c1"}'
# Unknown things.
bad 404 vm-not-found - GET /v1/vms/nosuch
bad 404 vm-not-found - POST /v1/vms/nosuch/backups '{}'
bad 404 checkpoint-not-found - GET /v1/vms/vm1/checkpoints/c9
bad 404 checkpoint-not-found - DELETE /v1/vms/vm1/checkpoints/c9
bad 404 backup-not-found - GET $B/bk-0
bad 404 backup-not-found - PATCH $B/bk-0 '{"ttl":5}'
bad 404 backup-not-found - DELETE $B/bk-0
bad 404 not-found - GET /v1/nothing
bad 404 not-found - GET /v2/vms
bad 405 method-not-allowed - PUT /v1/vms/vm1
bad 405 method-not-allowed - DELETE /v1/health
# Query strings.
C=/v1/vms/vm1/checkpoints
bad 400 invalid-parameter limit GET "$C?limit=0"
bad 400 invalid-parameter limit GET "$C?limit=abc"
bad 400 invalid-parameter limit GET "$C?limit=-1"
bad 400 invalid-parameter limit GET "$C?limit=99999999999999999999"
bad 400 invalid-parameter limit GET "$C?limit=1001"
bad 400 invalid-parameter limit GET "$C?limit=+5"
bad 400 invalid-parameter limit GET "$C?limit=%205"
bad 400 invalid-parameter limit GET "$C?limit"
bad 400 unknown-parameter offset GET "$C?offset=1"
bad 400 duplicate-parameter limit GET "$C?limit=1&limit=2"
bad 400 unknown-parameter x GET "/v1/vms?x=1"
bad 400 invalid-name after GET "$C?after=a/b"
# Bodies where none belongs, too large, or not JSON.
bad 400 unexpected-body - GET /v1/vms/vm1 '{}'
bad 400 unexpected-body - DELETE /v1/vms/vm1/checkpoints/c1 '{"force":true}'
big=$(head -c 70000 /dev/zero | tr '\0' ' ')
bad 413 body-too-large - POST $B "{\"checkpoint\":\"c2\"$big}"
# Refused from Content-Length alone, before the body is read; a client
# that sends it anyway (no Expect: 100-continue) gets the same.
out=$(head -c 100000000 /dev/zero | curl -sS --unix-socket "$PB_API" -H 'Expect:' \
  -H 'Content-Type: application/json' --data-binary @- -w '\n%{http_code}' \
  http://localhost$B || true)
test "$(tail -1 <<<"$out")" = 413
out=$(curl -sS --unix-socket "$PB_API" -H 'Content-Type: text/plain' -d '{}' -w '\n%{http_code}' http://localhost$B)
test "$(tail -1 <<<"$out")" = 415
# PATCH validation.
bad 400 missing-field ttl PATCH $B/bk-0 '{}'
bad 400 unknown-field when PATCH $B/bk-0 '{"ttl":5,"when":1}'

# A second backup while one is active.
b=$(expect 201 POST $B '{"checkpoint":false}')
bad 409 backup-active - POST $B '{"checkpoint":"c2"}'
expect 204 DELETE "$B/$(jq -r .id <<<"$b")" >/dev/null

test "$(fingerprint)" = "$before"
test "$(expect 200 GET /v1/vms/vm1/checkpoints | jq -c '[.checkpoints[].name]')" = '["c1"]'

# --- VMs through the API -------------------------------------------------
V=/v1/vms
bad 400 missing-field qmp POST $V '{"name":"vm2"}'
bad 400 missing-field name POST $V "{\"qmp\":\"$QMP_TEST_SOCK\"}"
bad 400 invalid-name name POST $V "{\"name\":\"../vm2\",\"qmp\":\"$QMP_TEST_SOCK\"}"
bad 400 invalid-path qmp POST $V '{"name":"vm2","qmp":"relative.sock"}'
bad 400 invalid-path scratch_dir POST $V "{\"name\":\"vm2\",\"qmp\":\"/x\",\"scratch_dir\":\"tmp\"}"
bad 400 invalid-address nbd POST $V '{"name":"vm2","qmp":"/x","nbd":"/plain/path"}'
bad 409 vm-exists name POST $V "{\"name\":\"vm1\",\"qmp\":\"/x\"}"
bad 409 vm-from-config - DELETE /v1/vms/vm1
test ! -e "$dir/state/vms/vm2.json"
test ! -e "$dir/state/vms/..json"

r=$(expect 201 POST $V "{\"name\":\"vm2\",\"qmp\":\"$QMP_TEST_SOCK\",\"nbd\":\"unix:$G\"}")
test "$(jq -r .name <<<"$r")" = vm2
test -f "$dir/state/vms/vm2.json"
wait_vm_connected vm2
test "$(expect 200 GET $V | jq -c '[.vms[] | [.name, .source]] | sort')" = '[["vm1","config"],["vm2","api"]]'
# It survives a restart of the daemon.
kill_pullbackd
start_pullbackd "$dir" --vm "vm1=$QMP_SOCK,nbd=unix:$G"
wait_vm_connected vm2
expect 204 DELETE /v1/vms/vm2 >/dev/null
test ! -e "$dir/state/vms/vm2.json"
bad 404 vm-not-found - GET /v1/vms/vm2
