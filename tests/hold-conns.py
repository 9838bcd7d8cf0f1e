#!/usr/bin/env python3
# pullback tests: hold idle connections open, as a client that connects
# and never sends a byte.
# SPDX-License-Identifier: BSD-3-Clause
#
#   hold-conns.py unix:PATH N [tcp:HOST:PORT N]...
#
# Opens N connections to each address, then keeps N open: one the server
# closes is counted and opened again (at most every 50 ms per batch).
# Prints "open TOTAL" once all are connected and "closed K" after each
# batch of closes (K: closes so far).  Runs until killed.
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
    kind, rest = addr.split(":", 1)
    if kind == "unix":
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.connect(rest)
    else:
        host, port = rest.rsplit(":", 1)
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.connect((host, int(port)))
    return s


socks = {}
for addr, n in targets:
    for _ in range(n):
        s = connect(addr)
        socks[s] = addr
print("open %d" % len(socks), flush=True)

closed = 0
poller = select.poll()
byfd = {}
for s in socks:
    poller.register(s, select.POLLIN)
    byfd[s.fileno()] = s
while True:
    events = poller.poll()
    again = []
    for fd, _ in events:
        s = byfd.pop(fd)
        poller.unregister(fd)
        try:
            data = s.recv(4096)
        except OSError:
            data = b""
        if data:
            # An answer (an error): the server is done with it anyway.
            pass
        again.append(socks.pop(s))
        s.close()
        closed += 1
    print("closed %d" % closed, flush=True)
    time.sleep(0.05)
    for addr in again:
        try:
            s = connect(addr)
        except OSError:
            continue
        socks[s] = addr
        byfd[s.fileno()] = s
        poller.register(s, select.POLLIN)
