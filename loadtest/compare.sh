#!/usr/bin/env bash
# Switchboard side by side with the bare relay of its architecture (loadtest/peers/relay) and
# the Socket.IO peer (loadtest/peers/socketio), on this machine, from scratch, driven by the
# same load generator. Results go to loadtest/results/RUN/ (git-ignored): the raw reports, the
# table in compare.md and its figures in summary.json.
#
#   loadtest/compare.sh [full|quick]
#
# One throw-away redis-server for the whole run (FLUSHALL before each system). Then RUNS times
# (3 in full), one system after the other (so the systems alternate): ours (two Switchboard
# nodes, visitors on A, agents on B), relay (two relay processes), the Socket.IO peer (two
# Node.js processes, the classic adapter: the better of its two variants in earlier
# comparisons; PEER=sharded for the other), each through:
#   idle: IDLE connections on one process (A), held HOLD s; memory per connection
# and then, on fresh processes and an emptied Redis,
#   chat at 1,000 and 5,000 msg/s (PAIRS chats, 250-character texts, DURATION s measured)
#   ramp from 2,000 msg/s, x1.25 a step, until p99 > 50 ms (or loss, or RAMP_MAX_STEPS)
# and finally the table (loadtest/compare-table.py): the median of the runs for each figure and
# system, and ours against the relay and the peer. Every window reports each process's CPU per
# delivered message, the load generator's included, and what else the machine did meanwhile.
# Each run starts with the machine's own floor (`switchboard-loadtest floor`).
#
# `full` (default): RUNS=3 PAIRS=1000 AGENTS=500 DURATION=10 WARMUP=2 RAMP_STEP=4
#   RAMP_MAX_STEPS=20 (up to 2,000 x 1.25^19, about 138,000 msg/s) IDLE=19000 HOLD=10; about 30
#   minutes on a quiet 2-core machine.
# `quick`: RUNS=1 PAIRS=100 AGENTS=50 DURATION=3 WARMUP=1 RAMP_STEP=2 RAMP_MAX_STEPS=8
#   IDLE=2000 HOLD=3; a few minutes.
# Each of those can be overridden from the environment, and also: SYSTEMS ("ours relay peer"),
# PEER (classic), RATES ("1000 5000"), ENCODING (msgpack), RUN_NAME, NO_BUILD=1, KEEP_WORK=1.
#
# The Switchboard store is a temporary SQLite file; the admin and the load-test agents are
# created once, through a node started for that alone. The peer's packages come from its
# package-lock.json (`npm ci`) when node_modules is missing. Every process it starts is
# stopped by its PID; only loopback addresses are used.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
MODE=${1:-full}
case $MODE in
full)
    : "${RUNS:=3}" "${PAIRS:=1000}" "${AGENTS:=500}" "${DURATION:=10}" "${WARMUP:=2}" \
        "${RAMP_STEP:=4}" "${RAMP_MAX_STEPS:=20}" "${IDLE:=19000}" "${HOLD:=10}" ;;
quick)
    : "${RUNS:=1}" "${PAIRS:=100}" "${AGENTS:=50}" "${DURATION:=3}" "${WARMUP:=1}" \
        "${RAMP_STEP:=2}" "${RAMP_MAX_STEPS:=8}" "${IDLE:=2000}" "${HOLD:=3}" ;;
*)
    echo "usage: $0 [full|quick]" >&2
    exit 64 ;;
esac
: "${SYSTEMS:=ours relay peer}" "${PEER:=classic}" "${RATES:=1000 5000}" "${ENCODING:=msgpack}"
RAMP_START=2000
MAX_CHATS=20
RUN=${RUN_NAME:-$(date -u +%Y%m%dT%H%M%SZ)-compare-$MODE}
OUT=$ROOT/loadtest/results/$RUN
PEER_DIR=$ROOT/loadtest/peers/socketio
WORK=$(mktemp -d /tmp/switchboard-compare.XXXXXX)
mkdir -p "$OUT"
for s in $SYSTEMS; do
    case $s in ours | relay | peer) ;; *) echo "unknown system $s" >&2; exit 64 ;; esac
done
case $PEER in classic | sharded) ;; *) echo "PEER must be classic or sharded" >&2; exit 64 ;; esac

# shellcheck source=loadtest/bench-lib.sh
source "$ROOT/loadtest/bench-lib.sh"
cleanup() {
    stop_started
    if [[ -n ${KEEP_WORK:-} ]]; then echo "work dir kept: $WORK" >&2; else rm -rf "$WORK"; fi
}
trap cleanup EXIT

T0=$(date +%s)
build_release
if [[ " $SYSTEMS " == *" peer "* && ! -d $PEER_DIR/node_modules ]]; then
    (cd "$PEER_DIR" && npm ci --no-audit --no-fund)
fi
# Ports of their own (run-bench.sh starts at 17379 and 18080), to stay clear of it.
start_redis 17479
switchboard_env
export SWITCHBOARD__STORE__URL="sqlite://$WORK/store.db?mode=rwc"
if [[ " $SYSTEMS " == *" ours "* ]]; then
    create_agents "$AGENTS" "$MAX_CHATS" "$OUT/agents.json"
fi

{
    echo "compare mode=$MODE runs=$RUNS systems=$SYSTEMS peer=$PEER pairs=$PAIRS agents(ours)=$AGENTS rates=$RATES duration=$DURATION warmup=$WARMUP ramp_start=$RAMP_START ramp_step=$RAMP_STEP ramp_max_steps=$RAMP_MAX_STEPS idle=$IDLE hold=$HOLD encoding=$ENCODING"
    machine_info
    if [[ " $SYSTEMS " == *" peer "* ]]; then
        echo "node $(node --version)"
        (cd "$PEER_DIR" && node -e 'const l=require("./package-lock.json").packages; for (const p of ["socket.io","@socket.io/redis-adapter","redis"]) console.log(p+" "+l["node_modules/"+p].version)')
    fi
} >"$OUT/machine.txt"

# Starts the two processes A (port PA, pid NODE_A) and B of a system on an emptied Redis.
start_system() { # system
    redis-cli -p "$RP" FLUSHALL >/dev/null
    case $1 in
    ours) start_switchboard_pair 18180 ;;
    relay) start_relay_pair 18180 ;;
    peer) start_pair start_peer "$PEER" 18180 "$PEER" ;;
    esac
}

# Stops A and B, noting their peak memory.
stop_system() { # system run what
    for p in "$NODE_A" "$NODE_B"; do
        echo "$1 run $2 ($3) pid $p: VmHWM $(awk '/VmHWM/ {print $2, $3}' "/proc/$p/status")" >>"$OUT/machine.txt"
    done
    stop_pids "$NODE_A" "$NODE_B"
}

peer_of() { # system
    case $1 in ours) echo switchboard ;; relay) echo relay ;; peer) echo socketio ;; esac
}

# The directory name of a system's results (the table tells the Socket.IO variants apart).
dir_of() { # system
    if [[ $1 == peer ]]; then echo "$PEER"; else echo "$1"; fi
}

# Idle on fresh processes (what earlier scenarios leave behind would blur the memory per
# connection); all on A, the largest count the 20,000 open-file cap allows one process.
idle_scenario() { # system dir
    echo "--- $1: idle, $IDLE connections on one process" >&2
    "$LT" --peer "$(peer_of "$1")" --targets "http://127.0.0.1:$PA" --node-pids "$NODE_A" --redis-pid "$REDIS_PID" \
        --encoding "$ENCODING" --json "$2/idle.json" idle --connections "$IDLE" --hold-secs "$HOLD" \
        --parallel 64 >"$2/idle.txt" 2>"$2/idle.log"
    cat "$2/idle.txt" >&2
}

# Chat at each rate, then the ramp, on the same two processes.
traffic_scenarios() { # system dir
    local sys=$1 dir=$2 rate
    local common=(--peer "$(peer_of "$sys")" --targets "http://127.0.0.1:$PA,http://127.0.0.1:$PB" --node-pids "$NODE_A,$NODE_B"
        --redis-pid "$REDIS_PID" --encoding "$ENCODING")
    for rate in $RATES; do
        echo "--- $sys: chat at $rate msg/s" >&2
        "$LT" "${common[@]}" --json "$dir/chat-$rate.json" chat --agents "$AGENTS" --visitors "$PAIRS" \
            --text-bytes 250 --rate "$rate" --duration "$DURATION" --warmup "$WARMUP" --setup-timeout-secs 60 \
            >"$dir/chat-$rate.txt" 2>"$dir/chat-$rate.log"
        cat "$dir/chat-$rate.txt" >&2
    done
    echo "--- $sys: ramp" >&2
    "$LT" "${common[@]}" --json "$dir/ramp.json" ramp --agents "$AGENTS" --visitors "$PAIRS" --text-bytes 250 \
        --start-rate "$RAMP_START" --factor 1.25 --step-secs "$RAMP_STEP" --p99-bound-ms 50 \
        --max-steps "$RAMP_MAX_STEPS" --setup-timeout-secs 60 >"$dir/ramp.txt" 2>"$dir/ramp.log"
    cat "$dir/ramp.txt" >&2
}

for run in $(seq "$RUNS"); do
    # The machine's own floor at this moment (loopback round trips between two threads, no
    # server): how much of the tails below is the machine's rather than a system's.
    echo "=== run $run of $RUNS: machine floor ===" >&2
    "$LT" --json "$OUT/floor-$run.json" floor --rate 1000 --duration "$DURATION" >&2
    for sys in $SYSTEMS; do
        dir=$OUT/$(dir_of "$sys")-$run
        mkdir -p "$dir"
        echo "=== run $run of $RUNS: $sys ($(($(date +%s) - T0)) s in) ===" >&2
        start_system "$sys"
        idle_scenario "$sys" "$dir"
        stop_system "$sys" "$run" idle
        start_system "$sys"
        traffic_scenarios "$sys" "$dir"
        stop_system "$sys" "$run" traffic
    done
done
echo "total $(($(date +%s) - T0)) s (mode $MODE)" | tee -a "$OUT/machine.txt" >&2

python3 "$ROOT/loadtest/compare-table.py" "$OUT" --json "$OUT/summary.json" | tee "$OUT/compare.md"
echo "results: $OUT (table: $OUT/compare.md)" >&2
