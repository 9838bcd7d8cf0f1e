#!/usr/bin/python3
# pullback tests: read the dirty blocks of an incremental export.
# SPDX-License-Identifier: BSD-3-Clause
#
#   nbd-dirty.py map URI CONTEXT
#       print the dirty extents of CONTEXT as JSON [[offset, length], ...]
#   nbd-dirty.py apply URI CONTEXT OVERLAY.qcow2
#       copy exactly the dirty blocks into OVERLAY (served by qemu-nbd
#       through socket activation), the way a vendor's incremental pull
#       fills a qcow2 overlay whose backing file is the previous backup
#
# Uses Debian's python3-libnbd, hence /usr/bin/python3.

import json
import sys

import nbd


def dirty_extents(h, ctx):
    size = h.get_size()
    found = []
    offset = 0
    while offset < size:
        reached = [offset]

        def cb(meta, off, entries, err):
            if meta != ctx:
                return 0
            for i in range(0, len(entries), 2):
                if entries[i + 1] & 1:
                    if found and found[-1][0] + found[-1][1] == off:
                        found[-1][1] += entries[i]
                    else:
                        found.append([off, entries[i]])
                off += entries[i]
            reached[0] = off
            return 0

        h.block_status(min(size - offset, 1 << 30), offset, cb)
        if reached[0] <= offset:
            raise SystemExit("block status made no progress")
        offset = reached[0]
    return found


def main():
    mode, uri, ctx = sys.argv[1:4]
    h = nbd.NBD()
    h.add_meta_context(ctx)
    # tls-certificates= / tls-psk-file= in an nbds:// URI name local files.
    h.set_uri_allow_local_file(True)
    h.connect_uri(uri)
    if not h.can_meta_context(ctx):
        raise SystemExit(f"export does not offer {ctx}")
    extents = dirty_extents(h, ctx)
    if mode == "map":
        print(json.dumps(extents))
        return
    if mode != "apply":
        raise SystemExit(f"unknown mode {mode}")
    out = nbd.NBD()
    out.connect_systemd_socket_activation(
        ["qemu-nbd", "-f", "qcow2", sys.argv[4]])
    total = 0
    for off, length in extents:
        pos = off
        while pos < off + length:
            n = min(off + length - pos, 32 << 20)
            out.pwrite(h.pread(n, pos), pos)
            pos += n
        total += length
    out.flush()
    out.shutdown()
    print(json.dumps({"extents": len(extents), "bytes": total}))


main()
