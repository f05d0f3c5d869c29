#!/usr/bin/env bash
# Redis's own CPU per call of the scripts on a message's path: the append script
# (chat_common.lua + chat_send.lua) of a git ref against the working tree's, and the rate
# script a node calls once per frame lease (rate.lua). Each runs ROUNDS times, alternating,
# on a throw-away redis-server on a free port (no persistence, pinned to CPU 0 with the
# benchmark client, stopped by its pid file); the figure is Redis's `usec_per_call` from
# INFO commandstats, median of the rounds.
#
#   loadtest/append-cost.sh [REF]        (default REF: main)
#
# Needs redis-server, redis-cli and redis-benchmark (Debian's redis-server and redis-tools).
set -euo pipefail
cd "$(dirname "$0")/.."
REF=${1:-main}
ROUNDS=${ROUNDS:-10}
CALLS=${CALLS:-50000}
WORK=$(mktemp -d /tmp/switchboard-append-cost.XXXXXX)
PORT=16400
while (echo >"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null; do PORT=$((PORT + 1)); done
cleanup() {
    if [[ -f $WORK/redis.pid ]]; then kill "$(cat "$WORK/redis.pid")" 2>/dev/null || true; fi
    sleep 0.3
    rm -rf "$WORK"
}
trap cleanup EXIT
redis-server --port "$PORT" --save '' --appendonly no --daemonize yes \
    --pidfile "$WORK/redis.pid" --logfile "$WORK/redis.log"
for _ in $(seq 50); do redis-cli -p "$PORT" ping >/dev/null 2>&1 && break; sleep 0.1; done
taskset -pc 0 "$(cat "$WORK/redis.pid")" >/dev/null
R=(redis-cli -p "$PORT")

git show "$REF:src/redis/lua/chat_common.lua" >"$WORK/base.lua"
git show "$REF:src/redis/lua/chat_send.lua" >>"$WORK/base.lua"
cat src/redis/lua/chat_common.lua src/redis/lua/chat_send.lua >"$WORK/tree.lua"
BASE=$("${R[@]}" SCRIPT LOAD "$(cat "$WORK/base.lua")")
TREE=$("${R[@]}" SCRIPT LOAD "$(cat "$WORK/tree.lua")")
RATE=$("${R[@]}" SCRIPT LOAD "$(cat src/redis/lua/rate.lua)")
TEXT=$(head -c 250 /dev/zero | tr '\0' 'x')
# A visitor's 250-character message into one open chat; a fresh client message id each call.
SEND=(4 '{c:x}:log' '{c:x}:meta' '{c:x}:cmid' '{c:x}' x visitor v1 Vera __rand_int__ "$TEXT" 1700000000000 message '' '')
# The working tree's script takes the transcript caps too (set out of reach here).
CAPS=(100000000 1000000000000 20 65536 full)

run() { # name evalsha-args...
    local name=$1
    shift
    "${R[@]}" FLUSHALL >/dev/null
    "${R[@]}" HSET '{c:x}:meta' state open visitor v1 agent a1 >/dev/null
    "${R[@]}" CONFIG RESETSTAT >/dev/null
    taskset -c 0 redis-benchmark -p "$PORT" -n "$CALLS" -c 1 -P 32 -r 100000000 EVALSHA "$@" >/dev/null 2>&1
    echo "$name $("${R[@]}" INFO commandstats | tr -d '\r' | sed -n 's/^cmdstat_evalsha:.*usec_per_call=\([0-9.]*\).*/\1/p')"
}
for _ in $(seq "$ROUNDS"); do
    run "append@$REF" "$BASE" "${SEND[@]}"
    run "append@tree" "$TREE" "${SEND[@]}" "${CAPS[@]}"
    run "rate" "$RATE" 1 '{l:fr-v:v1}' 0.001 1000000000 5
done | sort -k1,1 -k2n | awk '
    { v[$1] = v[$1] " " $2; n[$1]++ }
    END { for (k in v) { split(substr(v[k], 2), a, " "); printf "%-16s median %6.2f us per call   (%s)\n", k, a[int((n[k] + 1) / 2)], substr(v[k], 2) } }'
