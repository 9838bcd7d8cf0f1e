#!/usr/bin/python3
# pullback stress: guest writes and incremental pulls with libnbd.
# SPDX-License-Identifier: BSD-3-Clause
#
#   nbd-helper.py write URI SEED COUNT
#       COUNT random writes, zero writes and trims (sizes from 512 bytes
#       to 2 MiB, unaligned), seeded: the "guest" at work
#   nbd-helper.py apply URI CONTEXT RAW
#       copy exactly the blocks CONTEXT marks dirty from URI into the raw
#       file RAW (a copy of the image at the base checkpoint)
#
# Uses Debian's python3-libnbd, hence /usr/bin/python3.

import random
import sys

import nbd


def write(uri, seed, count):
    rng = random.Random(seed)
    h = nbd.NBD()
    h.connect_uri(uri)
    size = h.get_size()
    for _ in range(count):
        length = rng.choice([512, 4096, 65536, 200000, 2 << 20])
        offset = rng.randrange(0, size - length) // 512 * 512
        kind = rng.random()
        if kind < 0.1:
            h.zero(length, offset)
        elif kind < 0.15:
            h.trim(length, offset)
        else:
            h.pwrite(bytes([rng.randrange(1, 256)]) * length, offset)
    h.flush()
    h.shutdown()


def apply(uri, ctx, raw):
    h = nbd.NBD()
    h.add_meta_context(ctx)
    h.connect_uri(uri)
    if not h.can_meta_context(ctx):
        raise SystemExit(f"{uri}: no {ctx}")
    size = h.get_size()
    dirty = []
    offset = 0
    while offset < size:
        got = []

        def cb(meta, off, entries, err):
            if meta == ctx:
                pos = off
                for i in range(0, len(entries), 2):
                    if entries[i + 1] & 1:
                        dirty.append((pos, entries[i]))
                    pos += entries[i]
                got.append(pos)
            return 0

        h.block_status(min(size - offset, 1 << 30), offset, cb)
        if not got or got[0] <= offset:
            raise SystemExit(f"block status at {offset}: no progress")
        offset = got[0]
    with open(raw, "r+b") as f:
        for off, length in dirty:
            for o in range(off, off + length, 4 << 20):
                n = min(4 << 20, off + length - o)
                f.seek(o)
                f.write(h.pread(n, o))
    h.shutdown()
    print(sum(length for _, length in dirty))


if sys.argv[1] == "write":
    write(sys.argv[2], int(sys.argv[3]), int(sys.argv[4]))
elif sys.argv[1] == "apply":
    apply(sys.argv[2], sys.argv[3], sys.argv[4])
else:
    raise SystemExit("usage: nbd-helper.py write|apply ...")
