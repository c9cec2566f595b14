#!/usr/bin/env python3
"""Atomic read-modify-writes per request of the demo app, bare and armed, by function: callgrind counts each
executed instruction (`--dump-instr=yes`), and the lock-prefixed ones (and `xchg` with memory, locked by
definition on x86-64) are the atomic read-modify-writes. Callgrind counts one such instruction as one; on a
core it costs tens of cycles, and a line two workers write in turn costs a transfer between cores each time,
which is why this count matters beside the instruction count.

    cargo build --release --example app_instructions
    python3 benches/app_atomics.py [CASE ...]      # bare, armed-wall (default), armed-thread; needs valgrind, objdump
    TOP=40 python3 benches/app_atomics.py armed-wall

Each case runs `app_instructions --run CASE N` under callgrind (N = 2 000 requests after the warm-up), counting
only inside `benches::measured` as `app_instructions` does; the figure is per request. x86-64 only.
"""
import collections
import os
import re
import subprocess
import sys
import tempfile

BIN = os.environ.get("APP_INSTRUCTIONS", "target/release/examples/app_instructions")
N = 2_000
TOP = int(os.environ.get("TOP", "25"))


def locked_instructions(binary):
    """Address -> function of every lock-prefixed instruction (and xchg with memory) in `binary`."""
    listing = subprocess.run(["objdump", "-d", "--no-show-raw-insn", "-C", binary], capture_output=True,
                             text=True, check=True).stdout
    found, function = {}, None
    for line in listing.splitlines():
        m = re.match(r"^([0-9a-f]+) <(.*)>:$", line)
        if m:
            function = m.group(2)
            continue
        m = re.match(r"^\s+([0-9a-f]+):\s+(.*)$", line)
        if m and (m.group(2).startswith("lock ") or re.match(r"xchg\s+\S+,\(", m.group(2))):
            found[int(m.group(1), 16)] = function
    return found


def executed(binary, case, out):
    """Address -> times executed inside benches::measured, for the binary's own code."""
    run = subprocess.run(["valgrind", "--tool=callgrind", "--dump-instr=yes", "--toggle-collect=*benches::measured*",
                          f"--callgrind-out-file={out}", binary, "--run", case, str(N)], capture_output=True, text=True)
    if run.returncode != 0:
        sys.exit(f"app_atomics.py: `{binary} --run {case}` failed (cases: bare, armed-wall, armed-thread):\n"
                 + run.stderr[-2000:])
    counts, objects, obj, last, after_call = collections.Counter(), {}, None, 0, False
    own = os.path.basename(binary)
    for line in open(out):
        m = re.match(r"^(c?ob)=\((\d+)\)(?: (.*))?$", line.rstrip("\n"))
        if m:
            if m.group(3):
                objects[m.group(2)] = m.group(3)
            if m.group(1) == "ob":
                obj = objects[m.group(2)]
            continue
        if line.startswith("calls="):
            after_call = True  # the next line is the call's cost, not the instruction's own
            continue
        m = re.match(r"^(0x[0-9a-f]+|[+-]\d+|\*)\s+\S+\s+(\d+)", line)
        if m:
            a = m.group(1)
            last = int(a, 16) if a.startswith("0x") else (last if a == "*" else last + int(a))
            if after_call:
                after_call = False
                continue
            if obj and os.path.basename(obj) == own:
                counts[last] += int(m.group(2))
    return counts


def main():
    cases = sys.argv[1:] or ["bare", "armed-wall"]
    locked = locked_instructions(BIN)
    with tempfile.TemporaryDirectory() as tmp:
        for case in cases:
            counts = executed(BIN, case, os.path.join(tmp, case + ".out"))
            per = collections.Counter()
            for address, n in counts.items():
                if address in locked:
                    per[locked[address]] += n
            print(f"{case}: {sum(per.values()) / N:.1f} atomic read-modify-writes a request")
            for function, n in per.most_common(TOP):
                if n / N >= 0.05:
                    print(f"  {n / N:6.2f}  {function[:140]}")


if __name__ == "__main__":
    main()
