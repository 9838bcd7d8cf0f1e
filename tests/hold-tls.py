#!/usr/bin/env python3
# pullback tests: idle connections to a TLS address, made once (never
# remade): SILENT connections that never send a byte, then HELLO ones
# that send a TLS ClientHello and nothing more (a handshake left hanging).
# SPDX-License-Identifier: BSD-3-Clause
#
#   hold-tls.py HOST PORT SILENT HELLO
#
# Prints "open K" once all are connected (and the hellos sent), then
# "closed K" each time the server has closed more of them (K: closed so
# far; what the server sends, its half of a handshake, is read and
# dropped).  Runs until killed.
import resource
import select
import socket
import ssl
import sys

host, port, silent, hello = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
want = silent + hello + 64
soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
if soft < want:
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(want, hard), hard))


def client_hello():
    """The bytes of a ClientHello, from an in-memory TLS client."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    out = ssl.MemoryBIO()
    obj = ctx.wrap_bio(ssl.MemoryBIO(), out)
    try:
        obj.do_handshake()
    except ssl.SSLWantReadError:
        pass
    return out.read()


hello_bytes = client_hello()
poller = select.poll()
socks = {}
for i in range(silent + hello):
    s = socket.create_connection((host, port), timeout=60)
    if i >= silent:
        s.sendall(hello_bytes)
    s.setblocking(False)
    socks[s.fileno()] = s
    poller.register(s, select.POLLIN)
print("open %d" % len(socks), flush=True)

closed = 0
while True:
    events = poller.poll(1000)
    n = closed
    for fd, _ in events:
        s = socks[fd]
        try:
            if s.recv(65536):
                continue
        except BlockingIOError:
            continue
        except OSError:
            pass
        poller.unregister(fd)
        del socks[fd]
        s.close()
        closed += 1
    if closed != n:
        print("closed %d" % closed, flush=True)
