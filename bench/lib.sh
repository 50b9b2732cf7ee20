# Helpers shared by run-comparison.sh and run-sdk-comparison.sh (sourced, not run): free ports,
# process CPU and peak RSS from /proc, starting-up and stopping servers. They use the caller's
# log, CLK_TCK, TEMPORAL_BIN, READY_TIMEOUT and STOP_TIMEOUT.

free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'
}

# CPU seconds (user+sys) of a live process, from /proc/<pid>/stat (fields after the ")" of comm).
proc_cpu() {
    local stat
    stat="$(cat "/proc/$1/stat" 2>/dev/null)" || { echo 0; return; }
    stat="${stat##*) }"
    awk -v tck="$CLK_TCK" '{ printf "%.3f\n", ($12 + $13) / tck }' <<<"$stat"
}
# User and sys CPU seconds of a live process, "user sys".
proc_cpu_us() {
    local stat
    stat="$(cat "/proc/$1/stat" 2>/dev/null)" || { echo "0 0"; return; }
    stat="${stat##*) }"
    awk -v tck="$CLK_TCK" '{ printf "%.3f %.3f\n", $12 / tck, $13 / tck }' <<<"$stat"
}
proc_rss_mb() { awk '/^VmHWM:/ { printf "%.0f\n", $2 / 1024 }' "/proc/$1/status" 2>/dev/null || echo 0; }

SERVER_PID=""
stop_server() {
    local pid="$SERVER_PID"
    [[ -z "$pid" ]] && return
    SERVER_PID=""
    kill -0 "$pid" 2>/dev/null || return
    kill -INT "$pid" 2>/dev/null
    local deadline=$((SECONDS + STOP_TIMEOUT))
    while kill -0 "$pid" 2>/dev/null && ((SECONDS < deadline)); do sleep 0.2; done
    if kill -0 "$pid" 2>/dev/null; then
        log "server $pid ignored SIGINT for ${STOP_TIMEOUT}s: SIGTERM"
        kill -TERM "$pid" 2>/dev/null
        deadline=$((SECONDS + 5))
        while kill -0 "$pid" 2>/dev/null && ((SECONDS < deadline)); do sleep 0.2; done
        kill -0 "$pid" 2>/dev/null && { log "SIGKILL $pid"; kill -KILL "$pid" 2>/dev/null; }
    fi
    wait "$pid" 2>/dev/null
}
trap 'stop_server' EXIT
trap 'log interrupted; exit 130' INT TERM

wait_ready() { # port logfile
    local port="$1" deadline=$((SECONDS + READY_TIMEOUT))
    while ((SECONDS < deadline)); do
        kill -0 "$SERVER_PID" 2>/dev/null || { log "server exited early; log:"; tail -20 "$2" >&2; return 1; }
        if timeout 1 bash -c "exec 3<>/dev/tcp/127.0.0.1/$port" 2>/dev/null; then
            # The port is open; if the temporal CLI is at hand, also wait until the default
            # namespace answers (the dev server opens the port before it is ready).
            if [[ -z "$TEMPORAL_BIN" ]] || timeout 5 "$TEMPORAL_BIN" operator namespace describe \
                    -n default --address "127.0.0.1:$port" >/dev/null 2>&1; then
                return 0
            fi
        fi
        sleep 0.3
    done
    log "server not ready on port $port after ${READY_TIMEOUT}s"
    return 1
}
