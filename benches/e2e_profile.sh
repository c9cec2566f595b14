#!/usr/bin/env bash
# Where the end-to-end gap goes, in time: samples the `http_service` example's CPU with perf (software clock,
# no hardware counters needed) while wrk drives it, bare and armed (`configs/chaos/armed-not-firing.yaml`, every
# layer on, as `benches/e2e.sh` runs it), and prints each function's time per request, armed minus bare.
# Time, not instructions: a cold cache line or an atomic read-modify-write shows here at its real price, where
# callgrind counts it as one instruction.
#
#   bash benches/e2e_profile.sh                 # 8 s of samples per side after a warm-up
#   TOP=60 bash benches/e2e_profile.sh          # more rows
#   BIN=path/to/http_service bash benches/e2e_profile.sh   # another build, not built here
#   SIDES="bare armed armed-wall" ...           # which sides (armed-wall: --cpu-clock wall)
#
# Each server runs on the last core with one tokio worker and wrk -t1 -c32 on the others (as `PIN=1` in
# e2e.sh). A function's time per request is its share of the server's samples times the server's time per
# request (1 / its throughput, the core being saturated). Samples land where instructions retire slowly, so
# this is the place to look for cache misses and atomics; the sampling rate gives each figure a few percent of
# noise, and kernel rows move with how often wrk sleeps (a slower server wakes a sleeping wrk more often).
# Needs perf (Debian: linux-perf) with kernel.perf_event_paranoid <= 2, taskset and wrk.
set -euo pipefail
cd "$(dirname "$0")/.."

TOP=${TOP:-40}
SAMPLE_SECONDS=${SAMPLE_SECONDS:-8}
read -r -a SIDES <<<"${SIDES:-bare armed}"
for tool in perf wrk taskset; do
    command -v "$tool" >/dev/null || { echo "e2e_profile.sh: $tool is missing" >&2; exit 2; }
done
CORES=$(nproc)
((CORES >= 2)) || { echo "e2e_profile.sh: needs at least 2 cores" >&2; exit 2; }

if [[ -z ${BIN:-} ]]; then
    echo "== building the http_service example (release)"
    cargo build --release --example http_service
    BIN="${CARGO_TARGET_DIR:-target}/release/examples/http_service"
fi

WORK=$(mktemp -d)
SERVER=""
cleanup() {
    [[ -n $SERVER ]] && kill "$SERVER" 2>/dev/null || true
    wait 2>/dev/null || true
    rm -rf "$WORK"
}
trap cleanup EXIT INT TERM

# profile NAME ARGS...: serves with ARGS, drives it with wrk, samples it; writes NAME.rps and NAME.top.
profile() {
    local name=$1 addr=""
    shift
    TOKIO_WORKER_THREADS=1 taskset -c $((CORES - 1)) "$BIN" --listen 127.0.0.1:0 \
        --rules configs/chaos/armed-not-firing.yaml --provider-latency 0ms \
        --budget-checkpoint "$WORK/$name-checkpoint.json" "$@" >"$WORK/$name.out" 2>"$WORK/$name.err" &
    SERVER=$!
    for _ in $(seq 1 100); do
        addr=$(sed -n 's|^listening on http://||p' "$WORK/$name.out")
        [[ -n $addr ]] && break
        sleep 0.1
    done
    [[ -n $addr ]] || { cat "$WORK/$name.err" >&2; echo "e2e_profile.sh: $name did not start" >&2; exit 1; }
    local wrk=(taskset -c "0-$((CORES - 2))" wrk -t1 -c32)
    "${wrk[@]}" -d3s "http://$addr/quote/ACME" >/dev/null
    "${wrk[@]}" -d$((SAMPLE_SECONDS + 4))s "http://$addr/quote/ACME" >"$WORK/$name.wrk" &
    local driver=$!
    sleep 2
    perf record -q -e cpu-clock -F 4000 -p "$SERVER" -o "$WORK/$name.data" -- sleep "$SAMPLE_SECONDS" >/dev/null 2>&1
    wait "$driver"
    kill "$SERVER"
    wait "$SERVER" 2>/dev/null || true
    SERVER=""
    awk '/^Requests\/sec:/ {print $2}' "$WORK/$name.wrk" >"$WORK/$name.rps"
    perf report -i "$WORK/$name.data" --no-children --sort symbol --stdio -g none 2>/dev/null |
        awk '/^ +[0-9.]+%/ {pct = $1; sub(/%/, "", pct); $1 = ""; sub(/^ +/, ""); sub(/ +- +- *$/, ""); print pct "\t" $0}' \
            >"$WORK/$name.top"
    printf '%-10s %8.0f req/s, %6.0f ns a request\n' "$name" "$(cat "$WORK/$name.rps")" \
        "$(awk '{printf "%.0f", 1e9 / $1}' "$WORK/$name.rps")"
}

echo "== $(nproc) cores, load: $(cut -d' ' -f1-3 /proc/loadavg)"
for side in "${SIDES[@]}"; do
    case $side in
        bare) profile bare --bare ;;
        armed) profile armed ;;
        armed-wall) profile armed-wall --cpu-clock wall ;;
        *) echo "e2e_profile.sh: unknown side $side" >&2; exit 2 ;;
    esac
done

for side in "${SIDES[@]}"; do
    [[ $side == bare ]] && continue
    echo "== $side minus bare, ns a request (kernel rows marked [k])"
    python3 - "$WORK/bare" "$WORK/$side" "$TOP" <<'EOF'
import sys
def load(prefix):
    ns = 1e9 / float(open(prefix + ".rps").read())
    rows = {}
    for line in open(prefix + ".top"):
        pct, name = line.rstrip("\n").split("\t", 1)
        rows[name[:150]] = rows.get(name[:150], 0.0) + float(pct) * ns / 100
    return ns, rows
(bare_ns, bare), (side_ns, side), top = load(sys.argv[1]), load(sys.argv[2]), int(sys.argv[3])
diff = {k: side.get(k, 0.0) - bare.get(k, 0.0) for k in set(bare) | set(side)}
user = sum(v for k, v in diff.items() if not k.startswith("[k]"))
print(f"total {side_ns - bare_ns:+.0f} ns: user space {user:+.0f}, kernel {side_ns - bare_ns - user:+.0f}")
for name, v in sorted(diff.items(), key=lambda kv: -abs(kv[1]))[:top]:
    print(f"{v:+8.1f}  {side.get(name, 0.0):7.1f}  {name}")
EOF
done
