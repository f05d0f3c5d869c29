#!/usr/bin/env bash
# Switchboard side by side with its Socket.IO peer (loadtest/peers/socketio) in both Redis
# adapter variants, classic (PUBLISH/SUBSCRIBE) and sharded (SPUBLISH/SSUBSCRIBE), on this
# machine, from scratch. Results go to loadtest/results/RUN/, with the table in compare.md.
#
#   loadtest/compare.sh [full|quick]
#
# One throw-away redis-server for the whole run (FLUSHALL before each system). Then RUNS times
# (3 in full), one system after the other: ours (two Switchboard nodes, visitors on A, agents
# on B), classic (two Node.js processes), sharded (two Node.js processes), each through:
#   idle: IDLE connections on one process (A), held HOLD s; memory per connection
# and then, on fresh processes and an emptied Redis (so the latency figures never carry what
# the idle scenario left behind: for ours, 19,000 visitors' records in Redis),
#   chat at 1,000 and 5,000 msg/s (PAIRS chats, 250-character texts, DURATION s measured)
#   ramp from 2,000 msg/s, x1.25 a step, until p99 > 50 ms (or loss, or RAMP_MAX_STEPS)
# and finally the table (loadtest/compare-table.py): median and min-max of the runs for each
# figure and system, and ours against the better peer variant. Each run starts with the
# machine's own floor (`switchboard-loadtest floor`: loopback round trips with no server),
# shown under the table.
#
# `full` (default): RUNS=3 PAIRS=1000 AGENTS=500 DURATION=10 WARMUP=2 RAMP_STEP=4
#   RAMP_MAX_STEPS=14 IDLE=19000 HOLD=10; about 22 minutes on a quiet 2-core machine (plus the build).
# `quick`: RUNS=1 PAIRS=100 AGENTS=50 DURATION=3 WARMUP=1 RAMP_STEP=2 RAMP_MAX_STEPS=8
#   IDLE=2000 HOLD=3; a few minutes.
# Each of those can be overridden from the environment, and also: SYSTEMS ("ours classic
# sharded"), RATES ("1000 5000"), ENCODING (ours: msgpack), RUN_NAME, NO_BUILD=1, KEEP_WORK=1.
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
        "${RAMP_STEP:=4}" "${RAMP_MAX_STEPS:=14}" "${IDLE:=19000}" "${HOLD:=10}" ;;
quick)
    : "${RUNS:=1}" "${PAIRS:=100}" "${AGENTS:=50}" "${DURATION:=3}" "${WARMUP:=1}" \
        "${RAMP_STEP:=2}" "${RAMP_MAX_STEPS:=8}" "${IDLE:=2000}" "${HOLD:=3}" ;;
*)
    echo "usage: $0 [full|quick]" >&2
    exit 64 ;;
esac
: "${SYSTEMS:=ours classic sharded}" "${RATES:=1000 5000}" "${ENCODING:=msgpack}"
RAMP_START=2000
MAX_CHATS=20
RUN=${RUN_NAME:-$(date -u +%Y%m%dT%H%M%SZ)-compare-$MODE}
OUT=$ROOT/loadtest/results/$RUN
PEER_DIR=$ROOT/loadtest/peers/socketio
WORK=$(mktemp -d /tmp/switchboard-compare.XXXXXX)
mkdir -p "$OUT"
for s in $SYSTEMS; do
    case $s in ours | classic | sharded) ;; *) echo "unknown system $s" >&2; exit 64 ;; esac
done

# shellcheck source=loadtest/bench-lib.sh
source "$ROOT/loadtest/bench-lib.sh"
cleanup() {
    stop_started
    if [[ -n ${KEEP_WORK:-} ]]; then echo "work dir kept: $WORK" >&2; else rm -rf "$WORK"; fi
}
trap cleanup EXIT

T0=$(date +%s)
build_release
if [[ ! -d $PEER_DIR/node_modules ]]; then
    (cd "$PEER_DIR" && npm ci --no-audit --no-fund)
fi
# Ports of their own (run-bench.sh starts at 17379 and 18080), to stay clear of it.
start_redis 17479
switchboard_env
export SWITCHBOARD__STORE__URL="sqlite://$WORK/store.db?mode=rwc"

# The admin and the load-test agents, once, through a node of their own (argon2 hashing
# leaves its memory behind; the measured nodes start clean).
ADMIN_PW=bench-admin-password
"$SB" agent add --username lt-admin --password "$ADMIN_PW" --name "Bench admin" --role admin --queues general >/dev/null
start_node bench-setup 18180
SETUP_PID=${PIDS[-1]}
"$LT" --targets "http://127.0.0.1:$STARTED_PORT" --json "$OUT/agents.json" agents --admin-user lt-admin \
    --admin-password "$ADMIN_PW" --count "$AGENTS" --max-chats "$MAX_CHATS" --parallel 4 >/dev/null
stop_pids "$SETUP_PID"

{
    echo "compare mode=$MODE runs=$RUNS systems=$SYSTEMS pairs=$PAIRS agents(ours)=$AGENTS rates=$RATES duration=$DURATION warmup=$WARMUP ramp_start=$RAMP_START ramp_step=$RAMP_STEP ramp_max_steps=$RAMP_MAX_STEPS idle=$IDLE hold=$HOLD encoding(ours)=$ENCODING"
    machine_info
    echo "node $(node --version)"
    (cd "$PEER_DIR" && node -e 'const l=require("./package-lock.json").packages; for (const p of ["socket.io","@socket.io/redis-adapter","redis","socket.io-adapter","engine.io","ws"]) console.log(p+" "+l["node_modules/"+p].version)')
} >"$OUT/machine.txt"

# Starts one Socket.IO peer process on the first free port from $2; sets STARTED_PORT; its PID
# is ${PIDS[-1]}.
start_peer() { # name first-port adapter
    start_server "$1" "$2" env PORT=@PORT@ REDIS_URL="redis://127.0.0.1:$RP" node "$PEER_DIR/server.js" "$3"
    for _ in $(seq 100); do grep -q '^socketio-peer ready' "$WORK/$1.log" && return 0; sleep 0.1; done
    echo "peer $1 printed no ready line; log:" >&2
    cat "$WORK/$1.log" >&2
    exit 1
}

# Starts the two processes A (port PA, pid NODE_A) and B of a system on an emptied Redis.
start_system() { # system
    redis-cli -p "$RP" FLUSHALL >/dev/null
    case $1 in
    ours)
        start_switchboard_pair 18180 ;;
    classic | sharded)
        start_peer "$1-a" 18180 "$1"
        NODE_A=${PIDS[-1]} PA=$STARTED_PORT
        start_peer "$1-b" $((PA + 1)) "$1"
        NODE_B=${PIDS[-1]} PB=$STARTED_PORT ;;
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
    if [[ $1 == ours ]]; then echo switchboard; else echo socketio; fi
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
        dir=$OUT/$sys-$run
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

python3 "$ROOT/loadtest/compare-table.py" "$OUT" | tee "$OUT/compare.md"
echo "results: $OUT (table: $OUT/compare.md)" >&2
