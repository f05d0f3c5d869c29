#!/usr/bin/env bash
# Runs Switchboard's benchmark scenarios on this machine, from scratch, and writes the JSON
# reports to loadtest/results/RUN/.
#
#   loadtest/run-bench.sh [quick|full] [scenario ...]
#
# Scenarios: redis idle chat ramp storm (default: all). `quick` is small and short (a smoke
# run, ~2 minutes); `full` uses the sizes that docs/benchmarks.md reports (~10 minutes).
#
# What it does: builds the release binaries (skip with NO_BUILD=1), starts a throw-away
# redis-server on a free port (no persistence, stopped by its pid file at the end), two nodes
# (A and B) on free ports with a temporary SQLite store, creates one admin with the CLI and the
# load-test agents through the admin API, then runs the scenarios one after the other with
# visitors on node A and agents on node B. Every process it starts is stopped by its PID.
# The per-connection frame rate limit is lifted for the nodes
# (SWITCHBOARD__LIMITS__FRAMES_PER_SECOND / BURST_FRAMES = 100000): the load generator sends
# far more than a person types.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
MODE=${1:-quick}
shift || true
SCENARIOS=${*:-redis idle chat ramp storm}
RUN=${RUN_NAME:-$(date -u +%Y%m%dT%H%M%SZ)-$MODE}
OUT=$ROOT/loadtest/results/$RUN
WORK=$(mktemp -d /tmp/switchboard-bench.XXXXXX)
ENCODING=${ENCODING:-msgpack}
mkdir -p "$OUT"

case $MODE in
quick)
    AGENTS=50 MAX_CHATS=20 PAIRS=100 IDLE=2000 HOLD=3 DURATION=5 RAMP_START=2000 RAMP_STEP=3 STORM=500 ;;
full)
    AGENTS=500 MAX_CHATS=20 PAIRS=1000 IDLE=19000 HOLD=10 DURATION=10 RAMP_START=2000 RAMP_STEP=5 STORM=10000 ;;
*)
    echo "usage: $0 [quick|full] [redis idle chat ramp storm]" >&2
    exit 64 ;;
esac

PIDS=()
REDIS_PIDFILE=$WORK/redis.pid
cleanup() {
    for p in "${PIDS[@]:-}"; do
        [[ -n $p ]] && kill "$p" 2>/dev/null || true
    done
    for p in "${PIDS[@]:-}"; do
        [[ -n $p ]] && wait "$p" 2>/dev/null || true
    done
    if [[ -f $REDIS_PIDFILE ]]; then
        kill "$(cat "$REDIS_PIDFILE")" 2>/dev/null || true
    fi
    if [[ -n ${KEEP_WORK:-} ]]; then echo "work dir kept: $WORK" >&2; else rm -rf "$WORK"; fi
}
trap cleanup EXIT

free_port() {
    local p=$1
    while ss -Htln "sport = :$p" | grep -q .; do p=$((p + 1)); done
    echo "$p"
}

if [[ -z ${NO_BUILD:-} ]]; then
    cargo build --release --bin switchboard
    cargo build --release -p switchboard-loadtest
fi
SB=$ROOT/target/release/switchboard
LT=$ROOT/target/release/switchboard-loadtest

RP=$(free_port 17379)
redis-server --port "$RP" --bind 127.0.0.1 --save '' --appendonly no --daemonize yes \
    --pidfile "$REDIS_PIDFILE" --dir "$WORK" --logfile "$WORK/redis.log" --maxclients 10000
for _ in $(seq 50); do redis-cli -p "$RP" ping >/dev/null 2>&1 && break; sleep 0.1; done
REDIS_PID=$(cat "$REDIS_PIDFILE")
echo "redis-server $(redis-server --version | grep -o 'v=[0-9.]*') on port $RP, pid $REDIS_PID" >&2

export SWITCHBOARD__REDIS__URL=redis://127.0.0.1:$RP
export SWITCHBOARD__REDIS__KEY_PREFIX=bench
export SWITCHBOARD__STORE__URL="sqlite://$WORK/store.db?mode=rwc"
export SWITCHBOARD__AUTH__TOKEN_SECRET=bench-secret-0123456789-0123456789-abcdef
export SWITCHBOARD__LOG__LEVEL=warn
export SWITCHBOARD__LIMITS__FRAMES_PER_SECOND=100000
export SWITCHBOARD__LIMITS__BURST_FRAMES=100000

ADMIN_PW=bench-admin-password
"$SB" agent add --username lt-admin --password "$ADMIN_PW" --name "Bench admin" --role admin --queues general >/dev/null

start_node() { # name port
    SWITCHBOARD__SERVER__LISTEN=127.0.0.1:$2 SWITCHBOARD__SERVER__NODE_NAME=$1 "$SB" serve >"$WORK/$1.log" 2>&1 &
    PIDS+=($!)
    for _ in $(seq 100); do curl -fs "http://127.0.0.1:$2/healthz" >/dev/null 2>&1 && return 0; sleep 0.1; done
    echo "node $1 did not come up; log:" >&2
    cat "$WORK/$1.log" >&2
    exit 1
}
PA=$(free_port 18080)
start_node bench-a "$PA"
NODE_A=${PIDS[-1]}
PB=$(free_port $((PA + 1)))
start_node bench-b "$PB"
NODE_B=${PIDS[-1]}
TARGETS=http://127.0.0.1:$PA,http://127.0.0.1:$PB
COMMON=(--targets "$TARGETS" --node-pids "$NODE_A,$NODE_B" --redis-pid "$REDIS_PID" --encoding "$ENCODING")
echo "nodes: A pid $NODE_A port $PA, B pid $NODE_B port $PB; results in $OUT" >&2

"$LT" "${COMMON[@]}" --json "$OUT/agents.json" agents --admin-user lt-admin --admin-password "$ADMIN_PW" \
    --count "$AGENTS" --max-chats "$MAX_CHATS" --parallel 4 >/dev/null

{
    echo "mode=$MODE encoding=$ENCODING"
    echo "nproc=$(nproc)"
    grep -m1 'model name' /proc/cpuinfo
    grep MemTotal /proc/meminfo
    echo "open files: soft $(ulimit -Sn) hard $(ulimit -Hn)"
    redis-server --version
    git -C "$ROOT" rev-parse HEAD 2>/dev/null || true
} >"$OUT/machine.txt"

for s in $SCENARIOS; do
    echo "=== $s ===" >&2
    case $s in
    redis)
        # The per-message script as the node runs it (chat_common.lua + chat_send.lua), on one
        # chat whose meta says open; __rand_int__ gives each call a new client message id.
        SCRIPT=$(cat src/redis/lua/chat_common.lua src/redis/lua/chat_send.lua)
        redis-cli -p "$RP" HSET 'rb{c:x}:meta' state open visitor v1 agent a1 >/dev/null
        TEXT=$(head -c 250 /dev/zero | tr '\0' 'x')
        rb() { redis-benchmark "$@" 2>&1 | tr '\r' '\n' | grep -o '[0-9.]* requests per second.*' | tail -1; }
        SHA=$(redis-cli -p "$RP" SCRIPT LOAD "$SCRIPT")
        {
            for P in 1 16; do
                echo "chat_send.lua (HMGET + HGET + XADD + SPUBLISH + HSET), 50 clients, pipeline $P: $(rb -p "$RP" -n 200000 -c 50 -P "$P" -r 1000000000 \
                    EVALSHA "$SHA" 4 'rb{c:x}:log' 'rb{c:x}:meta' 'rb{c:x}:cmid' 'rb{c:x}' \
                    x visitor v1 Vera 'm__rand_int__' "$TEXT" 1700000000000 message '' '')"
                redis-cli -p "$RP" DEL 'rb{c:x}:log' 'rb{c:x}:cmid' >/dev/null
                echo "bare XADD + SPUBLISH script, 50 clients, pipeline $P: $(rb -p "$RP" -n 200000 -c 50 -P "$P" \
                    EVAL "redis.call('XADD', KEYS[1], '*', 't', ARGV[1]) return redis.call('SPUBLISH', KEYS[2], ARGV[1])" 2 'rb{c:y}:log' 'rb{c:y}' "$TEXT")"
                redis-cli -p "$RP" DEL 'rb{c:y}:log' >/dev/null
            done
        } | tee "$OUT/redis-benchmark.txt" >&2
        ;;
    idle)
        # All connections on node A, so its memory slope is measured at the largest count the
        # 20,000 open-file cap allows in one process.
        "$LT" --targets "http://127.0.0.1:$PA" --node-pids "$NODE_A" --redis-pid "$REDIS_PID" --encoding "$ENCODING" \
            --json "$OUT/idle.json" idle --connections "$IDLE" --hold-secs "$HOLD" --parallel 64
        ;;
    chat)
        for RATE in 1000 5000; do
            "$LT" "${COMMON[@]}" --json "$OUT/chat-$RATE.json" chat --agents "$AGENTS" --visitors "$PAIRS" \
                --rate "$RATE" --duration "$DURATION" --warmup 2 --setup-timeout-secs 30
        done
        ;;
    ramp)
        "$LT" "${COMMON[@]}" --json "$OUT/ramp.json" ramp --agents "$AGENTS" --visitors "$PAIRS" \
            --start-rate "$RAMP_START" --factor 1.25 --step-secs "$RAMP_STEP" --p99-bound-ms 50
        ;;
    storm)
        "$LT" "${COMMON[@]}" --json "$OUT/storm.json" storm --agents "$AGENTS" --visitors "$STORM" \
            --count "$STORM" --rate 1000 --warmup 3 --after 3 --connect-parallel 128
        ;;
    *) echo "unknown scenario $s" >&2; exit 64 ;;
    esac
done
for p in "$NODE_A" "$NODE_B"; do
    echo "node pid $p: VmHWM $(grep VmHWM /proc/$p/status | awk '{print $2, $3}')" >>"$OUT/machine.txt"
done
echo "results: $OUT" >&2
