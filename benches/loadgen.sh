#!/usr/bin/env bash
# The load harness as a load generator: `load --url` beside wrk and oha, against the same `http_service --bare`,
# at the same connections and duration, in one run.
#
#   bash benches/loadgen.sh                       # 3 rounds of 10 s per generator, 32 connections
#   ROUNDS=5 DURATION=20 CONNECTIONS=64 RATE=3000 bash benches/loadgen.sh
#
# Closed loop: wrk (-t2), oha and `load --clients` each keep CONNECTIONS requests in flight for DURATION seconds;
# the figure is requests per second, and each generator's share of the fastest's median. Open loop: oha
# (`-q RATE --latency-correction`) and `load --rate RATE` send RATE requests per second and measure latency from
# the intended send time; the figures are their p50 and p99. The rounds rotate which generator goes first. The
# generators and the server share the machine's cores, so the closed-loop figure is a ratio under the same
# load, not the server's capacity. Needs wrk (Debian: `apt-get install wrk`) and oha (`cargo install oha`).
set -euo pipefail
cd "$(dirname "$0")/.."

ROUNDS=${ROUNDS:-3}
DURATION=${DURATION:-10}
CONNECTIONS=${CONNECTIONS:-32}
RATE=${RATE:-2000}
PATH_QUOTE=/quote/ACME

for tool in wrk oha; do
    command -v "$tool" >/dev/null || { echo "loadgen.sh: $tool is missing (wrk: apt-get install wrk; oha: cargo install oha)" >&2; exit 2; }
done

echo "== building the http_service and load examples (release)"
cargo build --release --example http_service --example load ${CARGO_JOBS:+-j "$CARGO_JOBS"}
DIR="${CARGO_TARGET_DIR:-target}/release/examples"

WORK=$(mktemp -d)
SERVER=""
cleanup() {
    [[ -n $SERVER ]] && kill "$SERVER" 2>/dev/null || true
    wait 2>/dev/null || true
    rm -rf "$WORK"
}
trap cleanup EXIT INT TERM

"$DIR/http_service" --bare --listen 127.0.0.1:0 --provider-latency 0ms --budget-checkpoint "$WORK/budget-checkpoint.json" >"$WORK/server.out" 2>"$WORK/server.err" &
SERVER=$!
ADDR=""
for _ in $(seq 1 100); do
    ADDR=$(sed -n 's|^listening on http://||p' "$WORK/server.out")
    [[ -n $ADDR ]] && break
    kill -0 "$SERVER" 2>/dev/null || { cat "$WORK/server.err" >&2; exit 1; }
    sleep 0.1
done
[[ -n $ADDR ]] || { echo "loadgen.sh: the server did not print its address" >&2; exit 1; }
URL="http://$ADDR$PATH_QUOTE"
echo "server: $URL (http_service --bare, provider latency 0)"
echo "load average before: $(cut -d' ' -f1-3 /proc/loadavg)"

# Each closed-loop run appends requests/s to $WORK/<generator>.rps.
closed_wrk() {
    wrk -t2 -c"$CONNECTIONS" -d"${DURATION}s" "$URL" | awk '/^Requests\/sec:/ {print $2}' >>"$WORK/wrk.rps"
}
closed_oha() {
    oha -c "$CONNECTIONS" -z "${DURATION}s" --no-tui --output-format json "$URL" |
        python3 -c 'import json,sys; print(json.load(sys.stdin)["summary"]["requestsPerSec"])' >>"$WORK/oha.rps"
}
closed_load() {
    "$DIR/load" --url "$URL" --method GET --clients "$CONNECTIONS" --duration "${DURATION}s" --json 2>/dev/null |
        python3 -c 'import json,sys; print(json.load(sys.stdin)["throughput_rps"])' >>"$WORK/load.rps"
}
# Each open-loop run appends "p50 p99" in milliseconds to $WORK/<generator>.open.
open_oha() {
    oha -c "$CONNECTIONS" -q "$RATE" --latency-correction -z "${DURATION}s" --no-tui --output-format json "$URL" |
        python3 -c 'import json,sys; p=json.load(sys.stdin)["latencyPercentiles"]; print(p["p50"]*1e3, p["p99"]*1e3)' \
            >>"$WORK/oha.open"
}
open_load() {
    "$DIR/load" --url "$URL" --method GET --rate "$RATE" --duration "${DURATION}s" --json 2>/dev/null |
        python3 -c 'import json,sys; l=json.load(sys.stdin)["latency_ms"]; print(l["p50"], l["p99"])' >>"$WORK/load.open"
}

GENERATORS=(wrk oha load)
for round in $(seq 1 "$ROUNDS"); do
    for i in 0 1 2; do
        g=${GENERATORS[$(((round - 1 + i) % 3))]}
        "closed_$g"
        echo "round $round, closed loop, $g: $(tail -1 "$WORK/$g.rps") req/s"
    done
    for g in oha load; do
        "open_$g"
        echo "round $round, open loop at $RATE/s, $g: p50 p99 (ms) $(tail -1 "$WORK/$g.open")"
    done
done
echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)"

python3 - "$WORK" "$CONNECTIONS" "$RATE" <<'EOF'
import statistics, sys
work, connections, rate = sys.argv[1], sys.argv[2], sys.argv[3]
rps = {g: statistics.median(float(x) for x in open(f"{work}/{g}.rps")) for g in ("wrk", "oha", "load")}
fastest = max(rps.values())
print(f"\nclosed loop, {connections} connections, median of the rounds")
print("| generator | req/s | share of the fastest |")
print("|---|---:|---:|")
for g in ("wrk", "oha", "load"):
    print(f"| {g} | {rps[g]:,.0f} | {rps[g] / fastest:.1%} |")
print(f"\nopen loop, {rate} requests/s, latency from the intended send time, median of the rounds")
print("| generator | p50 ms | p99 ms |")
print("|---|---:|---:|")
for g in ("oha", "load"):
    rows = [tuple(map(float, line.split())) for line in open(f"{work}/{g}.open")]
    print(f"| {g} | {statistics.median(r[0] for r in rows):.3f} | {statistics.median(r[1] for r in rows):.3f} |")
EOF
