#!/usr/bin/env bash
# The research workload of the cost-governance playbook, run twice through `cost-meter run`: without the result
# cache, then with it. It prints the jobs run, the cache's hit rate, and the CPU-hours spent and saved.
#
#   bash benches/research_workload.sh            # 8 sessions
#   SESSIONS=4 BURN=2000000 bash benches/research_workload.sh
#
# The workload (in a scratch directory: a git repository holding the "code", data files, and the cache):
# SESSIONS research sessions, each computing 4 feature sets (momentum, value, carry, volatility: each job hashes
# its data file and burns BURN loop iterations of CPU, as a feature computation) and 3 backtests (momo, carry,
# meanrev: each reads the 4 feature outputs and its config, burns 2 × BURN). Feature jobs are keyed by their
# input file and a schema version (`--key-input`, `--key-version`); backtests by the git commit and dirty tree,
# their config and the features (`--key-git`, `--key-input`). What changes between sessions, as in a team's week:
# - session 3: a new day of momentum data (the momentum features and, through them, every backtest miss);
# - session 5: the value features' schema is bumped (`--key-version value-v2`): the value features miss (their
#   output is the same bytes, so the backtests, keyed by content, do not);
# - session 6: a commit to the backtester's code: every backtest misses (the features do not).
# Everything else repeats. Each job's command is identical with and without the cache, so the difference in
# CPU-hours is what the hits did not spend.
set -euo pipefail
cd "$(dirname "$0")/.."

SESSIONS=${SESSIONS:-8}
BURN=${BURN:-1500000}

echo "== building cost-meter" >&2
cargo build -q -p brownout-cost --bin cost-meter ${CARGO_JOBS:+-j "$CARGO_JOBS"}
CM="$PWD/target/debug/cost-meter"
command -v python3 >/dev/null || { echo "research_workload.sh: python3 is missing" >&2; exit 2; }

WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT

# The job: `job.py feature NAME` or `job.py backtest NAME`; burns CPU, writes out/NAME.out.
cat >"$WORK/job.py" <<'EOF'
import hashlib, os, sys
kind, name, burn = sys.argv[1], sys.argv[2], int(sys.argv[3])
h = hashlib.sha256()
if kind == "feature":
    h.update(open(f"data/{name}.csv", "rb").read())
else:
    for f in ("momentum", "value", "carry", "volatility"):
        h.update(open(f"out/{f}.out", "rb").read())
    h.update(open(f"configs/{name}.yaml", "rb").read())
    burn *= 2
x = 0
for i in range(burn):
    x += i * i
os.makedirs("out", exist_ok=True)
open(f"out/{name}.out", "w").write(f"{kind} {name} {h.hexdigest()} {x % 1000}\n" * 2000)
EOF

setup() {
    local dir=$1
    rm -rf "$dir"
    mkdir -p "$dir/data" "$dir/configs" "$dir/out"
    cp "$WORK/job.py" "$dir/"
    for f in momentum value carry volatility; do printf 'day,%s\n1,0.5\n' "$f" >"$dir/data/$f.csv"; done
    for s in momo carry meanrev; do printf 'strategy: %s\nlookback: 20\n' "$s" >"$dir/configs/$s.yaml"; done
    printf 'data/\nout/\ncache/\n*.jsonl\nreports/\n' >"$dir/.gitignore"
    git -C "$dir" init -q
    git -C "$dir" add .
    git -C "$dir" -c user.name=bench -c user.email=bench@example.com -c commit.gpgsign=false commit -qm code
}

# run_workload DIR CACHE(yes|no)
run_workload() {
    local dir=$1 cache=$2
    cd "$dir"
    for session in $(seq 1 "$SESSIONS"); do
        [ "$session" -eq 3 ] && printf 'day,momentum\n2,0.7\n' >>data/momentum.csv
        [ "$session" -eq 6 ] && {
            echo "# faster fills" >>job.py
            git -c user.name=bench -c user.email=bench@example.com -c commit.gpgsign=false commit -qam "backtester: faster fills"
        }
        for f in momentum value carry volatility; do
            local version=features-v1
            [ "$f" = value ] && [ "$session" -ge 5 ] && version=value-v2
            local keys=()
            [ "$cache" = yes ] && keys=(--cache cache --key-input "data/$f.csv" --key-version "$version" --outputs "out/$f.out")
            "$CM" run -q --labels "team=research,service=features,strategy=$f,tier=batch" --scheduled \
                "${keys[@]}" -- python3 job.py feature "$f" "$BURN"
        done
        for s in momo carry meanrev; do
            local keys=()
            [ "$cache" = yes ] && keys=(--cache cache --key-git --key-input configs/$s.yaml out/momentum.out \
                out/value.out out/carry.out out/volatility.out --outputs "out/$s.out")
            "$CM" run -q --labels "team=research,service=backtester,strategy=$s,tier=batch" --scheduled \
                "${keys[@]}" -- python3 job.py backtest "$s" "$BURN"
        done
    done
    cd - >/dev/null
}

# cpu_hours RECORDS: the CPU-hours of the records, and how many there are and were hits
summary() {
    python3 - "$1" <<'EOF'
import json, sys
rs = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
cpu = sum(r["cpu_seconds"] for r in rs) / 3600
hits = sum(1 for r in rs if r.get("cache_hit"))
print(f"{len(rs)} {hits} {cpu:.6f}")
EOF
}

setup "$WORK/plain"
setup "$WORK/cached"
echo "== without the cache: $SESSIONS sessions of 4 feature jobs and 3 backtests" >&2
start=$(date +%s.%N)
run_workload "$WORK/plain" no
plain_wall=$(python3 -c "import time; print(f'{time.time() - $start:.1f}')")
echo "== with the cache" >&2
start=$(date +%s.%N)
run_workload "$WORK/cached" yes
cached_wall=$(python3 -c "import time; print(f'{time.time() - $start:.1f}')")

# the outputs are the same either way
for f in "$WORK/plain/out/"*.out; do
    cmp -s "$f" "$WORK/cached/out/$(basename "$f")" || { echo "research_workload.sh: $(basename "$f") differs" >&2; exit 1; }
done

read -r plain_jobs _ plain_cpu < <(summary "$WORK/plain/cost_records.jsonl")
read -r cached_jobs cached_hits cached_cpu < <(summary "$WORK/cached/cost_records.jsonl")
stats=$("$CM" cache stats --json --cache "$WORK/cached/cache")
hit_rate=$(python3 -c "import json,sys; print(f'{json.loads(sys.argv[1])[\"hit_rate\"] * 100:.1f}')" "$stats")
saved=$(python3 -c "import json,sys; print(f'{json.loads(sys.argv[1])[\"total\"][\"cpu_hours_saved\"]:.6f}')" "$stats")

echo
"$CM" cache stats --cache "$WORK/cached/cache"
echo
echo "| run | jobs | cache hits | hit rate | CPU-hours spent | CPU-hours saved (cache stats) | wall s |"
echo "|---|---|---|---|---|---|---|"
echo "| without cache | $plain_jobs | – | – | $plain_cpu | – | $plain_wall |"
echo "| with cache | $cached_jobs | $cached_hits | $hit_rate% | $cached_cpu | $saved | $cached_wall |"
python3 - "$plain_cpu" "$cached_cpu" "$hit_rate" <<'EOF'
import sys
plain, cached, rate = map(float, sys.argv[1:4])
print(f"\nCPU-hours: {cached / plain * 100:.1f}% of the run without the cache ({(plain - cached) * 3600:.1f} CPU-seconds less); hit rate {rate}% (target >= 70%)")
sys.exit(0 if rate >= 70 else 1)
EOF
