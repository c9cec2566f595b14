#!/usr/bin/env bash
# End to end over loopback: the `http_service` example bare (no Brownout layer) beside the same service with every
# Brownout layer (cost meter, fallback, circuit breaker, HTTP fault layer) armed but not firing, driven by wrk.
# Two armed sides: `armed` meters each request's CPU as CostLayer does by default (the thread CPU clock, read
# about once a millisecond per worker and apportioned over the polls by their TSC time), `armed-wall` with the
# request's wall time (`--cpu-clock wall`: an estimate that reads no CPU clock).
#
#   bash benches/e2e.sh                 # 3 rounds of 10 s per side, wrk -t2 -c32
#   ROUNDS=5 DURATION=20s bash benches/e2e.sh
#   PIN=1 ROUNDS=5 bash benches/e2e.sh  # each server on the last core with one worker, wrk on the others
#   BIN=path/to/http_service bash benches/e2e.sh   # another build (an earlier commit's), not built here
#
# Both servers run with `--provider-latency 0ms` (the simulated provider answers at once; with its default 1 ms
# sleep the sleep, not the service, is what wrk would measure) and `--rules configs/chaos/armed-not-firing.yaml`
# (one rule on the provider's route, random 0.001; the bare server loads it but never reads it). The rounds
# rotate which side goes first; the script prints each run, the medians, the throughput ratio of each armed side
# to bare and the p99 of each side. wrk and the servers share the machine's cores: on a small machine the figures are a
# ratio under the same load, not the service's capacity. Needs wrk (Debian: `apt-get install wrk`).
# The servers run at the default log level (INFO unless RUST_LOG says otherwise), as a user runs them.
#
# Unpinned (the default), wrk and the servers share every core: a server that spends more CPU per request is also
# preempted by wrk more often per request, and the kernel's context switches count in its CPU, so its extra cost
# shows amplified. With PIN=1 (needs taskset and at least 2 cores) each server runs on the last core with one tokio
# worker (TOKIO_WORKER_THREADS=1) and wrk on the other cores: the server's core is its own, its throughput is what
# that core serves, and its CPU per request is the service's own cost.
set -euo pipefail
cd "$(dirname "$0")/.."

ROUNDS=${ROUNDS:-3}
DURATION=${DURATION:-10s}
WRK_THREADS=${WRK_THREADS:-2}
WRK_CONNECTIONS=${WRK_CONNECTIONS:-32}
RULES=configs/chaos/armed-not-firing.yaml
PATH_QUOTE=/quote/ACME

command -v wrk >/dev/null || { echo "e2e.sh: wrk is missing (Debian: apt-get install wrk)" >&2; exit 2; }

SERVER_PIN=()
WRK_PIN=()
if [[ ${PIN:-0} == 1 ]]; then
    command -v taskset >/dev/null || { echo "e2e.sh: PIN=1 needs taskset (Debian: util-linux)" >&2; exit 2; }
    CORES=$(nproc)
    ((CORES >= 2)) || { echo "e2e.sh: PIN=1 needs at least 2 cores" >&2; exit 2; }
    SERVER_PIN=(taskset -c $((CORES - 1)))
    WRK_PIN=(taskset -c "0-$((CORES - 2))")
    WRK_THREADS=${WRK_THREADS_PINNED:-$((CORES - 1))}
    export TOKIO_WORKER_THREADS=1
fi

if [[ -n ${BIN:-} ]]; then
    echo "== serving with $BIN (BIN set: not built here)"
else
    echo "== building the http_service example (release)"
    cargo build --release --example http_service ${CARGO_JOBS:+-j "$CARGO_JOBS"}
    BIN="${CARGO_TARGET_DIR:-target}/release/examples/http_service"
fi

WORK=$(mktemp -d)
PIDS=()
cleanup() {
    for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
    wait 2>/dev/null || true
    rm -rf "$WORK"
}
trap cleanup EXIT INT TERM

# start NAME ARGS...: starts a server on a free port, waits for its `listening on` line, sets ADDR_<NAME>.
start() {
    local name=$1
    shift
    # Each server keeps its budget checkpoint in the scratch directory: not in the checkout, not shared.
    "${SERVER_PIN[@]}" "$BIN" --listen 127.0.0.1:0 --rules "$RULES" --provider-latency 0ms \
        --budget-checkpoint "$WORK/$name-budget-checkpoint.json" "$@" \
        >"$WORK/$name.out" 2>"$WORK/$name.err" &
    PIDS+=($!)
    local pid=$! addr=""
    for _ in $(seq 1 100); do
        addr=$(sed -n 's|^listening on http://||p' "$WORK/$name.out")
        [[ -n $addr ]] && break
        kill -0 "$pid" 2>/dev/null || { cat "$WORK/$name.err" >&2; echo "e2e.sh: $name exited" >&2; exit 1; }
        sleep 0.1
    done
    [[ -n $addr ]] || { echo "e2e.sh: $name did not print its address within 10 s" >&2; exit 1; }
    printf -v "ADDR_${name//-/_}" '%s' "$addr"
    printf -v "PID_${name//-/_}" '%s' "$pid"
    echo "$name: http://$addr (pid $pid)"
}

# micros VALUE: wrk's latency (e.g. 312.45us, 1.20ms, 1.01s) in microseconds.
micros() {
    awk -v v="$1" 'BEGIN {
        n = v + 0; u = v; sub(/^[0-9.]+/, "", u)
        if (u == "us") f = 1; else if (u == "ms") f = 1000; else if (u == "s") f = 1000000; else f = 0.001
        printf "%.1f", n * f }'
}

# cpu_ticks PID: the process's user + system CPU time so far, in clock ticks (/proc/PID/stat fields 14 and 15).
cpu_ticks() { awk '{sub(/^.*\) /, ""); print $12 + $13}' "/proc/$1/stat"; }

# switches PID: the context switches of the process's threads so far (voluntary and not, /proc/PID/task/*/status).
switches() { cat /proc/"$1"/task/*/status 2>/dev/null | awk '/^(non)?voluntary_ctxt_switches:/ {n += $2} END {print n}'; }

# run NAME: one wrk run against NAME; appends requests/s, p99 (us) and the server's CPU per request (us) to
# $WORK/NAME.rps, NAME.p99 and NAME.cpu. CPU per request is the steadier figure on a shared machine: it does
# not depend on how much of the cores wrk and other work leave to the server.
run() {
    local name=$1 addr_var="ADDR_${1//-/_}" pid_var="PID_${1//-/_}"
    local out="$WORK/wrk.txt" before after
    before=$(cpu_ticks "${!pid_var}")
    switched=$(switches "${!pid_var}")
    "${WRK_PIN[@]}" wrk -t"$WRK_THREADS" -c"$WRK_CONNECTIONS" -d"$DURATION" --latency "http://${!addr_var}$PATH_QUOTE" >"$out"
    after=$(cpu_ticks "${!pid_var}")
    switched=$(($(switches "${!pid_var}") - switched))
    local rps p99 errors requests cpu cs
    rps=$(awk '/^Requests\/sec:/ {print $2}' "$out")
    p99=$(micros "$(awk '$1 == "99%" {print $2}' "$out")")
    errors=$(awk '/Non-2xx or 3xx responses:/ {print $NF}' "$out")
    requests=$(awk '/requests in/ {print $1}' "$out")
    cpu=$(awk -v t=$((after - before)) -v hz="$(getconf CLK_TCK)" -v n="$requests" 'BEGIN {printf "%.2f", t / hz * 1e6 / n}')
    cs=$(awk -v s="$switched" -v n="$requests" 'BEGIN {printf "%.3f", s / n}')
    echo "$rps" >>"$WORK/$name.rps"
    echo "$cs" >>"$WORK/$name.cs"
    echo "$p99" >>"$WORK/$name.p99"
    echo "$cpu" >>"$WORK/$name.cpu"
    printf '  %-10s %10.0f req/s   p99 %8.1f us   server CPU %6.2f us/req   switches %5.3f/req   non-2xx %s\n' \
        "$name" "$rps" "$p99" "$cpu" "$cs" "${errors:-0}"
}

median() { sort -g "$1" | awk '{a[NR] = $1} END {print (NR % 2) ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2}'; }

SIDES=(bare armed armed-wall)
start bare --bare
start armed
start armed-wall --cpu-clock wall
echo "== warm-up (2 s each)"
for name in "${SIDES[@]}"; do
    addr_var="ADDR_${name//-/_}"
    "${WRK_PIN[@]}" wrk -t"$WRK_THREADS" -c"$WRK_CONNECTIONS" -d2s "http://${!addr_var}$PATH_QUOTE" >/dev/null
done

echo "== $ROUNDS rounds${PIN:+ (PIN=$PIN: servers on core ${SERVER_PIN[2]:-any}, one worker; wrk on ${WRK_PIN[2]:-any})}, wrk -t$WRK_THREADS -c$WRK_CONNECTIONS -d$DURATION --latency $PATH_QUOTE, load: $(cut -d' ' -f1-3 /proc/loadavg)"
for round in $(seq 1 "$ROUNDS"); do
    echo "round $round"
    # Rotate the order, so no side always runs first (or last) in a round.
    for i in 0 1 2; do run "${SIDES[$(((round - 1 + i) % 3))]}"; done
done

if [[ ${PIN:-0} == 1 ]]; then SHARING="each server on its own core"; else SHARING="cores shared by wrk and the servers"; fi
echo "== medians of $ROUNDS rounds (load after: $(cut -d' ' -f1-3 /proc/loadavg), $(nproc) cores, $SHARING)"
bare_rps=$(median "$WORK/bare.rps")
bare_p99=$(median "$WORK/bare.p99")
bare_cpu=$(median "$WORK/bare.cpu")
for name in "${SIDES[@]}"; do
    rps=$(median "$WORK/$name.rps")
    p99=$(median "$WORK/$name.p99")
    cpu=$(median "$WORK/$name.cpu")
    cs=$(median "$WORK/$name.cs")
    printf '  %-10s %10.0f req/s   p99 %8.1f us   CPU %6.2f us/req   switches %5.3f/req' "$name" "$rps" "$p99" "$cpu" "$cs"
    if [[ $name != bare ]]; then
        awk -v a="$rps" -v b="$bare_rps" -v pa="$p99" -v pb="$bare_p99" -v ca="$cpu" -v cb="$bare_cpu" 'BEGIN {
            printf "   throughput %5.1f%% of bare (target >= 95%%), p99 %+.1f us, CPU/req %.2fx bare",
                100 * a / b, pa - pb, ca / cb }'
    fi
    echo
done
