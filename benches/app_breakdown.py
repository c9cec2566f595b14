#!/usr/bin/env python3
"""Where the armed demo app's extra instructions go, per request: callgrind's self counts of the armed app minus
the bare one's, by function and grouped by component.

    cargo build --release --example app_instructions
    python3 benches/app_breakdown.py [ARMED_CASE]      # default armed-wall; needs valgrind and callgrind_annotate

Each app runs under callgrind with 2 000 and 12 000 requests (as `app_instructions` does); the difference over
10 000 is one request. Only the requests are counted (inside `benches::measured`), as `app_instructions` does.
"""
import collections
import os
import re
import subprocess
import sys
import tempfile

BIN = os.environ.get("APP_INSTRUCTIONS", "target/release/examples/app_instructions")
SHORT, LONG = 2_000, 12_000
GROUPS = [
    ("cost-meter and CostLayer", ("brownout_cost", "brownout_tower::cost")),
    ("fallback", ("brownout_tower::fallback",)),
    ("breaker", ("brownout_degrade", "brownout_tower::breaker")),
    ("fault layer and rules", ("brownout_tower::http", "brownout_chaos")),
    ("malloc and free", ("malloc", "free", "__rust_alloc", "__rust_dealloc")),
    ("memcpy (moves)", ("memcpy", "memmove")),
    ("tower, axum, http glue", ("tower::", "axum", "http::", "bytes::", "hyper")),
]


# The demo's own degrade work, not Brownout's: the armed quote route fills its quote cache (the fallback's data)
# and marks a live answer `x-quote-age-ms: 0`, which the bare route does not. Counted inclusively (with what they
# call), so these overlap the groups above: (label, function, whether to subtract the bare app's count).
DEMO_WORK = [
    # Its release of the symbol's previous quote frees a body, as the bare app's drop of its answer does.
    ("the quote cache's fill (QuoteCache::insert, the previous quote's release included)", "QuoteCache::insert",
     False),
    ("its x-quote-age-ms header (HeaderMap inserts beyond the bare app's)", "HeaderMap<T>::try_insert2", True),
]


def annotate(out, inclusive):
    args = ["callgrind_annotate", "--auto=no", "--threshold=100"] + (["--inclusive=yes"] if inclusive else [])
    text = subprocess.run(args + [out], check=True, capture_output=True, text=True).stdout
    counts = collections.Counter()
    for line in text.splitlines():
        m = re.match(r"\s*([\d,]+) \([^)]*\)\s+(.*)$", line)
        if m and "PROGRAM TOTALS" not in m.group(2):
            name = re.sub(r"^\?\?\?:", "", re.sub(r" \[.*\]$", "", m.group(2)))
            counts[name] += int(m.group(1).replace(",", ""))
    return counts


def counts(case, n, tmp):
    """Self and inclusive counts by function, for `n` requests."""
    out = os.path.join(tmp, f"{case}-{n}.out")
    # Only inside `benches::measured` (the requests), as `app_instructions` counts: set-up, the TSC calibration
    # and cost-meter's memory tick move with the run's wall time, not with its requests.
    subprocess.run(["valgrind", "--tool=callgrind", "--toggle-collect=*benches::measured*",
                    f"--callgrind-out-file={out}", BIN, "--run", case, str(n)], check=True, capture_output=True)
    return annotate(out, False), annotate(out, True)


def per_request(case, tmp):
    """Self and inclusive instructions per request, by function."""
    (short, short_incl), (long, long_incl) = counts(case, SHORT, tmp), counts(case, LONG, tmp)
    per = lambda lo, hi: {k: (hi[k] - lo.get(k, 0)) / (LONG - SHORT) for k in hi}
    return per(short, long), per(short_incl, long_incl)


def main():
    armed_case = sys.argv[1] if len(sys.argv) > 1 else "armed-wall"
    with tempfile.TemporaryDirectory() as tmp:
        (bare, bare_incl), (armed, armed_incl) = per_request("bare", tmp), per_request(armed_case, tmp)
    diff = {k: armed.get(k, 0) - bare.get(k, 0) for k in set(bare) | set(armed)}
    groups = collections.Counter()
    for name, d in diff.items():
        group = next((g for g, keys in GROUPS if any(key in name for key in keys)), "other (drops, future polls)")
        groups[group] += d
    print(f"{armed_case} minus bare: {sum(diff.values()):+,.0f} instructions per request")
    for group, d in groups.most_common():
        print(f"  {d:+8,.0f}  {group}")
    print("of which the demo's own degrade work (the quote route's, not Brownout's; inclusive):")
    for label, key, minus_bare in DEMO_WORK:
        total = lambda incl: sum(v for k, v in incl.items() if key in k)
        print(f"  {total(armed_incl) - (total(bare_incl) if minus_bare else 0):+8,.0f}  {label}")
    print("largest functions:")
    for name, d in sorted(diff.items(), key=lambda kv: -kv[1])[:int(os.environ.get("TOP", "15"))]:
        print(f"  {d:+8,.0f}  {name[:120]}")


if __name__ == "__main__":
    main()
