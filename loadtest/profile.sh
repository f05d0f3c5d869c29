#!/usr/bin/env bash
# Where each system's CPU per message goes, side by side: Switchboard and the bare relay
# (loadtest/peers/relay; `relay-echo` is the relay sending the sender its own entry too, as
# Switchboard does; `relay-shared` runs its scripts on its subscriber connection, as
# Switchboard does), each on fresh processes and an emptied Redis, under the same chat load.
#
#   loadtest/profile.sh [SYSTEM ...]        (default: ours relay relay-echo)
#
# For each system: two processes (visitors on A, agents on B), PAIRS chats at RATE msg/s
# (default 1,000 chats, 5,000 msg/s); once the load generator's measured window has begun,
# over DURATION s (default 10):
#   perf record -a -e cpu-clock (system-wide, a software clock: works on virtual machines)
#     -> profile-SYSTEM.md: each process's CPU split into kernel and user space, and its
#        hottest functions (loadtest/perf-split.py);
#   perf stat on the system-call tracepoints of each process, and Redis's INFO commandstats
#     after CONFIG RESETSTAT -> syscalls-SYSTEM.md: calls per delivered message
#     (loadtest/syscall-table.py);
# and the load generator's report (chat-SYSTEM.json: CPU per message of every process).
# Then, on the same processes, a second chat at ALLOC_RATE (default 1,000 msg/s: a uprobe
# costs microseconds a hit) with uprobes on the allocator's entry points (mimalloc's
# mi_malloc_aligned, mi_zalloc_aligned, mi_realloc_aligned: every heap allocation of both
# binaries) counted per process -> allocs-SYSTEM.txt: allocations per delivered message.
# Results go to loadtest/results/RUN/ (git-ignored). Needs perf (Debian: linux-perf). Every
# process it starts is stopped by its PID; loopback only.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
: "${RATE:=5000}" "${PAIRS:=1000}" "${AGENTS:=500}" "${DURATION:=10}" "${ENCODING:=msgpack}"
: "${ALLOC_RATE:=1000}"
SYSTEMS=${*:-ours relay relay-echo}
RUN=${RUN_NAME:-$(date -u +%Y%m%dT%H%M%SZ)-profile}
OUT=$ROOT/loadtest/results/$RUN
WORK=$(mktemp -d /tmp/switchboard-profile.XXXXXX)
mkdir -p "$OUT"
if ! command -v perf >/dev/null; then
    echo "needs perf (Debian: apt-get install linux-perf)" >&2
    exit 64
fi

# shellcheck source=loadtest/bench-lib.sh
source "$ROOT/loadtest/bench-lib.sh"
cleanup() {
    drop_alloc_probes
    stop_started
    if [[ -n ${KEEP_WORK:-} ]]; then echo "work dir kept: $WORK" >&2; else rm -rf "$WORK"; fi
}
trap cleanup EXIT

build_release
start_redis 17679
switchboard_env
export SWITCHBOARD__STORE__URL="sqlite://$WORK/store.db?mode=rwc"
if [[ " $SYSTEMS " == *" ours "* ]]; then
    create_agents "$AGENTS" 20 "$OUT/agents.json"
fi
{
    echo "profile rate=$RATE pairs=$PAIRS agents(ours)=$AGENTS duration=$DURATION encoding=$ENCODING systems=$SYSTEMS"
    machine_info
} >"$OUT/machine.txt"

# A chat of PAIRS at RATE msg/s against processes A and B, DURATION + 3 s measured; returns
# once its window has begun (LT_PID). Its summary goes to stdout.
chat_at() { # peer rate report log
    chat_measuring "$4" --peer "$1" --targets "http://127.0.0.1:$PA,http://127.0.0.1:$PB" \
        --node-pids "$NODE_A,$NODE_B" --redis-pid "$REDIS_PID" --encoding "$ENCODING" --json "$3" chat \
        --agents "$AGENTS" --visitors "$PAIRS" --rate "$2" --duration $((DURATION + 3)) --warmup 2 \
        --setup-timeout-secs 60
}

# Where perf cannot place a probe by the symbol's name (it reads the location from the
# debug information, which it may misread), the probe is written to tracefs at the symbol's
# file offset: its address less the executable segment's address, plus that segment's offset.
add_alloc_probe() { # binary symbol
    local addr seg
    addr=$(nm "$1" | awk -v s="$2" '$3 == s { print $1; exit }')
    [[ -n $addr ]] && [[ -w /sys/kernel/tracing/uprobe_events ]] || return 1
    # "LOAD offset vaddr paddr filesz memsz flags align" of the segment flagged executable.
    read -r -a seg < <(readelf -lW "$1" | awk '$1 == "LOAD" && / E 0x/ { print $2, $3; exit }')
    ((${#seg[@]} == 2)) || return 1
    printf 'p:sballoc/%s %s:0x%x\n' "$2" "$1" $((16#$addr - seg[1] + seg[0])) \
        >>/sys/kernel/tracing/uprobe_events
}
drop_alloc_probes() {
    perf probe -q -d 'sballoc:*' 2>/dev/null || true
    local f
    for f in mi_malloc_aligned mi_zalloc_aligned mi_realloc_aligned; do
        echo "-:sballoc/$f" >>/sys/kernel/tracing/uprobe_events 2>/dev/null || true
    done
}

# Heap allocations per delivered message of both server processes (uprobes on the
# allocator), over DURATION s of a chat at ALLOC_RATE.
count_allocs() { # system
    local bin=$SB peer=switchboard ev lt n
    if [[ $1 != ours ]]; then bin=$RELAY peer=relay; fi
    drop_alloc_probes
    for f in mi_malloc_aligned mi_zalloc_aligned mi_realloc_aligned; do
        perf probe -q -x "$bin" --add "sballoc:$f=$f" 2>/dev/null || add_alloc_probe "$bin" "$f" ||
            { echo "no uprobes here; allocations not counted" >&2; return 0; }
    done
    ev=sballoc:mi_malloc_aligned,sballoc:mi_zalloc_aligned,sballoc:mi_realloc_aligned
    chat_at "$peer" "$ALLOC_RATE" "$OUT/allocs-chat-$1.json" "$WORK/allocs-$1.log" >/dev/null
    lt=$LT_PID
    sleep 1
    perf stat -x, -e "$ev" -p "$NODE_A" -o "$WORK/allocs-a.csv" -- sleep "$DURATION" &
    n=$!
    perf stat -x, -e "$ev" -p "$NODE_B" -o "$WORK/allocs-b.csv" -- sleep "$DURATION"
    wait "$n"
    wait "$lt"
    python3 - "$OUT/allocs-chat-$1.json" "$DURATION" "$WORK/allocs-a.csv" "$WORK/allocs-b.csv" >"$OUT/allocs-$1.txt" <<'PY'
import json, sys
rate = json.load(open(sys.argv[1]))["result"]["window"]["delivered_rate"]
msgs = rate * float(sys.argv[2])
for name, path in (("node-a", sys.argv[3]), ("node-b", sys.argv[4])):
    total = 0
    for line in open(path):
        parts = line.strip().split(",")
        if len(parts) > 2 and parts[0].isdigit():
            total += int(parts[0])
    print(f"{name}: {total / msgs:.1f} allocator calls (malloc, zalloc, realloc) per delivered message "
          f"({total} over {msgs:.0f} messages at {rate} msg/s)")
PY
    cat "$OUT/allocs-$1.txt" >&2
    drop_alloc_probes
}

for sys in $SYSTEMS; do
    echo "=== $sys ===" >&2
    redis-cli -p "$RP" FLUSHALL >/dev/null
    case $sys in
    ours) start_switchboard_pair 18380; peer=switchboard ;;
    relay) RELAY_ECHO=0 start_relay_pair 18380; peer=relay ;;
    relay-echo) RELAY_ECHO=1 start_relay_pair 18380; peer=relay ;;
    relay-shared) RELAY_SHARED=1 start_relay_pair 18380; peer=relay ;;
    *) echo "unknown system $sys" >&2; exit 64 ;;
    esac
    chat_at "$peer" "$RATE" "$OUT/chat-$sys.json" "$WORK/chat-$sys.log" >"$OUT/chat-$sys.txt"
    sleep 1
    redis-cli -p "$RP" CONFIG RESETSTAT >/dev/null
    count_syscalls "$LT_PID" "$DURATION" "$OUT/syscalls-$sys"
    perf record -q -a -e cpu-clock -F 999 -o "$WORK/perf-$sys.data" -- sleep "$DURATION"
    for c in "${SYSCALL_COUNTERS[@]}"; do wait "$c"; done
    redis-cli -p "$RP" INFO commandstats >"$OUT/commandstats-$sys.txt"
    wait "$LT_PID"
    cat "$OUT/chat-$sys.txt" >&2
    perf script -i "$WORK/perf-$sys.data" -F pid,ip,sym,dso -G 2>/dev/null |
        python3 loadtest/perf-split.py "$(nproc)" loadtest="$LT_PID" node-a="$NODE_A" node-b="$NODE_B" \
            redis="$REDIS_PID" >"$OUT/profile-$sys.md"
    python3 loadtest/syscall-table.py "$OUT/chat-$sys.json" "$DURATION" "${SYSCALL_STATS[@]}" \
        commandstats="$OUT/commandstats-$sys.txt" >"$OUT/syscalls-$sys.md"
    count_allocs "$sys"
    stop_pids "$NODE_A" "$NODE_B"
done
echo "results: $OUT (profile-*.md, syscalls-*.md, chat-*.json)" >&2
