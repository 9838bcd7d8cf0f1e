#!/usr/bin/env python3
# pullback tests: send a raw HTTP request (stdin, bytes as they are) and
# print the first answer: its status, its Content-Type, then its body.
# SPDX-License-Identifier: BSD-3-Clause
#
#   printf 'GET / HTTP/1.1\r\n\r\n' | http-raw.py unix:PATH|tcp:HOST:PORT [N]
#
# With N, then sends N more bytes (a body), but only once the server has
# answered or 2 s have passed, as a client that is slow to send its body
# (exit status 3 if the server does not take them all).  Reads until the
# answer is complete (Content-Length) or the server closes; gives up after
# 20 s (a bound, not a timing claim).
import select
import socket
import sys
import time

addr = sys.argv[1]
late_body = int(sys.argv[2]) if len(sys.argv) > 2 else 0
kind, rest = addr.split(":", 1)
if kind == "unix":
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.connect(rest)
else:
    host, port = rest.rsplit(":", 1)
    s = socket.create_connection((host, int(port)))
request = sys.stdin.buffer.read()
try:
    s.sendall(request)
except OSError as e:
    # The server may answer and close before taking all of it: still
    # read the answer.
    print("send failed: %s" % e, file=sys.stderr)
if late_body:
    select.select([s], [], [], 2)
    chunk = b"\0" * 65536
    sent = 0
    try:
        while sent < late_body:
            sent += s.send(chunk[: min(len(chunk), late_body - sent)])
    except OSError as e:
        print("body: send failed after %d bytes: %s" % (sent, e), file=sys.stderr)
        sys.exit(3)
deadline = time.monotonic() + 20
s.settimeout(1)
data = b""
while time.monotonic() < deadline:
    try:
        b = s.recv(65536)
    except socket.timeout:
        b = None
    except OSError as e:
        print("recv failed: %s" % e, file=sys.stderr)
        break
    if b == b"":
        break
    if b:
        data += b
    head, sep, body = data.partition(b"\r\n\r\n")
    if sep:
        lines = head.split(b"\r\n")
        hdrs = {}
        for line in lines[1:]:
            k, _, v = line.partition(b":")
            hdrs[k.strip().lower()] = v.strip()
        if b"content-length" in hdrs and len(body) >= int(hdrs[b"content-length"]):
            break
head, sep, body = data.partition(b"\r\n\r\n")
lines = head.split(b"\r\n")
status = lines[0].split(b" ")[1].decode() if lines[0].startswith(b"HTTP/") else "000"
ctype = b""
for line in lines[1:]:
    k, _, v = line.partition(b":")
    if k.strip().lower() == b"content-type":
        ctype = v.strip()
sys.stdout.write("%s\n%s\n" % (status, ctype.decode(errors="replace")))
sys.stdout.flush()
sys.stdout.buffer.write(body)
