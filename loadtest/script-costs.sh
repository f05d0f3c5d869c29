#!/usr/bin/env bash
# What each part of the per-message script costs Redis: the node's script (chat_common.lua +
# chat_send.lua) as it is, variants of it with one part taken out or done differently, and the
# bare relay's script, each run by redis-benchmark against a throw-away redis-server, in
# alternating rounds. Per variant: Redis's own execution time per call (INFO commandstats
# usec_per_call, after CONFIG RESETSTAT: CPU inside the script, the network excluded) and the
# calls per second 50 unpipelined clients get. Results in loadtest/results/RUN/script-costs.md.
#
#   loadtest/script-costs.sh            (ROUNDS=3, N=100000 calls per variant and round)
#
# The variants are written to a scratch directory from the repository's scripts by text
# substitution (the repository's scripts are not changed); a variant whose substitution no
# longer applies is reported and skipped. Loopback only; Redis is stopped by its pid file.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
: "${ROUNDS:=3}" "${N:=100000}"
RUN=${RUN_NAME:-$(date -u +%Y%m%dT%H%M%SZ)-script-costs}
OUT=$ROOT/loadtest/results/$RUN
WORK=$(mktemp -d /tmp/switchboard-scripts.XXXXXX)
mkdir -p "$OUT"
# shellcheck source=loadtest/bench-lib.sh
source "$ROOT/loadtest/bench-lib.sh"
cleanup() {
    stop_started
    rm -rf "$WORK"
}
trap cleanup EXIT
start_redis 17779

NODE=$(cat src/redis/lua/chat_common.lua src/redis/lua/chat_send.lua)
RELAY=$(cat loadtest/peers/relay/src/append.lua)
# variant NAME 'OLD TEXT
# =>
# NEW TEXT[
# &&
# OLD => NEW ...]': the node's script with each OLD replaced by its NEW, as $WORK/NAME.lua.
variant() {
    python3 -c '
import sys
name, subs, src = sys.argv[1], sys.argv[2], open(sys.argv[3]).read()
for sub in subs.split("\n&&\n"):
    old, new = sub.split("\n=>\n")
    if old not in src:
        sys.exit(f"{name}: substitution does not apply; skipped")
    src = src.replace(old, new)
open(sys.argv[4], "w").write(src)
' "$1" "$2" "$WORK/as-is.lua" "$WORK/$1.lua"
}
echo "$NODE" >"$WORK/as-is.lua"
# Without the deduplication of resends (a guarantee the design keeps: for scale only).
variant no-dedupe "local known = redis.call('HGET', cmids, dedupe)
if known then return {known, 0} end
=>

&&
redis.call('HSET', cmids, dedupe, seq)
=>
" || true
# The published entry packed by Redis (cmsgpack) instead of by the node.
variant lua-packed "redis.call('SPUBLISH', ch, ARGV[16] .. '\\163seq' .. packed_seq)
=>
redis.call('SPUBLISH', ch, cmsgpack.pack({chat_id = ARGV[1], seq = seq, kind = ARGV[8],
  author = ARGV[2], name = ARGV[4], text = ARGV[6], at = tonumber(ARGV[7]), client_msg_id = ARGV[5],
  event = ARGV[9], data = ARGV[10], author_id = aid}))
" || true
# The client message ids kept in the chat's meta hash rather than a hash of their own: read
# with the state and counters, written with the counters (two Redis calls fewer).
variant meta-dedupe "local st, vid, aid, n, b, full = unpack(redis.call('HMGET', meta, 'state', 'visitor', 'agent', 'n', 'b', 'full'))
=>
local dedupe = ARGV[2] .. ':' .. ARGV[3] .. ':' .. ARGV[5]
local st, vid, aid, n, b, full, known = unpack(redis.call('HMGET', meta, 'state', 'visitor', 'agent', 'n', 'b', 'full', dedupe))
&&
local dedupe = ARGV[2] .. ':' .. ARGV[3] .. ':' .. ARGV[5]
local known = redis.call('HGET', cmids, dedupe)
=>
local _ = cmids
&&
redis.call('HSET', cmids, dedupe, seq)
=>

&&
redis.call('HSET', meta, 'n', n + 1, 'b', b + size, 'vlast', ARGV[7])
=>
redis.call('HSET', meta, 'n', n + 1, 'b', b + size, 'vlast', ARGV[7], dedupe, seq)
" || true
# The stream entry without the fields that are empty or the default for a visitor's text.
variant sparse "local seq = redis.call('XADD', log, '*', 'k', ARGV[8], 'a', ARGV[2], 'n', ARGV[4], 't', ARGV[6],
  'at', ARGV[7], 'm', ARGV[5], 'e', ARGV[9], 'd', ARGV[10], 'i', aid)
=>
local seq = redis.call('XADD', log, '*', 'a', ARGV[2], 'n', ARGV[4], 't', ARGV[6], 'at', ARGV[7], 'm', ARGV[5])
" || true
# The stream entry stored as one field: the entry the node packed.
variant packed-field "local seq = redis.call('XADD', log, '*', 'k', ARGV[8], 'a', ARGV[2], 'n', ARGV[4], 't', ARGV[6],
  'at', ARGV[7], 'm', ARGV[5], 'e', ARGV[9], 'd', ARGV[10], 'i', aid)
=>
local seq = redis.call('XADD', log, '*', 'p', ARGV[16])
" || true
# Only the append and the publication, with the same keys and arguments: what the checks,
# the deduplication and the counters cost together.
variant store-and-publish-only "local st, vid, aid, n, b, full = unpack(redis.call('HMGET', meta, 'state', 'visitor', 'agent', 'n', 'b', 'full'))
=>
do
  local seq = redis.call('XADD', log, '*', 'k', ARGV[8], 'a', ARGV[2], 'n', ARGV[4], 't', ARGV[6],
    'at', ARGV[7], 'm', ARGV[5], 'e', ARGV[9], 'd', ARGV[10], 'i', '')
  local packed_seq = (#seq < 32) and (string.char(0xa0 + #seq) .. seq) or ('\\217' .. string.char(#seq) .. seq)
  redis.call('SPUBLISH', ch, ARGV[16] .. '\\163seq' .. packed_seq)
  return {seq, 1}
end
local st, vid, aid, n, b, full
" || true
echo "$RELAY" >"$WORK/relay.lua"

redis-cli -p "$RP" HSET 'rb{c:x}:meta' state open visitor v1 agent a1 >/dev/null
TEXT=$(head -c 250 /dev/zero | tr '\0' 'x')
# The caps far above what a run writes; the published entry the node packs (ARGV[16]) stood in
# for by as many bytes (the script only passes it on).
HEAD=$(head -c 400 /dev/zero | tr '\0' 'h')
VARIANTS=()
for f in as-is no-dedupe lua-packed meta-dedupe sparse packed-field store-and-publish-only relay; do
    [[ -s $WORK/$f.lua ]] && VARIANTS+=("$f")
done
printf 'variant\tround\tusec_per_call\tcalls_per_s\n' >"$OUT/script-costs.tsv"
for round in $(seq "$ROUNDS"); do
    for v in "${VARIANTS[@]}"; do
        sha=$(redis-cli -p "$RP" SCRIPT LOAD "$(cat "$WORK/$v.lua")")
        redis-cli -p "$RP" DEL 'rb{c:x}:log' 'rb{c:x}:cmid' >/dev/null
        redis-cli -p "$RP" CONFIG RESETSTAT >/dev/null
        if [[ $v == relay ]]; then
            args=(EVALSHA "$sha" 2 'rb{c:x}:log' 'rb{c:x}' 'n:1' visitor 'm__rand_int__' "$TEXT" 1700000000000)
        else
            args=(EVALSHA "$sha" 4 'rb{c:x}:log' 'rb{c:x}:meta' 'rb{c:x}:cmid' 'rb{c:x}'
                x visitor v1 Vera 'm__rand_int__' "$TEXT" 1700000000000 message '' ''
                1000000000 1000000000000 50 20000 full "$HEAD")
        fi
        rps=$(redis-benchmark -p "$RP" -n "$N" -c 50 -r 1000000000 "${args[@]}" 2>&1 | tr '\r' '\n' |
            grep -o '[0-9.]* requests per second' | tail -1 | cut -d' ' -f1)
        usec=$(redis-cli -p "$RP" INFO commandstats | grep '^cmdstat_evalsha:' | grep -o 'usec_per_call=[0-9.]*' | cut -d= -f2)
        printf '%s\t%s\t%s\t%s\n' "$v" "$round" "$usec" "$rps" | tee -a "$OUT/script-costs.tsv" >&2
    done
done
python3 - "$OUT/script-costs.tsv" <<'PY' | tee "$OUT/script-costs.md"
import collections, statistics, sys
rows = collections.defaultdict(list)
for line in open(sys.argv[1]).read().splitlines()[1:]:
    v, _, usec, rps = line.split("\t")
    rows[v].append((float(usec), float(rps)))
base = statistics.median(u for u, _ in rows["as-is"])
print("| script | Redis µs per call (median) | less than as-is | calls/s, 50 clients (median) |")
print("| --- | --- | --- | --- |")
for v, r in rows.items():
    u = statistics.median(x for x, _ in r)
    print(f"| {v} | {u:.2f} | {base - u:.2f} | {statistics.median(y for _, y in r):,.0f} |")
PY
echo "results: $OUT" >&2
