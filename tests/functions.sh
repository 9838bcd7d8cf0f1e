# pullback tests: shared shell helpers.
# SPDX-License-Identifier: BSD-3-Clause
#
# Source from a test:  . "$abs_top_srcdir/tests/functions.sh"
#
# requires CMD...          skip (exit 77) unless every CMD is installed
# requires_root            skip unless root
# requires_unshare_loop    skip without mount namespaces or loop devices
# cleanup_fn CMD ARGS...   run CMD at exit (last registered runs first)
# make_tmpdir VAR          a private directory removed at exit, in $VAR
# wait_for SECS CMD...     retry CMD until it succeeds or SECS pass
# fails CMD...             assert that CMD fails
# say_fail MSG             why the test fails: on stderr and in the last line
# free_ports N [HOST]     the first of N consecutive free TCP ports
# start_qsd DIR N [SIZE [ARGS...]]  qemu-storage-daemon with N qcow2 disks
# start_qsd_args DIR ARGS... qemu-storage-daemon with these --blockdev...
# qsd_writer_exports DIR   writable NBD exports guest-diskK (the "guest")
# guest_write SOCK EXPORT OFFSET LENGTH BYTE
# start_qemu_system DIR N  qemu-system-x86_64 -M q35 -S with virtio-blk
# start_qemu_system_args DIR ARGS...  the same machine, these devices
# hmp_write SOCK DEVID OFFSET LENGTH BYTE
# start_qga DIR            a real qemu-ga that can only see a loop ext4
#
# Processes are tracked by pid and only those are killed at exit.

set -e
# Trace every command into the test log (make check keeps it).
set -x

_cleanup_hooks=()
_started_pids=()

cleanup_fn ()
{
  _cleanup_hooks+=("$(printf '%q ' "$@")")
}

_run_cleanup ()
{
  local rc=$? i
  _exit_rc=$rc
  set +e
  trap - ERR
  for ((i = ${#_cleanup_hooks[@]} - 1; i >= 0; i--)); do
    # A hook that finds a problem (a sanitizer report, say) fails the test.
    if ! eval "${_cleanup_hooks[$i]}" && [ "$rc" -eq 0 ]; then
      rc=1
      _exit_rc=1
    fi
  done
  for p in "${_started_pids[@]}"; do
    kill -9 "$p" 2>/dev/null
  done
  for p in "${_started_pids[@]}"; do
    wait "$p" 2>/dev/null
  done
  # Last, so that it ends the log (CI shows the end of a failed log).
  set +x
  if [ "$rc" -ne 0 ] && [ "$rc" -ne 77 ] && [ -n "${_failed_at:-}" ]; then
    local why=
    [ ! -s "$_fail_why" ] || why=" (last FAIL: $(tail -n 1 "$_fail_why"))"
    echo "FAILED: $_failed_at$why" >&2
  fi
  rm -f "$_fail_why"
  exit $rc
}
trap _run_cleanup EXIT

# The last say_fail's message, kept in a file: it is often called in a
# subshell (B=$(expect ...)), whose variables die with it.
_fail_why=$(mktemp "${TMPDIR:-/tmp}/pullback-fail.XXXXXX")
say_fail ()
{
  echo "FAIL: $*" >&2
  printf '%s\n' "$*" >> "$_fail_why"
}
# The command that made the test fail (set -e) and where it was called
# from, named at the end of the log.  errtrace: also inside functions.
_note_failure ()
{
  local st=$1 i where=
  for ((i = 1; i < ${#BASH_SOURCE[@]}; i++)); do
    where+=" ${BASH_SOURCE[i]##*/}:${BASH_LINENO[i - 1]}"
  done
  _failed_at="$BASH_COMMAND (status $st) at$where"
}
set -E
trap '_note_failure $?' ERR
trap 'exit 130' INT TERM

# Remember a process we started so the exit trap kills it.
track_pid () { _started_pids+=("$1"); }

# fails CMD...: assert that CMD fails.  (Under set -e, "! CMD" asserts
# nothing: bash does not stop for a negated command.)
fails ()
{
  if "$@"; then
    echo "$0: FAIL: this should have failed: $*" >&2
    return 1
  fi
}

requires ()
{
  local c
  for c in "$@"; do
    if ! command -v "$c" >/dev/null 2>&1; then
      echo "$0: SKIP: $c is not installed" >&2
      exit 77
    fi
  done
}

requires_root ()
{
  if [ "$(id -u)" -ne 0 ]; then
    echo "$0: SKIP: needs root" >&2
    exit 77
  fi
}

requires_unshare_loop ()
{
  requires unshare losetup mount
  if ! unshare -m --propagation private true 2>/dev/null; then
    echo "$0: SKIP: mount namespaces are not available" >&2
    exit 77
  fi
  if ! losetup -f >/dev/null 2>&1; then
    echo "$0: SKIP: no free loop device" >&2
    exit 77
  fi
}

# make_tmpdir VAR: create a private directory, removed at exit, and put
# its path in VAR.  (Not "$(make_tmpdir)": a subshell could not register
# the removal.)
make_tmpdir ()
{
  local d
  d=$(mktemp -d "${TMPDIR:-/tmp}/pullback-test-XXXXXX")
  cleanup_fn _remove_tmpdir "$d"
  printf -v "$1" '%s' "$d"
}

# On failure, show the logs the test's processes wrote before they go.
_remove_tmpdir ()
{
  local f
  if [ "${_exit_rc:-0}" -ne 0 ] && [ "${_exit_rc:-0}" -ne 77 ]; then
    for f in "$1"/*.log; do
      [ -s "$f" ] || continue
      echo "---- last lines of $f ----" >&2
      tail -n 60 "$f" >&2
    done
  fi
  rm -rf "$1"
}

wait_for ()
{
  local secs=$1 i; shift
  for ((i = 0; i < secs * 20; i++)); do
    if "$@" >/dev/null 2>&1; then
      return 0
    fi
    sleep 0.05
  done
  echo "$0: timed out after ${secs}s waiting for: $*" >&2
  return 1
}

# free_ports N [HOST]: print the first of N consecutive TCP ports that
# nothing on HOST (127.0.0.1) holds now.  They are below the kernel's
# ephemeral range, so no client connection and no bind to port 0 takes
# them later (a port picked from that range can be a client's local port
# a moment after: that failed CI).  The base is random so that tests
# running in parallel rarely pick the same ports.
free_ports ()
{
  python3 - "$1" "${2:-127.0.0.1}" <<'PY'
import random, socket, sys
n, host = int(sys.argv[1]), sys.argv[2]
low = int(open("/proc/sys/net/ipv4/ip_local_port_range").read().split()[0])
for _ in range(1000):
    base = random.randrange(10000, low - n)
    held = []
    try:
        for p in range(base, base + n):
            s = socket.socket()
            held.append(s)
            s.bind((host, p))
    except OSError:
        continue
    finally:
        for s in held:
            s.close()
    print(base)
    sys.exit(0)
sys.exit("free_ports: no %d free consecutive ports" % n)
PY
}

# start_qsd DIR N [SIZE [ARGS...]]: disks DIR/diskK.qcow2 (nodes diskK
# over diskK-file), QMP sockets DIR/qmp.sock (for pullbackd) and
# DIR/qmp-test.sock (for the test: QEMU serves one client per monitor),
# and ARGS for qemu-storage-daemon.  Sets QSD_PID, QMP_SOCK,
# QMP_TEST_SOCK.  Call it again after the daemon died to restart it on
# the same images.
start_qsd ()
{
  local dir=$1 n=$2 size=${3:-64M} i args=()
  shift $(($# < 3 ? $# : 3))
  for ((i = 0; i < n; i++)); do
    [ -f "$dir/disk$i.qcow2" ] ||
      qemu-img create -q -f qcow2 "$dir/disk$i.qcow2" "$size"
    args+=(--blockdev "driver=file,filename=$dir/disk$i.qcow2,node-name=disk$i-file"
           --blockdev "driver=qcow2,file=disk$i-file,node-name=disk$i")
  done
  start_qsd_args "$dir" "${args[@]}" "$@"
}

# start_qsd_args DIR QSD-ARGS...: the same with the caller's --blockdev,
# --object... options.
start_qsd_args ()
{
  local dir=$1; shift
  QMP_SOCK=$dir/qmp.sock
  QMP_TEST_SOCK=$dir/qmp-test.sock
  rm -f "$QMP_SOCK" "$QMP_TEST_SOCK"
  qemu-storage-daemon \
    --chardev "socket,id=mon0,path=$QMP_SOCK,server=on,wait=off" \
    --monitor chardev=mon0 \
    --chardev "socket,id=mon1,path=$QMP_TEST_SOCK,server=on,wait=off" \
    --monitor chardev=mon1 \
    "$@" >>"$dir/qsd.log" 2>&1 &
  QSD_PID=$!
  track_pid $QSD_PID
  wait_for 10 qmpcmd -t 1000 --version "$QMP_TEST_SOCK"
}

# qsd_writer_exports DIR: the guest's writes go through writable NBD
# exports guest-diskK of the disk nodes on DIR/guest.sock, made before any
# backup begins (QEMU refuses new writers on a fleeced node).
qsd_writer_exports ()
{
  local dir=$1 node
  qmpcmd "$QMP_TEST_SOCK" nbd-server-start \
    "{\"addr\":{\"type\":\"unix\",\"data\":{\"path\":\"$dir/guest.sock\"}}}" >/dev/null
  for node in $(qmpcmd "$QMP_TEST_SOCK" query-named-block-nodes '{"flat":true}' |
                jq -r '.[] | select(.drv == "qcow2") | ."node-name"' | grep '^disk' | sort); do
    qmpcmd "$QMP_TEST_SOCK" block-export-add \
      "{\"type\":\"nbd\",\"id\":\"guest-$node\",\"node-name\":\"$node\",\"name\":\"guest-$node\",\"writable\":true}" >/dev/null
  done
}

# guest_write SOCK EXPORT OFFSET LENGTH BYTE: LENGTH bytes of BYTE at
# OFFSET, flushed.
guest_write ()
{
  local sock=$1 export=$2 off=$3 len=$4 byte=$5
  PATH="/usr/bin:$PATH" nbdsh -u "nbd+unix:///$export?socket=$sock" \
    -c "h.pwrite(bytes([$byte]) * $len, $off); h.flush()"
}

# start_qemu_system DIR N: q35, stopped (-S), TCG, no defaults, N virtio-
# blk disks vdK on nodes diskK.  Sets QEMU_PID, QMP_SOCK, QMP_TEST_SOCK.
start_qemu_system ()
{
  local dir=$1 n=$2 size=${3:-64M} i args=()
  for ((i = 0; i < n; i++)); do
    [ -f "$dir/disk$i.qcow2" ] ||
      qemu-img create -q -f qcow2 "$dir/disk$i.qcow2" "$size"
    args+=(-blockdev "driver=file,filename=$dir/disk$i.qcow2,node-name=disk$i-file"
           -blockdev "driver=qcow2,file=disk$i-file,node-name=disk$i"
           -device "virtio-blk-pci,drive=disk$i,id=vd$i")
  done
  start_qemu_system_args "$dir" "${args[@]}"
}

# start_qemu_system_args DIR QEMU-ARGS...: the same machine with the
# caller's -blockdev/-drive/-device options.
start_qemu_system_args ()
{
  local dir=$1; shift
  QMP_SOCK=$dir/qmp.sock
  QMP_TEST_SOCK=$dir/qmp-test.sock
  rm -f "$QMP_SOCK" "$QMP_TEST_SOCK"
  qemu-system-x86_64 -M q35 -S -accel tcg -nodefaults -display none -m 128 \
    -qmp "unix:$QMP_SOCK,server=on,wait=off" \
    -qmp "unix:$QMP_TEST_SOCK,server=on,wait=off" \
    "$@" >>"$dir/qemu.log" 2>&1 &
  QEMU_PID=$!
  track_pid $QEMU_PID
  wait_for 20 qmpcmd -t 1000 --version "$QMP_TEST_SOCK"
}

# hmp_write SOCK DEVID OFFSET LENGTH BYTE: a write by the "guest" on a
# device-attached disk, through HMP qemu-io on the device's backend.
hmp_write ()
{
  local out
  out=$(qmpcmd --hmp "$1" \
        "qemu-io -d /machine/peripheral/$2/virtio-backend \"write -P $5 $3 $4\"")
  case "$out" in
    *rror*) echo "hmp_write: $out" >&2; return 1 ;;
  esac
}

# start_qga DIR: qemu-ga in a private mount namespace, chrooted into a
# tmpfs whose only real filesystem is a loop-mounted ext4 at /mnt, so
# even an unrestricted freeze can only freeze that.  Sets QGA_PID,
# QGA_SOCK, QGA_MNT (the ext4 as the host reaches it).
start_qga ()
{
  local dir=$1 root=$1/qga-root lib
  mkdir -p "$root"
  truncate -s 32M "$dir/guest-fs.img"
  mkfs.ext4 -q -F "$dir/guest-fs.img"
  unshare -m --propagation private sh -c '
    set -e
    root=$1 img=$2
    mount -t tmpfs -o size=64m tmpfs "$root"
    mkdir -p "$root/mnt" "$root/proc" "$root/sys" "$root/run" "$root/state"
    cp /usr/sbin/qemu-ga "$root/"
    for l in $(ldd /usr/sbin/qemu-ga | grep -o "/[^ ]*"); do
      mkdir -p "$root$(dirname "$l")"; cp "$l" "$root$l"
    done
    mount -o loop "$img" "$root/mnt"
    mount -t proc proc "$root/proc"
    mount -t sysfs sysfs "$root/sys"
    exec chroot "$root" /qemu-ga -m unix-listen -p /run/qga.sock \
      -t /state -f /run/qga.pid -l /run/qga.log -v
  ' sh "$root" "$dir/guest-fs.img" >>"$dir/qga.log" 2>&1 &
  QGA_PID=$!
  track_pid $QGA_PID
  cleanup_fn _stop_qga "$dir/guest-fs.img"
  QGA_SOCK=/proc/$QGA_PID/root/run/qga.sock
  QGA_MNT=/proc/$QGA_PID/root/mnt
  wait_for 10 qmpcmd -t 1000 --qga "$QGA_SOCK" guest-ping
}

_stop_qga ()
{
  local img=$1
  if [ -n "${QGA_PID:-}" ] && kill -0 "$QGA_PID" 2>/dev/null; then
    qmpcmd -t 2000 --qga "$QGA_SOCK" fsfreeze-thaw >/dev/null 2>&1
    kill "$QGA_PID" 2>/dev/null
    wait "$QGA_PID" 2>/dev/null
  fi
  # The namespace, and with it the mount, died with the agent; make sure
  # no loop device still holds the image.
  local dev
  for dev in $(losetup -j "$img" -O NAME -n 2>/dev/null); do
    losetup -d "$dev" 2>/dev/null
  done
}

# image_has IMAGE OFFSET LENGTH BYTE: the qcow2 IMAGE (not in use) holds
# BYTE over the range.  qemu-io prints "read N/N bytes" even when the
# pattern does not match, so its status and its complaint are what count.
image_has ()
{
  local out
  out=$(qemu-io -r -f qcow2 -c "read -P $4 $2 $3" "$1" 2>&1) || return 1
  ! grep -q 'Pattern verification failed' <<<"$out"
}
