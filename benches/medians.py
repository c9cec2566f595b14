#!/usr/bin/env python3
"""Prints criterion's medians (ns) from the last `cargo bench` run, one line per case, with each case's ratio to
the fastest peer of its group (a peer: a case that is neither `bare`, Brownout's own, nor cost-meter's).

    python3 benches/medians.py [GROUP_PREFIX ...]     # reads ${CARGO_TARGET_DIR:-target}/criterion
"""
import json
import os
import sys
from pathlib import Path

root = Path(os.environ.get("CARGO_TARGET_DIR", "target")) / "criterion"
prefixes = sys.argv[1:]
groups = {}
for estimates in sorted(root.glob("**/new/estimates.json")):
    bench = json.loads((estimates.parent / "benchmark.json").read_text())
    group, case = bench["group_id"], bench["function_id"] or bench["value_str"]
    if prefixes and not any(group.startswith(p) for p in prefixes):
        continue
    median = json.loads(estimates.read_text())["median"]["point_estimate"]
    groups.setdefault(group, []).append((case, median))


def is_peer(case):
    return not (case == "bare" or case.startswith(("brownout", "cost_meter", "metered", "one_", "two_", "system")))


for group, cases in groups.items():
    peers = [m for c, m in cases if is_peer(c)]
    fastest = min(peers) if peers else None
    print(f"## {group}")
    for case, median in cases:
        ratio = f"{median / fastest:6.2f}x fastest peer" if fastest else ""
        print(f"  {case:<40} {median:10.2f} ns  {ratio}")
