#!/usr/bin/env bash
# Memory with many open workflows, and the time to the first answered RPC after a restart.
#
# usage: bench/open-workflows.sh [PERDURE_BIN]     (default /work/main/target/release/perdure)
#
# For each server in $SERVERS it starts a fresh server, then for each size in $SIZES (ascending)
# it starts workflows until that many are open (perdure-open-workflows start: each waits on a
# one-day start delay, a server timer, so no worker is needed), and records:
#   - starts/s and start latency of the Rust client (perdure-sdk, concurrency $CONCURRENCY),
#   - the server's CPU seconds per 1,000 starts,
#   - the server's RSS with that many open workflows (VmRSS, after $SETTLE s),
#   - then it restarts the server on the same database (SIGTERM, start again) and records the
#     time from starting the process to the first answered DescribeWorkflowExecution of one of
#     the open workflows, the time until Perdure has re-armed the runs due soon (its log line), and
#     the RSS after that.
# Servers: perdure (start-dev, SQLite file), temporal-file (dev server, SQLite file),
# temporal-mem (dev server in memory: no restart, its data would be gone).
# Env: SERVERS (default "perdure"), SIZES (default "10000 100000 1000000"), CONCURRENCY (200),
#      SETTLE (3), RUN_CACHE_SIZE (Perdure's --run-cache-size, default its own), TEMPORAL_BIN,
#      OUT_DIR, READY_TIMEOUT (120), STOP_TIMEOUT (60).
set -euo pipefail
HERE="$(cd "$(dirname "$0")" && pwd)"
PERDURE_BIN="${1:-/work/main/target/release/perdure}"
SERVERS="${SERVERS:-perdure}"
SIZES="${SIZES:-10000 100000 1000000}"
CONCURRENCY="${CONCURRENCY:-200}"
SETTLE="${SETTLE:-3}"
READY_TIMEOUT="${READY_TIMEOUT:-120}"
STOP_TIMEOUT="${STOP_TIMEOUT:-60}"
TEMPORAL_BIN="${TEMPORAL_BIN:-}"
OUT_DIR="${OUT_DIR:-$(mktemp -d /tmp/perdure-open.XXXXXX)}"
CLK_TCK="$(getconf CLK_TCK)"
TOOL="$HERE/target/release/perdure-open-workflows"
log() { echo "[open-workflows] $*" >&2; }
# shellcheck source=bench/lib.sh
source "$HERE/lib.sh"

if [[ ! -x "$TOOL" ]]; then
    log "building $TOOL"
    (cd "$HERE" && CARGO_TARGET_DIR="$HERE/target" cargo build --release --bin perdure-open-workflows)
fi
rss_now_mb() { awk '/^VmRSS:/ { printf "%.0f\n", $2 / 1024 }' "/proc/$1/status" 2>/dev/null || echo 0; }
now_ms() { date +%s%3N; }

start_server() { # name port db logfile
    local name="$1" port="$2" db="$3" logf="$4"
    case "$name" in
        perdure)
            local extra=()
            [[ -n "${RUN_CACHE_SIZE:-}" ]] && extra=(--run-cache-size "$RUN_CACHE_SIZE")
            "$PERDURE_BIN" server start-dev --headless --ip 127.0.0.1 --port "$port" \
                --db-filename "$db" "${extra[@]}" >>"$logf" 2>&1 &
            ;;
        temporal-file)
            "$TEMPORAL_BIN" server start-dev --headless --ip 127.0.0.1 --port "$port" \
                --http-port "$(free_port)" --metrics-port "$(free_port)" \
                --db-filename "$db" --log-level error >>"$logf" 2>&1 &
            ;;
        temporal-mem)
            "$TEMPORAL_BIN" server start-dev --headless --ip 127.0.0.1 --port "$port" \
                --http-port "$(free_port)" --metrics-port "$(free_port)" \
                --log-level error >>"$logf" 2>&1 &
            ;;
        *) log "unknown server $name"; return 1 ;;
    esac
    SERVER_PID=$!
}

# Waits until Perdure logs that its start-up pass re-armed the runs due soon; prints the elapsed ms it logged.
wait_rearmed() { # logfile count-before
    local logf="$1" before="$2" deadline=$((SECONDS + 1800))
    while ((SECONDS < deadline)); do
        local n
        n="$(grep -c 're-armed the workflow runs due' "$logf" || true)"
        if ((n > before)); then
            grep 're-armed the workflow runs due' "$logf" | tail -1 | sed -n 's/.*elapsed_ms=\([0-9]*\).*/\1/p'
            return 0
        fi
        sleep 0.2
    done
    echo null
}

mkdir -p "$OUT_DIR"
RESULTS="$OUT_DIR/results.jsonl"
: >"$RESULTS"
for server in $SERVERS; do
    port="$(free_port)"
    db="$OUT_DIR/$server.db"
    logf="$OUT_DIR/$server.log"
    rm -f "$db"
    start_server "$server" "$port" "$db" "$logf"
    wait_ready "$port" "$logf"
    open=0
    for size in $SIZES; do
        more=$((size - open))
        log "$server: starting $more workflows ($open -> $size)"
        cpu0="$(proc_cpu "$SERVER_PID")"
        starts="$("$TOOL" start --address "127.0.0.1:$port" --workflows "$more" --first "$open" \
            --concurrency "$CONCURRENCY" | tail -1)"
        cpu1="$(proc_cpu "$SERVER_PID")"
        open=$size
        sleep "$SETTLE"
        rss="$(rss_now_mb "$SERVER_PID")"
        db_mb="$( (du -cm "$db"* 2>/dev/null || true) | tail -1 | cut -f1)"
        [[ -n "$db_mb" ]] || db_mb=0
        restart_ms="null" rearm_ms="null" rss_after="null"
        if [[ "$server" != temporal-mem ]]; then
            before="$(grep -c 're-armed the workflow runs due' "$logf" || true)"
            stop_server
            t0="$(now_ms)"
            start_server "$server" "$port" "$db" "$logf"
            probe="$("$TOOL" probe --address "127.0.0.1:$port" --workflow-id "open-$((size - 1))" \
                --timeout-secs "$READY_TIMEOUT" | tail -1)"
            restart_ms=$(( $(now_ms) - t0 ))
            if [[ "$server" == perdure ]]; then
                rearm_ms="$(wait_rearmed "$logf" "$before")"
            else
                sleep 10
            fi
            sleep "$SETTLE"
            rss_after="$(rss_now_mb "$SERVER_PID")"
            log "$server: first answer after restart $probe"
        fi
        line="$(python3 - "$starts" <<EOF
import json, sys
null = None
s = json.loads(sys.argv[1])
print(json.dumps({
    "server": "$server", "open": $size, **s,
    "server_cpu_ms_per_1000_starts": round(($cpu1 - $cpu0) * 1000 / max($more, 1) * 1000, 1),
    "rss_mb": $rss, "db_mb": $db_mb,
    "restart_first_answer_ms": $restart_ms, "rearm_all_ms": ${rearm_ms:-null},
    "rss_after_restart_mb": $rss_after,
}))
EOF
)"
        echo "$line" | tee -a "$RESULTS"
    done
    stop_server
    rm -f "$db" "$db-wal" "$db-shm"
done

python3 - "$RESULTS" <<'EOF'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
cols = ["server", "open", "starts_per_sec", "start_p50_ms", "start_p99_ms",
        "server_cpu_ms_per_1000_starts", "rss_mb", "db_mb", "restart_first_answer_ms",
        "rearm_all_ms", "rss_after_restart_mb"]
print(" | ".join(cols))
for r in rows:
    print(" | ".join(str(r.get(c)) for c in cols))
EOF
log "results in $RESULTS"
