#!/usr/bin/python3
# pullback tests: what the extents endpoint must answer, computed from
# `nbdinfo --map --json` of each context.
#   extents-oracle.py zero ALLOC.json OFFSET LENGTH
#   extents-oracle.py dirty ALLOC.json DIRTY.json OFFSET LENGTH
# Prints the JSON list of items, merged and clipped to the range.
# SPDX-License-Identifier: BSD-3-Clause

import json
import sys


def runs(path):
    """[(start, end, flags)] from nbdinfo --map --json."""
    return [(e["offset"], e["offset"] + e["length"], e["type"])
            for e in json.load(open(path))]


def flags_at(rs, pos):
    for s, e, f in rs:
        if s <= pos < e:
            return f
    raise SystemExit(f"no extent at {pos}")


def main():
    mode = sys.argv[1]
    alloc = runs(sys.argv[2])
    dirty = runs(sys.argv[3]) if mode == "dirty" else []
    off, length = (int(x) for x in sys.argv[-2:])
    end = off + length
    cuts = {off, end}
    for rs in (alloc, dirty):
        for s, e, _ in rs:
            cuts.update(x for x in (s, e) if off < x < end)
    cuts = sorted(cuts)
    items = []
    for a, b in zip(cuts, cuts[1:]):
        fa = flags_at(alloc, a)
        if mode == "dirty":
            item = {"start": a, "length": b - a,
                    "dirty": bool(flags_at(dirty, a) & 1),
                    "zero": bool(fa & 2)}
        else:
            item = {"start": a, "length": b - a,
                    "zero": bool(fa & 2), "hole": bool(fa & 1)}
        last = items[-1] if items else None
        if last and all(last[k] == item[k] for k in item if k not in ("start", "length")):
            last["length"] += item["length"]
        else:
            items.append(item)
    print(json.dumps(items))


main()
