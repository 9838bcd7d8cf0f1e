#!/usr/bin/env bash
# pullback: the guest-agent client against a real qemu-ga, in the hermetic
# harness of qemu-recipes section 8: a private mount namespace and a chroot
# whose only real filesystem is a loop-mounted ext4.  Freeze (listed and
# unrestricted), status, thaw, the errors of the frozen state, stale
# replies across sessions, and a host that stays writable throughout.
# SPDX-License-Identifier: BSD-3-Clause

. "$abs_top_srcdir/tests/functions.sh"
requires_root
requires_unshare_loop
requires qemu-ga mkfs.ext4 jq
set -e

make_tmpdir dir
start_qga "$dir"

# Safety first: before anything is frozen, the agent must see exactly one
# filesystem, the loop ext4 at /mnt, and nothing of the host.
fsinfo=$(qmpcmd --qga "$QGA_SOCK" guest-get-fsinfo)
test "$(jq -c '[.[] | [.mountpoint, .type]]' <<<"$fsinfo")" = '[["/mnt","ext4"]]'

test "$(qmpcmd --qga "$QGA_SOCK" fsfreeze-status)" = thawed
echo before > "$QGA_MNT/before"

# Freeze exactly /mnt.
test "$(qmpcmd --qga "$QGA_SOCK" fsfreeze-freeze-list /mnt)" = 1
test "$(qmpcmd --qga "$QGA_SOCK" fsfreeze-status)" = frozen
# The host is not frozen.
echo host > "$dir/host-file"
# A write into the frozen filesystem blocks until the thaw.
( echo during > "$QGA_MNT/during" ) &
writer=$!
sleep 1
kill -0 "$writer"
test ! -s "$QGA_MNT/during"
# The frozen agent refuses what it cannot do while frozen...
rc=0; out=$(qmpcmd --qga "$QGA_SOCK" guest-get-time 2>&1) || rc=$?
test "$rc" -eq 1
case "$out" in *frozen*) ;; *) echo "unexpected: $out" >&2; false ;; esac
# ...including a second freeze.
rc=0; qmpcmd --qga "$QGA_SOCK" fsfreeze-freeze >/dev/null 2>&1 || rc=$?
test "$rc" -eq 1
rc=0; qmpcmd --qga "$QGA_SOCK" fsfreeze-freeze-list /mnt >/dev/null 2>&1 || rc=$?
test "$rc" -eq 1
# Each qmpcmd is a new session on the same socket: every one synced
# past whatever the previous one left.
test "$(qmpcmd --qga "$QGA_SOCK" fsfreeze-thaw)" = 1
wait "$writer"
test "$(cat "$QGA_MNT/during")" = during
test "$(qmpcmd --qga "$QGA_SOCK" fsfreeze-status)" = thawed

# Unrestricted freeze: safe only because the agent sees nothing else.
test "$(qmpcmd --qga "$QGA_SOCK" fsfreeze-freeze)" = 1
test "$(qmpcmd --qga "$QGA_SOCK" fsfreeze-status)" = frozen
echo host2 > "$dir/host-file"
test "$(qmpcmd --qga "$QGA_SOCK" fsfreeze-thaw)" = 1
# Thawing a thawed guest is fine and thaws nothing.
test "$(qmpcmd --qga "$QGA_SOCK" fsfreeze-thaw)" = 0

# A path that is not a mountpoint: qemu-ga 7.2 freezes nothing.
test "$(qmpcmd --qga "$QGA_SOCK" fsfreeze-freeze-list /mnt/not-a-mountpoint)" = 0
test "$(qmpcmd --qga "$QGA_SOCK" fsfreeze-status)" = thawed
# An empty list would mean "everything" to the agent: our library
# refuses to send it at all.
rc=0; out=$(qmpcmd --qga "$QGA_SOCK" fsfreeze-freeze-list 2>&1) || rc=$?
test "$rc" -eq 5
case "$out" in *"refusing to freeze an empty list"*) ;; *) false ;; esac
test "$(qmpcmd --qga "$QGA_SOCK" fsfreeze-status)" = thawed
echo after > "$QGA_MNT/after"
