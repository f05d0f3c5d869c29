#!/usr/bin/env bash
# Runs Switchboard's benchmark scenarios on this machine, from scratch, and writes the JSON
# reports to loadtest/results/RUN/.
#
#   loadtest/run-bench.sh [quick|full] [scenario ...]
#
# Scenarios: floor redis idle chat ramp storm (default; floor is the machine's own loopback
# round trip with no server, to tell a slow machine from a slow build), routing (request->offer at paced and burst
# arrivals), site (a website's load: browsing visitors, agents watching the site-visitors
# list, a few chats; only when named), wide (idle connections over several nodes and client processes, past one
# process's open-file cap; only when named) and flush (ended chats written to PostgreSQL;
# only when named). Where the CPU goes, next to the bare relay: loadtest/profile.sh. `quick`
# is small and short (a smoke run, ~2 minutes); `full` uses the sizes that
# docs/benchmarks.md reports (~10 minutes).
#
# Store: STORE=sqlite (default) or STORE=postgres for the whole run; it defaults to postgres
# when `flush` is among the scenarios. With postgres, scripts/services.sh provides the server
# (reused or started) and the run gets a database of its own (switchboard_bench_PID), dropped
# at the end.
#
# What it does: builds the release binaries (skip with NO_BUILD=1), starts a throw-away
# redis-server on a free port (no persistence, stopped by its pid file at the end), two nodes
# (A and B) on free ports with a temporary store (see Store above), creates one admin with the
# CLI and the load-test agents through the admin API, then runs the scenarios one after the
# other with visitors on node A and agents on node B. Every process it starts is stopped by its PID.
# The per-connection frame rate limit is lifted for the nodes
# (SWITCHBOARD__LIMITS__FRAMES_PER_SECOND / BURST_FRAMES = 100000): the load generator sends
# far more than a person types.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
MODE=${1:-quick}
shift || true
SCENARIOS=${*:-floor redis idle chat ramp storm}
RUN=${RUN_NAME:-$(date -u +%Y%m%dT%H%M%SZ)-$MODE}
OUT=$ROOT/loadtest/results/$RUN
WORK=$(mktemp -d /tmp/switchboard-bench.XXXXXX)
ENCODING=${ENCODING:-msgpack}
mkdir -p "$OUT"

case $MODE in
quick)
    AGENTS=50 MAX_CHATS=20 PAIRS=100 IDLE=2000 HOLD=3 DURATION=5 RAMP_START=2000 RAMP_STEP=3 STORM=500 FLUSH=1000 ROUTING=1000
    SITE=(--visitors 1000 --page-every 30 --watchers 20 --watcher-offset 25 --chats 20 --chat-agents 20 --chat-rate 20 --duration 20)
    WIDE_NODES=2 WIDE_EACH=1000 ;;
full)
    AGENTS=500 MAX_CHATS=20 PAIRS=1000 IDLE=19000 HOLD=10 DURATION=10 RAMP_START=2000 RAMP_STEP=5 STORM=10000 FLUSH=5000 ROUTING=10000
    # The sizes of the website target: 19,000 visitors, 200 watching agents, 500 chats at 100 msg/s.
    # Visitors arrive as fast as they connect (SITE_ARRIVALS per second to pace them): the
    # burst takes every watcher over its byte budget (`visitors_stale`), and each reads the list
    # again before the measured window.
    SITE=(--visitors "${SITE_VISITORS:-19000}" --page-every 30 --watchers "${SITE_WATCHERS:-200}" --watcher-offset 100
        --chats "${SITE_CHATS:-500}" --chat-agents 50 --chat-rate 100 --duration 60
        --arrivals-per-s "${SITE_ARRIVALS:-0}" --rows "${SITE_ROWS:-in_view}")
    WIDE_NODES=6 WIDE_EACH=17000 ;;
*)
    echo "usage: $0 [quick|full] [floor redis idle chat ramp storm routing site wide flush]" >&2
    exit 64 ;;
esac

# shellcheck source=loadtest/bench-lib.sh
source "$ROOT/loadtest/bench-lib.sh"
cleanup() {
    stop_started
    if [[ -n ${PG_DB:-} ]]; then
        psql -q "$PG_ADMIN_URL" -c "DROP DATABASE IF EXISTS $PG_DB WITH (FORCE)" >/dev/null 2>&1 ||
            echo "could not drop database $PG_DB" >&2
    fi
    if [[ -n ${KEEP_WORK:-} ]]; then echo "work dir kept: $WORK" >&2; else rm -rf "$WORK"; fi
}
trap cleanup EXIT

# SB_BIN / LT_BIN: other binaries (e.g. a saved build, to compare before and after a change).
build_release
start_redis
switchboard_env
[[ " $SCENARIOS " == *" flush "* ]] && STORE=${STORE:-postgres}
STORE=${STORE:-sqlite}
case $STORE in
sqlite)
    export SWITCHBOARD__STORE__URL="sqlite://$WORK/store.db?mode=rwc" ;;
postgres)
    out=$(scripts/services.sh env pg) && eval "$out"
    PG_ADMIN_URL=$SWITCHBOARD_TEST_PG_URL
    PG_DB=switchboard_bench_$$
    psql -q "$PG_ADMIN_URL" -c "CREATE DATABASE $PG_DB" >/dev/null
    export SWITCHBOARD__STORE__URL="${PG_ADMIN_URL%/*}/$PG_DB"
    echo "store: PostgreSQL database $PG_DB ($(psql -At "$PG_ADMIN_URL" -c 'SHOW server_version'))" >&2 ;;
*)
    echo "STORE must be sqlite or postgres" >&2
    exit 64 ;;
esac

ADMIN_PW=bench-admin-password
"$SB" agent add --username lt-admin --password "$ADMIN_PW" --name "Bench admin" --role admin --queues general >/dev/null

start_switchboard_pair
TARGETS=http://127.0.0.1:$PA,http://127.0.0.1:$PB
COMMON=(--targets "$TARGETS" --node-pids "$NODE_A,$NODE_B" --redis-pid "$REDIS_PID" --encoding "$ENCODING")
echo "nodes: A pid $NODE_A port $PA, B pid $NODE_B port $PB; results in $OUT" >&2

# Agents are created through node B (their own node): creating them hashes passwords, and
# node A's memory should be untouched by that when the idle scenario measures it.
"$LT" --targets "http://127.0.0.1:$PB" --json "$OUT/agents.json" agents --admin-user lt-admin --admin-password "$ADMIN_PW" \
    --count "$AGENTS" --max-chats "$MAX_CHATS" --parallel 4 >/dev/null

{
    echo "mode=$MODE encoding=$ENCODING store=$STORE"
    echo "switchboard binary: $SB (sha256 $(sha256sum "$SB" | cut -c1-16))"
    machine_info
} >"$OUT/machine.txt"

for s in $SCENARIOS; do
    echo "=== $s ===" >&2
    case $s in
    floor)
        "$LT" --json "$OUT/floor.json" floor --rate 1000 --duration "$DURATION"
        ;;
    redis)
        # The per-message script as the node runs it (chat_common.lua + chat_send.lua), on one
        # chat whose meta says open; __rand_int__ gives each call a new client message id.
        SCRIPT=$(cat src/redis/lua/chat_common.lua src/redis/lua/chat_send.lua)
        redis-cli -p "$RP" HSET 'rb{c:x}:meta' state open visitor v1 agent a1 >/dev/null
        TEXT=$(head -c 250 /dev/zero | tr '\0' 'x')
        rb() { redis-benchmark "$@" 2>&1 | tr '\r' '\n' | grep -o '[0-9.]* requests per second.*' | tail -1; }
        SHA=$(redis-cli -p "$RP" SCRIPT LOAD "$SCRIPT")
        RELAY_SHA=$(redis-cli -p "$RP" SCRIPT LOAD "$(cat loadtest/peers/relay/src/append.lua)")
        {
            for P in 1 16; do
                echo "chat_send.lua (HMGET + HGET + XADD + SPUBLISH + HSET), 50 clients, pipeline $P: $(rb -p "$RP" -n 200000 -c 50 -P "$P" -r 1000000000 \
                    EVALSHA "$SHA" 4 'rb{c:x}:log' 'rb{c:x}:meta' 'rb{c:x}:cmid' 'rb{c:x}' \
                    x visitor v1 Vera 'm__rand_int__' "$TEXT" 1700000000000 message '' '')"
                redis-cli -p "$RP" DEL 'rb{c:x}:log' 'rb{c:x}:cmid' >/dev/null
                echo "the bare relay's append.lua (XADD + SPUBLISH), 50 clients, pipeline $P: $(rb -p "$RP" -n 200000 -c 50 -P "$P" \
                    EVALSHA "$RELAY_SHA" 2 'rb{c:y}:log' 'rb{c:y}' 'n:1' visitor 'm__rand_int__' "$TEXT" 1700000000000)"
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
    routing)
        # ROUTING chat requests to the agents (as many as their capacity), visitors arriving
        # at a steady 1,000/s, then 2,000/s, then all at once (128 connecting at a time).
        # request->offer is in each report's `setup`; every chat is ended and trashed after.
        for RR in 1000 2000 0; do
            "$LT" "${COMMON[@]}" --json "$OUT/routing-$RR.json" chat --agents "$AGENTS" --visitors "$ROUTING" \
                --rate 0 --duration 1 --warmup 0 --request-rate "$RR" --connect-parallel 128 --setup-timeout-secs 60
        done
        ;;
    site)
        # JSON, as browsers speak it (the bytes per watching agent are a browser's). Past
        # about 19,000 sockets the load generator needs more open files than the common
        # 20,000 cap: raised here when the shell may (root), else the run reports failures.
        ulimit -n 65536 2>/dev/null || true
        "$LT" --targets "$TARGETS" --node-pids "$NODE_A,$NODE_B" --redis-pid "$REDIS_PID" --encoding json \
            --json "$OUT/site.json" site "${SITE[@]}"
        ;;
    storm)
        "$LT" "${COMMON[@]}" --json "$OUT/storm.json" storm --agents "$AGENTS" --visitors "$STORM" \
            --count "$STORM" --rate 1000 --warmup 3 --after 3 --connect-parallel 128
        ;;
    wide)
        # WIDE_NODES fresh nodes, each held at WIDE_EACH idle visitor connections by a client
        # process of its own (one process's open files are capped), all at the same time:
        # loadtest/wide-sample.sh records the peak of connections held at once and of the
        # nodes' and Redis's resident memory; each client process reports its node.
        WIDE_PIDS=() WIDE_PORTS=()
        port=$((PB + 1))
        for n in $(seq "$WIDE_NODES"); do
            start_node "bench-wide-$n" "$port"
            WIDE_PIDS+=("${PIDS[-1]}") WIDE_PORTS+=("$STARTED_PORT")
            port=$((STARTED_PORT + 1))
        done
        loadtest/wide-sample.sh "$OUT/wide-samples.tsv" "$REDIS_PID" "${WIDE_PIDS[@]}" &
        SAMPLER=$!
        PIDS+=("$SAMPLER")
        CLIENTS=()
        for n in $(seq 0 $((WIDE_NODES - 1))); do
            # Hold long enough that every process is still holding when the last one is set up.
            "$LT" --targets "http://127.0.0.1:${WIDE_PORTS[$n]}" --node-pids "${WIDE_PIDS[$n]}" --encoding "$ENCODING" \
                --json "$OUT/wide-$n.json" idle --connections "$WIDE_EACH" --offset $((n * WIDE_EACH)) \
                --hold-secs $((HOLD + 4 * WIDE_NODES)) --parallel 32 >"$WORK/wide-$n.log" 2>&1 &
            CLIENTS+=($!)
        done
        failed=0
        for c in "${CLIENTS[@]}"; do wait "$c" || failed=1; done
        stop_pids "$SAMPLER"
        python3 loadtest/wide-summary.py "$OUT" | tee "$OUT/wide.md" >&2
        stop_pids "${WIDE_PIDS[@]}"
        if ((failed)); then
            tail -n 20 "$WORK"/wide-*.log >&2
            exit 1
        fi
        ;;
    flush)
        # All chats end at once, agents decide `create`; the nodes write every transcript to
        # PostgreSQL. Chats/s from the end of all to all written, per the nodes' counters.
        if [[ $STORE != postgres ]]; then
            echo "flush needs STORE=postgres" >&2
            exit 64
        fi
        "$LT" "${COMMON[@]}" --json "$OUT/flush.json" flush --agents "$AGENTS" --visitors "$FLUSH" \
            --messages 10 --rate 5000 --store-url "$SWITCHBOARD__STORE__URL" --connect-parallel 128
        ;;
    *) echo "unknown scenario $s" >&2; exit 64 ;;
    esac
done
for p in "$NODE_A" "$NODE_B"; do
    echo "node pid $p: VmHWM $(grep VmHWM /proc/$p/status | awk '{print $2, $3}')" >>"$OUT/machine.txt"
done
echo "results: $OUT" >&2
