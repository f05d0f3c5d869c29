# shellcheck shell=bash
# The set-up shared by loadtest/run-bench.sh and loadtest/compare.sh; sourced, not run.
#
# The sourcing script sets ROOT (the repository) and WORK (a scratch directory it removes at
# the end), and calls stop_started from its EXIT trap. Every process started through these
# functions is recorded in PIDS and stopped by that PID; the redis-server (daemonized) is
# stopped through its pid file. Nothing here is stopped by name.

PIDS=()
REDIS_PIDFILE=$WORK/redis.pid

# NICE=-10 (root only): the script and everything it starts (Redis, the servers, the load
# generator) run at that niceness, so that other work on a shared machine (builds) gets what
# the measured processes leave rather than an equal share. With autogroup scheduling, niceness
# ranks processes only within their session, so the session's group gets it too: start the
# script with `setsid` so that the group holds nothing else. Every report names the machine's
# other work over each window (`machine.others_percent_of_one_core`).
if [[ ${NICE:-0} != 0 ]]; then
    if [[ -w /proc/$$/autogroup ]]; then echo "$NICE" >"/proc/$$/autogroup" || true; fi
    renice -n "$NICE" -p $$ >/dev/null
fi

# Stops every process started here (by PID) and the redis-server (by its pid file, waiting
# up to 5 s until it is gone, so that its directory can be removed).
stop_started() {
    local pid
    stop_pids "${PIDS[@]:-}"
    if [[ -f $REDIS_PIDFILE ]]; then
        pid=$(cat "$REDIS_PIDFILE")
        kill "$pid" 2>/dev/null || true
        for _ in $(seq 50); do
            kill -0 "$pid" 2>/dev/null || break
            sleep 0.1
        done
    fi
}

# Stops the given started processes (SIGTERM, then wait) and forgets them.
stop_pids() {
    local p q keep=()
    for p in "$@"; do
        [[ -n $p ]] && kill "$p" 2>/dev/null || true
    done
    for p in "$@"; do
        [[ -n $p ]] && wait "$p" 2>/dev/null || true
    done
    for q in "${PIDS[@]:-}"; do
        [[ -z $q || " $* " == *" $q "* ]] || keep+=("$q")
    done
    PIDS=("${keep[@]:-}")
}

# The first TCP port from $1 up that nothing listens on.
free_port() {
    local p=$1
    while ss -Htln "sport = :$p" | grep -q .; do p=$((p + 1)); done
    echo "$p"
}

# The PIDs listening on TCP port $1, space-separated.
listening_pids() {
    ss -Htlnp "sport = :$1" | grep -o 'pid=[0-9]*' | cut -d= -f2 | tr '\n' ' '
}

# start_server NAME FIRST_PORT CMD...: starts CMD, with every @PORT@ in it replaced by the
# first free port from FIRST_PORT, and waits until that very process listens there. Another
# script on the machine may take the port between the check and the bind (and its server
# would then answer in place of ours), so a server that does not come up on its port is
# stopped and the next port tried. Sets STARTED_PORT; the PID is ${PIDS[-1]}; the log is
# $WORK/NAME.log. CMD must exec the server itself (use `env VAR=..` for settings) so that the
# PID is the server's.
start_server() {
    local name=$1 port=$2 pid a
    shift 2
    for _ in 1 2 3 4 5 6 7 8; do
        port=$(free_port "$port")
        local cmd=()
        for a in "$@"; do cmd+=("${a//@PORT@/$port}"); done
        "${cmd[@]}" >"$WORK/$name.log" 2>&1 &
        pid=$!
        for _ in $(seq 150); do
            kill -0 "$pid" 2>/dev/null || break
            if [[ " $(listening_pids "$port") " == *" $pid "* ]]; then
                PIDS+=("$pid")
                STARTED_PORT=$port
                return 0
            fi
            sleep 0.1
        done
        kill "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
        echo "$name: not listening on port $port (taken meanwhile?); trying the next port" >&2
        port=$((port + 1))
    done
    echo "$name did not come up; log:" >&2
    cat "$WORK/$name.log" >&2
    exit 1
}

# Builds the release binaries unless NO_BUILD is set (one cargo call, so the three share
# their dependencies' builds); sets SB, LT and RELAY.
# SB_BIN / LT_BIN / RELAY_BIN: other binaries (e.g. a saved build, to compare before and after).
build_release() {
    if [[ -z ${NO_BUILD:-} ]]; then
        cargo build --release -p switchboard -p switchboard-loadtest -p switchboard-relay
    fi
    SB=${SB_BIN:-$ROOT/target/release/switchboard}
    LT=${LT_BIN:-$ROOT/target/release/switchboard-loadtest}
    RELAY=${RELAY_BIN:-$ROOT/target/release/switchboard-relay}
}

# Starts a throw-away redis-server (loopback, no persistence) on the first free port from $1
# (default 17379), checking that it is this redis-server that listens there; sets RP and
# REDIS_PID.
start_redis() {
    local pid
    RP=${1:-17379}
    for _ in 1 2 3 4 5 6 7 8; do
        RP=$(free_port "$RP")
        rm -f "$REDIS_PIDFILE"
        redis-server --port "$RP" --bind 127.0.0.1 --save '' --appendonly no --daemonize yes \
            --pidfile "$REDIS_PIDFILE" --dir "$WORK" --logfile "$WORK/redis.log" --maxclients 10000 || true
        for _ in $(seq 50); do
            pid=$(cat "$REDIS_PIDFILE" 2>/dev/null || true)
            if [[ -n $pid && " $(listening_pids "$RP") " == *" $pid "* ]] && redis-cli -p "$RP" ping >/dev/null 2>&1; then
                REDIS_PID=$pid
                echo "redis-server $(redis-server --version | grep -o 'v=[0-9.]*') on port $RP, pid $REDIS_PID" >&2
                return 0
            fi
            sleep 0.1
        done
        [[ -n $pid ]] && kill "$pid" 2>/dev/null || true
        echo "redis-server: not listening on port $RP; trying the next port" >&2
        RP=$((RP + 1))
    done
    echo "redis-server did not come up; log:" >&2
    cat "$WORK/redis.log" >&2
    exit 1
}

# The nodes' settings for a benchmark, all but the store: Redis at port RP, quiet logs, and
# the per-connection frame rate limit lifted (the load generator sends far more than a
# person types).
switchboard_env() {
    export SWITCHBOARD__REDIS__URL=redis://127.0.0.1:$RP
    export SWITCHBOARD__REDIS__KEY_PREFIX=bench
    export SWITCHBOARD__AUTH__TOKEN_SECRET=bench-secret-0123456789-0123456789-abcdef
    export SWITCHBOARD__LOG__LEVEL=warn
    export SWITCHBOARD__LIMITS__FRAMES_PER_SECOND=100000
    export SWITCHBOARD__LIMITS__BURST_FRAMES=100000
    # One machine plays thousands of visitors from one address, each writing faster than a
    # person: the limits on anonymous clients ([abuse]) are lifted as well, except where the
    # caller set them (e.g. to measure them at their defaults).
    local k
    for k in NEW_VISITORS_PER_IP_PER_MINUTE NEW_VISITORS_PER_IP_BURST SOCKETS_PER_IP \
        SOCKETS_PER_VISITOR CHAT_REQUESTS_PER_VISITOR_PER_HOUR CHAT_REQUESTS_PER_VISITOR_BURST \
        CHAT_REQUESTS_PER_IP_PER_HOUR CHAT_REQUESTS_PER_IP_BURST PAGE_VIEWS_PER_VISITOR_PER_MINUTE \
        PAGE_VIEWS_PER_VISITOR_BURST PAGE_VIEWS_PER_IP_PER_MINUTE PAGE_VIEWS_PER_IP_BURST \
        VISITOR_FRAMES_PER_SECOND VISITOR_BURST_FRAMES AGENT_FRAMES_PER_SECOND AGENT_BURST_FRAMES; do
        k=SWITCHBOARD__ABUSE__$k
        export "$k=${!k:-1000000}"
    done
}

# Starts a Switchboard node on the first free port from $2 and waits for /healthz; sets
# STARTED_PORT; its PID is ${PIDS[-1]}.
start_node() { # name first-port
    start_server "$1" "$2" env SWITCHBOARD__SERVER__LISTEN=127.0.0.1:@PORT@ SWITCHBOARD__SERVER__NODE_NAME="$1" "$SB" serve
    for _ in $(seq 100); do curl -fs "http://127.0.0.1:$STARTED_PORT/healthz" >/dev/null 2>&1 && return 0; sleep 0.1; done
    echo "node $1 does not answer /healthz; log:" >&2
    cat "$WORK/$1.log" >&2
    exit 1
}

# Starts processes A and B with START NAME PORT [ARG] (start_node, start_relay, start_peer) on
# free ports from $3 (default 18080); sets PA, PB, NODE_A, NODE_B.
start_pair() { # start-function name-prefix first-port [extra argument]
    "$1" "$2-a" "${3:-18080}" ${4:+"$4"}
    NODE_A=${PIDS[-1]} PA=$STARTED_PORT
    "$1" "$2-b" $((PA + 1)) ${4:+"$4"}
    NODE_B=${PIDS[-1]} PB=$STARTED_PORT
}

# Starts Switchboard nodes A and B on free ports from $1 (default 18080).
start_switchboard_pair() {
    start_pair start_node bench "${1:-18080}"
}

# Creates the admin (CLI) and $1 load-test agents with $2 chats each through a node started
# for that alone (argon2 hashing leaves its memory behind; the measured nodes start clean);
# the report goes to $3.
create_agents() { # count max-chats report
    local pw=bench-admin-password pid
    "$SB" agent add --username lt-admin --password "$pw" --name "Bench admin" --role admin --queues general >/dev/null
    start_node bench-setup 18180
    pid=${PIDS[-1]}
    "$LT" --targets "http://127.0.0.1:$STARTED_PORT" --json "$3" agents --admin-user lt-admin \
        --admin-password "$pw" --count "$1" --max-chats "$2" --parallel 4 >/dev/null
    stop_pids "$pid"
}

# Starts a bare relay process (loadtest/peers/relay) on the first free port from $2, on the
# Redis at RP (RELAY_ECHO=1: the sender gets its own entry too; RELAY_SHARED=1: scripts on
# the subscriber connection, as Switchboard does); sets STARTED_PORT; its PID is ${PIDS[-1]}.
start_relay() { # name first-port
    start_server "$1" "$2" env PORT=@PORT@ REDIS_URL="redis://127.0.0.1:$RP" RELAY_ECHO="${RELAY_ECHO:-0}" RELAY_SHARED="${RELAY_SHARED:-0}" "$RELAY"
}

# Starts relay processes A and B on free ports from $1.
start_relay_pair() {
    start_pair start_relay relay "${1:-18080}"
}

# Starts one Socket.IO peer process (loadtest/peers/socketio) on the first free port from $2
# with adapter $3; sets STARTED_PORT; its PID is ${PIDS[-1]}.
start_peer() { # name first-port adapter
    start_server "$1" "$2" env PORT=@PORT@ REDIS_URL="redis://127.0.0.1:$RP" node "$ROOT/loadtest/peers/socketio/server.js" "$3"
    for _ in $(seq 100); do grep -q '^socketio-peer ready' "$WORK/$1.log" && return 0; sleep 0.1; done
    echo "peer $1 printed no ready line; log:" >&2
    cat "$WORK/$1.log" >&2
    exit 1
}

# Counts the system calls of the load generator ($1, a PID), both servers and Redis over $2 s
# (perf stat on the syscall tracepoints, in the background), into $3-NAME.csv; sets
# SYSCALL_STATS (name=csv, for loadtest/syscall-table.py) and SYSCALL_COUNTERS (PIDs to wait).
count_syscalls() { # loadtest-pid seconds out-prefix
    local events p
    events=$(printf 'syscalls:sys_enter_%s,' sendto recvfrom write writev read epoll_wait futex)
    SYSCALL_STATS=() SYSCALL_COUNTERS=()
    for p in loadtest="$1" node-a="$NODE_A" node-b="$NODE_B" redis="$REDIS_PID"; do
        perf stat -x, -e "${events%,}" -p "${p#*=}" -o "$3-${p%%=*}.csv" -- sleep "$2" &
        SYSCALL_COUNTERS+=($!)
        SYSCALL_STATS+=("${p%%=*}=$3-${p%%=*}.csv")
    done
}

# Starts a chat in the background and returns once its measured window has begun (the
# set-up, agents' logins hashing passwords included, stays out of what is measured next);
# sets LT_PID. The load generator's stderr goes to $1.
chat_measuring() { # log-file load-generator-arguments...
    local log=$1
    shift
    "$LT" "$@" 2>"$log" &
    LT_PID=$!
    for _ in $(seq 240); do
        grep -q '] measure' "$log" && break
        sleep 0.5
    done
}

# What the figures were measured on (after a first line of the caller's own).
machine_info() {
    echo "nproc=$(nproc)"
    grep -m1 'model name' /proc/cpuinfo
    grep MemTotal /proc/meminfo
    echo "open files: soft $(ulimit -Sn) hard $(ulimit -Hn)"
    redis-server --version
    git -C "$ROOT" rev-parse HEAD 2>/dev/null || true
}
