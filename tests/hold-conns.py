#!/usr/bin/env python3
# pullback tests: hold idle connections open, as a client that connects
# and never sends a byte.
# SPDX-License-Identifier: BSD-3-Clause
#
#   hold-conns.py unix:PATH N [tcp:HOST:PORT N]...
#
# Connects N times to each address (non-blocking: a full listen queue is
# retried, not waited on), prints "open K" (K connected) once every
# connection is made or 60 s have passed, then keeps N open: one the
# server closes is counted and made again, and "closed K" is printed
# after each batch (K: closes so far).  Runs until killed.
import errno
import resource
import select
import socket
import sys
import time

args = sys.argv[1:]
targets = [(args[i], int(args[i + 1])) for i in range(0, len(args), 2)]
want = sum(n for _, n in targets) + 64
soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
if soft < want:
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(want, hard), hard))


def connect(addr):
    """A connected (or connecting) socket, or None to try again later."""
    kind, rest = addr.split(":", 1)
    if kind == "unix":
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        target = rest
    else:
        host, port = rest.rsplit(":", 1)
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        target = (host, int(port))
    s.setblocking(False)
    e = s.connect_ex(target)
    if e in (0, errno.EINPROGRESS):
        return s
    s.close()
    return None


socks = {}
byfd = {}
poller = select.poll()


def add(addr):
    s = connect(addr)
    if s is None:
        return False
    socks[s] = addr
    byfd[s.fileno()] = s
    poller.register(s, select.POLLIN)
    return True


todo = [addr for addr, n in targets for _ in range(n)]
deadline = time.monotonic() + 60
while todo and time.monotonic() < deadline:
    todo = [addr for addr in todo if not add(addr)]
    if todo:
        time.sleep(0.01)
print("open %d" % len(socks), flush=True)

closed = 0
while True:
    events = poller.poll(100)
    for fd, _ in events:
        s = byfd.pop(fd)
        poller.unregister(fd)
        try:
            s.recv(4096)
        except OSError:
            pass
        todo.append(socks.pop(s))
        s.close()
        closed += 1
    if events:
        print("closed %d" % closed, flush=True)
        time.sleep(0.05)
    todo = [addr for addr in todo if not add(addr)]
