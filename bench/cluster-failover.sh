#!/usr/bin/env bash
# Failover and re-sharding times of a three-process Perdure cluster on PostgreSQL.
#   scripts/with-postgres bench/cluster-failover.sh [PERDURE_BIN]   (default target/release/perdure)
# env: LEASE=5s (the processes' --lease), ROUNDS=3
# 1. Failover: SIGKILL the leader, then time until the two others own every shard between them
#    (numshards_gauge on /metrics) and answer an RPC that needs an engine
#    (DescribeWorkflowExecution of a workflow started before the kill).
# 2. Re-sharding: start a fourth process with --shards 32, then time until every process runs
#    with 32 shards (perdure_cluster_shards on /metrics) and a surviving process answers again.
set -uo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/.." && pwd)"
BIN="${1:-$repo/target/release/perdure}"
LEASE="${LEASE:-5s}"
ROUNDS="${ROUNDS:-3}"
: "${PERDURE_TEST_POSTGRES_URL:?run under scripts/with-postgres}"
out="$(mktemp -d /tmp/perdure-failover.XXXXXX)"
port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
now() { date +%s.%N; }
declare -A PID PORT MPORT
start() { # name url [extra...]
    local n="$1" url="$2"; shift 2
    PORT[$n]="$(port)"; MPORT[$n]="$(port)"
    "$BIN" server start --headless --node-name "$n" --persistence-url "$url" --lease "$LEASE" \
        --port "${PORT[$n]}" --metrics-port "${MPORT[$n]}" --log-level warn "$@" \
        >"$out/$n.log" 2>&1 </dev/null &
    PID[$n]=$!
    disown "${PID[$n]}" 2>/dev/null || true
}
answers() { "$BIN" --address "127.0.0.1:${PORT[$1]}" workflow describe -w probe >/dev/null 2>&1; }
shards() { curl -s "127.0.0.1:${MPORT[$1]}/metrics" | awk '/^perdure_cluster_shards/ { print $2 }'; }
owned() { curl -s "127.0.0.1:${MPORT[$1]}/metrics" | awk '/^numshards_gauge/ { n = $2 } END { print n + 0 }'; }
cleanup() { for p in "${PID[@]}"; do kill -9 "$p" 2>/dev/null; wait "$p" 2>/dev/null; done; }
trap cleanup EXIT
for ((r = 1; r <= ROUNDS; r++)); do
    url="$PERDURE_TEST_POSTGRES_URL?schema=failover_${r}_$$"
    PID=(); PORT=(); MPORT=()
    start a "$url"; until answers a || "$BIN" --address "127.0.0.1:${PORT[a]}" workflow start \
        --type t --task-queue q -w probe >/dev/null 2>&1; do sleep 0.1; done
    start b "$url"; start c "$url"
    until answers b && answers c; do sleep 0.1; done
    until (( $(owned a) + $(owned b) + $(owned c) == 16 )); do sleep 0.05; done
    t0="$(now)"; kill -9 "${PID[a]}"
    until (( $(owned b) + $(owned c) == 16 )) && answers b; do sleep 0.05; done
    t1="$(now)"
    start d "$url" --shards 32
    t2="$(now)"
    until [[ "$(shards b)" == 32 && "$(shards c)" == 32 && "$(shards d)" == 32 ]]; do sleep 0.05; done
    until answers b; do sleep 0.05; done
    t3="$(now)"
    awk -v a="$t0" -v b="$t1" -v c="$t2" -v d="$t3" -v l="$LEASE" -v r="$r" 'BEGIN {
        printf "round %d (lease %s): failover after SIGKILL %.2f s; shard count 16 -> 32 on a live cluster %.2f s\n", r, l, b - a, d - c }'
    cleanup
    sleep 1
done
echo "logs: $out"
