#!/usr/bin/env python3
"""The README's crate map matches the workspace: fail if it does not.

Reads the table under `## Crates and features` in README.md (columns: directory, package, holds, depends on) and
compares it with `cargo metadata` (what `cargo tree --workspace --depth 1` shows): every workspace package has
exactly one row, whose directory and package name are its own, and whose "depends on" cell names, in backticks,
exactly the workspace packages it depends on (normal, optional, dev or build). A row whose "holds" cell says it
is outside the workspace (the fuzz targets) is checked only for its Cargo.toml. Exits 1 naming each difference.

Usage: .ci/crate_map.py [README.md]
"""

import json
import os
import re
import subprocess
import sys


def table(readme):
    """The crate map's rows, as (directory, package, holds cell, depends-on cell)."""
    text = open(readme, encoding="utf-8").read()
    section = text.split("\n## Crates and features", 1)[1].split("\n## ", 1)[0]
    rows = []
    for line in section.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) == 4 and cells[0].startswith("`") and cells[0].endswith("/`"):
            rows.append((cells[0].strip("`").rstrip("/"), re.findall(r"`([^`]+)`", cells[1])[0], cells[2], cells[3]))
    return rows


def main():
    readme = sys.argv[1] if len(sys.argv) > 1 else "README.md"
    meta = json.loads(subprocess.run(["cargo", "metadata", "--no-deps", "--format-version", "1"], check=True,
                                     capture_output=True, text=True).stdout)
    root = meta["workspace_root"]
    names = {p["name"] for p in meta["packages"]}
    packages = {}
    for p in meta["packages"]:
        directory = os.path.relpath(os.path.dirname(p["manifest_path"]), root)
        packages[p["name"]] = (directory, {d["name"] for d in p["dependencies"] if d["name"] in names})
    problems = []
    seen = set()
    for directory, package, holds, cell in table(readme):
        if package not in packages:
            if "outside the workspace" in holds and os.path.isfile(os.path.join(root, directory, "Cargo.toml")):
                continue  # the fuzz targets: not in the workspace, nothing to compare with
            problems.append(f"row `{directory}/`: `{package}` is not a workspace package")
            continue
        seen.add(package)
        actual_dir, deps = packages[package]
        if actual_dir != directory:
            problems.append(f"row `{package}`: its directory is `{actual_dir}/`, the README says `{directory}/`")
        named = {n for n in re.findall(r"`([^`]+)`", cell) if n in names}
        if named != deps:
            missing, extra = sorted(deps - named), sorted(named - deps)
            problems.append(f"row `{package}`: depends on {sorted(deps)}; the README"
                            + (f" misses {missing}" if missing else "") + (f" names {extra} too" if extra else ""))
    for package in sorted(set(packages) - seen):
        problems.append(f"`{package}` ({packages[package][0]}/) has no row in the crate map")
    for p in problems:
        print(f"{readme}: crate map: {p}")
    if problems:
        sys.exit(1)
    print(f"{readme}: the crate map matches the workspace ({len(seen)} packages)")


if __name__ == "__main__":
    main()
