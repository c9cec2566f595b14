#!/usr/bin/env python3
"""An honest minimum Rust version: fail if a dependency needs a newer Rust than the package that uses it says.

For every workspace package this reads its declared `rust-version` and walks what it builds with from
`cargo metadata --format-version 1` (for the host platform, every feature on): its normal and build
dependencies, transitively, and its dev-dependencies with theirs (the tests must build on the declared version
too). Any package in that graph whose own `rust-version` is newer is reported, with the path that pulls it in,
and the script exits 1. A package that declares no `rust-version` cannot be judged and is skipped.

Usage: .ci/msrv.py [--manifest-path Cargo.toml]
"""

import json
import subprocess
import sys


def version(text):
    """`1.89` or `1.89.0` as a comparable tuple (missing parts are 0)."""
    parts = [int(p) for p in text.split(".")]
    return tuple(parts + [0] * (3 - len(parts)))


def host_triple():
    out = subprocess.run(["rustc", "-vV"], check=True, capture_output=True, text=True).stdout
    return next(line.split(": ", 1)[1] for line in out.splitlines() if line.startswith("host: "))


def metadata(extra):
    cmd = ["cargo", "metadata", "--format-version", "1", "--all-features", "--filter-platform", host_triple()]
    out = subprocess.run(cmd + extra, check=True, capture_output=True, text=True).stdout
    return json.loads(out)


def deps_of(node, kinds):
    """The ids of a resolve node's dependencies of the given kinds (None: normal, "build", "dev")."""
    for dep in node["deps"]:
        if any(k["kind"] in kinds for k in dep["dep_kinds"]):
            yield dep["pkg"]


def too_new(meta):
    packages = {p["id"]: p for p in meta["packages"]}
    nodes = {n["id"]: n for n in meta["resolve"]["nodes"]}
    problems = []
    for member in meta["workspace_members"]:
        declared = packages[member].get("rust_version")
        if not declared:
            continue
        # Breadth first: from the member's normal, build and dev dependencies, then their normal and build ones.
        seen = {}
        queue = [(d, [packages[member]["name"]]) for d in deps_of(nodes[member], {None, "build", "dev"})]
        while queue:
            pkg, path = queue.pop(0)
            if pkg in seen:
                continue
            seen[pkg] = path + [packages[pkg]["name"]]
            queue += [(d, seen[pkg]) for d in deps_of(nodes[pkg], {None, "build"})]
        for pkg, path in sorted(seen.items(), key=lambda kv: packages[kv[0]]["name"]):
            needs = packages[pkg].get("rust_version")
            if needs and version(needs) > version(declared):
                problems.append(
                    f"{packages[member]['name']} declares rust-version {declared}, but "
                    f"{packages[pkg]['name']} {packages[pkg]['version']} needs {needs} "
                    f"(through {' -> '.join(path)})"
                )
    return problems


def main(argv):
    meta = metadata(argv[1:])
    problems = too_new(meta)
    for line in problems:
        print(f"msrv: {line}", file=sys.stderr)
    if problems:
        print(f"msrv: {len(problems)} dependencies need a newer Rust than declared", file=sys.stderr)
        return 1
    members = [p for p in meta["packages"] if p["id"] in meta["workspace_members"]]
    declared = sorted({(p["name"], p.get("rust_version") or "none") for p in members})
    print("msrv: every dependency builds on its user's declared rust-version: "
          + ", ".join(f"{n} {v}" for n, v in declared))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
