#!/usr/bin/env bash
# Makes sure a Redis (>= 7.0) and a PostgreSQL are reachable for Switchboard's tests.
#
# Usage
#   eval "$(scripts/services.sh env)"        Redis + PostgreSQL; exports the variables below
#   eval "$(scripts/services.sh env redis)"  Redis only (scripts/run: the local run uses SQLite)
#   eval "$(scripts/services.sh env pg)"     PostgreSQL only
#   source scripts/services.sh [env] [all|redis|pg]   the same, in the current shell
#   scripts/services.sh stop [all|redis|pg]  stops only what this script started, by pid file
#   scripts/services.sh status               what is recorded in .run/ and whether it is alive
#
# `env` prints to stdout only `export NAME=VALUE` lines (all chatter goes to stderr):
#   SWITCHBOARD_TEST_REDIS_URL    e.g. redis://127.0.0.1:6379
#   SWITCHBOARD_TEST_PG_URL       e.g. postgres://postgres@127.0.0.1:5432/test
#   SWITCHBOARD_SERVICES_STARTED  what THIS call started anew ("", "redis", "pg" or "redis pg"),
#                                 so a caller can stop exactly that and nothing it merely reused.
# Use `out=$(scripts/services.sh env) && eval "$out"` in scripts with `set -e`: a failure inside
# `eval "$(...)"` is otherwise swallowed.
#
# What it does
#   Redis: reuse whatever answers PING on 127.0.0.1:$SWITCHBOARD_REDIS_PORT (default 6379) and is
#   >= 7.0; else reuse the instance a previous call started; else start a throw-away one
#   (no persistence, daemonized, pid file .run/redis-PORT.pid) on the first free port from
#   $SWITCHBOARD_REDIS_OWN_PORT (default 16379). With `all` it also installs redis-sentinel and
#   redis-tools when missing (the tests start Sentinel/Cluster topologies themselves).
#   PostgreSQL: reuse 127.0.0.1:$SWITCHBOARD_PG_PORT (default 5432) when user postgres can log in
#   to database `test` without a password; else reuse the cluster a previous call started; else
#   initdb a trust-auth throw-away cluster (as user postgres when we are root, in
#   /tmp/switchboard-pg-PORT; else in .run/pg) on the first free port from
#   $SWITCHBOARD_PG_OWN_PORT (default 15432), and create database `test`.
#   Missing packages come from apt-get (update once, then install), non-interactively.
#   State lives in .run/ (redis.port, redis-PORT.pid, pg.port, pg.datadir), so a second call
#   reuses what the first started, and `stop` touches nothing else: never a kill by name.

# Sourced: run ourselves as a child (so our `set -euo pipefail` and helpers don't leak into the
# caller's shell) and eval its exports here. Must come before `set`.
if [[ ${BASH_SOURCE[0]} != "$0" ]]; then
    [[ ${1:-} == env ]] && shift
    __sb_services_out=$(bash "${BASH_SOURCE[0]}" env "$@") && eval "$__sb_services_out"
    __sb_services_rc=$?
    unset __sb_services_out
    # shellcheck disable=SC2317  # reached only when sourced
    return "$__sb_services_rc" 2>/dev/null || exit "$__sb_services_rc"
fi

set -euo pipefail

SB_SCRIPT=services
# shellcheck source=scripts/lib.sh
source "$(dirname -- "${BASH_SOURCE[0]}")/lib.sh"

REDIS_PROBE_PORT=${SWITCHBOARD_REDIS_PORT:-6379}
PG_PROBE_PORT=${SWITCHBOARD_PG_PORT:-5432}
REDIS_OWN_BASE=${SWITCHBOARD_REDIS_OWN_PORT:-16379}
PG_OWN_BASE=${SWITCHBOARD_PG_OWN_PORT:-15432}
STARTED=()

# ---------------------------------------------------------------- Redis

# One command to the Redis on port $1, reply on stdout. redis-cli when installed; else the inline
# protocol over /dev/tcp (enough for PING and INFO), so reuse needs nothing installed.
redis_cmd() {
    local port=$1
    shift
    if command -v redis-cli >/dev/null 2>&1; then
        timeout 3 redis-cli --no-auth-warning -h 127.0.0.1 -p "$port" "$@" 2>/dev/null | tr -d '\r'
        return 0
    fi
    # shellcheck disable=SC2016  # the child bash expands these, not us
    timeout 3 bash -c '
        exec 3<>"/dev/tcp/127.0.0.1/$1" || exit 1
        shift
        printf "%s\r\n" "$*" >&3
        IFS= read -r first <&3 || exit 1
        case $first in
            \$*) # bulk reply (INFO): read lines until the announced length is consumed
                 n=${first//[^0-9]/}; got=0
                 while (( got < n )) && IFS= read -r l <&3; do
                     printf "%s\n" "$l"; got=$(( got + ${#l} + 1 ))
                 done ;;
            *) printf "%s\n" "${first#+}" ;;
        esac' _ "$port" "$@" 2>/dev/null | tr -d '\r'
}

redis_pings() { [[ $(redis_cmd "$1" PING) == PONG ]]; }

# True when the Redis on port $1 answers and is version 7 or later (sharded pub/sub, functions).
redis_usable() {
    redis_pings "$1" || return 1
    local v
    v=$(redis_cmd "$1" INFO server | sed -n 's/^redis_version:\([0-9][0-9.]*\).*/\1/p')
    if [[ -z $v || ${v%%.*} -lt 7 ]]; then
        sb_log "Redis on port $1 is version '${v:-?}', need >= 7.0; not reusing it"
        return 1
    fi
}

# Installs what is missing. $1=all: also the client and Sentinel (later tests start their own
# topologies); otherwise only what starting a standalone server needs.
ensure_redis_packages() {
    local -a missing=()
    command -v redis-server >/dev/null 2>&1 || missing+=(redis-server)
    command -v redis-cli >/dev/null 2>&1 || missing+=(redis-tools)
    if [[ $1 == all ]]; then
        command -v redis-sentinel >/dev/null 2>&1 || missing+=(redis-sentinel)
    fi
    ((${#missing[@]} == 0)) || sb_apt_install "${missing[@]}"
    local v
    v=$(redis-server --version | sed -n 's/.*v=\([0-9][0-9.]*\).*/\1/p')
    [[ -n $v && ${v%%.*} -ge 7 ]] || sb_die "redis-server is version '${v:-?}'; Switchboard needs >= 7.0"
}

# Pid of the Redis we started earlier, if it is still that Redis; else "" (and stale state removed).
own_redis_pid() {
    [[ -f $SB_RUN/redis.port ]] || return 0
    local port pid=""
    port=$(<"$SB_RUN/redis.port")
    [[ -f $SB_RUN/redis-$port.pid ]] && pid=$(<"$SB_RUN/redis-$port.pid")
    if [[ -n $pid ]] && sb_pid_alive "$pid" && sb_pid_is "$pid" redis-server; then
        printf '%s' "$pid"
        return 0
    fi
    sb_log "forgetting stale Redis state (port $port, pid ${pid:-none})"
    rm -f "$SB_RUN/redis.port" "$SB_RUN/redis-$port.pid"
}

ensure_redis() {
    local mode=$1 port pid
    [[ $mode == all ]] && ensure_redis_packages all
    if redis_usable "$REDIS_PROBE_PORT"; then
        sb_log "reusing Redis on 127.0.0.1:$REDIS_PROBE_PORT"
        REDIS_URL="redis://127.0.0.1:$REDIS_PROBE_PORT"
        return 0
    fi
    pid=$(own_redis_pid)
    if [[ -n $pid ]]; then
        port=$(<"$SB_RUN/redis.port")
        if redis_pings "$port"; then
            sb_log "reusing the Redis this script started (127.0.0.1:$port, pid $pid)"
            REDIS_URL="redis://127.0.0.1:$port"
            return 0
        fi
    fi
    ensure_redis_packages "$mode"
    # Installing may have started the distribution's own service on the standard port.
    if redis_usable "$REDIS_PROBE_PORT"; then
        REDIS_URL="redis://127.0.0.1:$REDIS_PROBE_PORT"
        return 0
    fi
    local attempt i next=$REDIS_OWN_BASE
    for attempt in 1 2 3; do
        port=$(sb_free_port "$next")
        next=$((port + 1))
        rm -f "$SB_RUN/redis-$port.pid"
        sb_log "starting a throw-away Redis on 127.0.0.1:$port (attempt $attempt)"
        # --save '' --appendonly no: nothing on disk. --daemonize + --pidfile: we stop it by pid.
        if redis-server --port "$port" --bind 127.0.0.1 --save '' --appendonly no \
            --daemonize yes --pidfile "$SB_RUN/redis-$port.pid" --dir "$SB_RUN" \
            --logfile "$SB_RUN/redis-$port.log" >&2 </dev/null 9>&-; then
            for ((i = 0; i < 100; i++)); do
                if redis_pings "$port"; then
                    printf '%s\n' "$port" >"$SB_RUN/redis.port"
                    REDIS_URL="redis://127.0.0.1:$port"
                    STARTED+=(redis)
                    sb_log "Redis up on 127.0.0.1:$port (pid $(cat "$SB_RUN/redis-$port.pid" 2>/dev/null || echo '?'))"
                    return 0
                fi
                sleep 0.1
            done
        fi
        # Lost a race for the port, or it failed: show why, clean up only our own pid, retry.
        tail -n 5 "$SB_RUN/redis-$port.log" >&2 2>/dev/null || true
        if [[ -f $SB_RUN/redis-$port.pid ]]; then
            pid=$(<"$SB_RUN/redis-$port.pid")
            sb_pid_is "$pid" redis-server && sb_stop_pid "$pid" TERM 5
            rm -f "$SB_RUN/redis-$port.pid"
        fi
    done
    sb_die "could not start redis-server (see $SB_RUN/redis-*.log)"
}

stop_redis() {
    local pid port
    if [[ ! -f $SB_RUN/redis.port ]]; then
        sb_log "Redis: nothing started by this script"
        return 0
    fi
    port=$(<"$SB_RUN/redis.port")
    pid=$(own_redis_pid)
    if [[ -n $pid ]]; then
        sb_log "stopping Redis on 127.0.0.1:$port (pid $pid)"
        sb_stop_pid "$pid" TERM 10
    fi
    rm -f "$SB_RUN/redis.port" "$SB_RUN/redis-$port.pid"
}

# ---------------------------------------------------------------- PostgreSQL

# Newest server bin directory (initdb, pg_ctl, postgres), or "" when no server is installed.
pg_bindir() {
    local d best=""
    for d in /usr/lib/postgresql/*/bin; do
        [[ -x $d/initdb && -x $d/pg_ctl ]] && best=$(printf '%s\n%s\n' "$best" "$d" | sort -V | tail -n 1)
    done
    printf '%s' "$best"
}

# psql / pg_isready: from PATH, else from the server's bin directory.
pg_client() {
    local d
    if command -v "$1" >/dev/null 2>&1; then command -v "$1"; return 0; fi
    d=$(pg_bindir)
    [[ -n $d && -x $d/$1 ]] && printf '%s\n' "$d/$1"
}

pg_sql() { # port db sql: runs as user postgres over TCP; -w: never prompt (trust only)
    local psql
    psql=$(pg_client psql) || return 1
    timeout 10 "$psql" -X -w -q -tA -h 127.0.0.1 -p "$1" -U postgres -d "$2" -c "$3" 2>/dev/null </dev/null
}

# True when 127.0.0.1:$1 lets postgres into database `test` without a password. A server that lets
# postgres in but lacks `test` gets it created (that is all our tests need of it).
pg_usable() {
    local isready
    isready=$(pg_client pg_isready) || return 1
    "$isready" -q -h 127.0.0.1 -p "$1" -t 3 </dev/null || return 1
    [[ $(pg_sql "$1" test 'select 1') == 1 ]] && return 0
    if [[ $(pg_sql "$1" postgres 'select 1') == 1 ]] &&
        [[ -z $(pg_sql "$1" postgres "select 1 from pg_database where datname = 'test'") ]]; then
        sb_log "creating database test on 127.0.0.1:$1"
        pg_sql "$1" postgres 'create database test' >/dev/null || return 1
        [[ $(pg_sql "$1" test 'select 1') == 1 ]] && return 0
    fi
    return 1
}

# Pid of the postmaster we started earlier, if still running; else "" (stale state removed).
own_pg_pid() {
    [[ -f $SB_RUN/pg.datadir ]] || return 0
    local dir pid=""
    dir=$(<"$SB_RUN/pg.datadir")
    [[ -f $dir/postmaster.pid ]] && pid=$(head -n 1 "$dir/postmaster.pid")
    if [[ -n $pid ]] && sb_pid_alive "$pid" && sb_pid_is "$pid" postgres; then
        printf '%s' "$pid"
        return 0
    fi
    sb_log "forgetting stale PostgreSQL state ($dir, pid ${pid:-none})"
    remove_pg_datadir "$dir"
    rm -f "$SB_RUN/pg.port" "$SB_RUN/pg.datadir"
}

# Deletes a data directory, but only one of the two shapes this script creates.
remove_pg_datadir() {
    case $1 in
        /tmp/switchboard-pg-[0-9]* | "$SB_RUN/pg") rm -rf -- "$1" ;;
        *) sb_log "not deleting unexpected data directory '$1'" ;;
    esac
}

ensure_pg() {
    local port pid bindir dir
    # Without client tools we cannot judge an existing server; fetch them only if one is there.
    if ! pg_client psql >/dev/null || ! pg_client pg_isready >/dev/null; then
        sb_port_open "$PG_PROBE_PORT" && sb_apt_install postgresql-client
    fi
    if pg_usable "$PG_PROBE_PORT"; then
        sb_log "reusing PostgreSQL on 127.0.0.1:$PG_PROBE_PORT"
        PG_URL="postgres://postgres@127.0.0.1:$PG_PROBE_PORT/test"
        return 0
    fi
    pid=$(own_pg_pid)
    if [[ -n $pid ]]; then
        port=$(<"$SB_RUN/pg.port")
        if pg_usable "$port"; then
            sb_log "reusing the PostgreSQL this script started (127.0.0.1:$port, pid $pid)"
            PG_URL="postgres://postgres@127.0.0.1:$port/test"
            return 0
        fi
        sb_log "our PostgreSQL (pid $pid) does not answer; replacing it"
        stop_pg
    fi
    bindir=$(pg_bindir)
    if [[ -z $bindir ]]; then
        sb_apt_install postgresql
        bindir=$(pg_bindir)
        [[ -n $bindir ]] || sb_die "no initdb under /usr/lib/postgresql/*/bin after installing postgresql"
        # The package may have started its own cluster on the standard port (usually with
        # password auth for TCP, so this rarely succeeds, but reuse it when it does).
        if pg_usable "$PG_PROBE_PORT"; then
            PG_URL="postgres://postgres@127.0.0.1:$PG_PROBE_PORT/test"
            return 0
        fi
    fi

    # PostgreSQL refuses to run as root: as root, the cluster belongs to the `postgres` user
    # (created by the package) and lives where that user can write.
    local -a as=()
    port=$(sb_free_port "$PG_OWN_BASE")
    if ((EUID == 0)); then
        id postgres >/dev/null 2>&1 || sb_die "running as root but there is no 'postgres' user to own the cluster"
        as=(runuser -u postgres --)
        dir=/tmp/switchboard-pg-$port
    else
        dir=$SB_RUN/pg
    fi
    remove_pg_datadir "$dir"
    mkdir -p "$dir"
    ((EUID == 0)) && chown postgres: "$dir"
    chmod 700 "$dir"
    # Record before starting, so `stop` can clean up even after a half-finished start.
    printf '%s\n' "$port" >"$SB_RUN/pg.port"
    printf '%s\n' "$dir" >"$SB_RUN/pg.datadir"

    sb_log "initdb $dir (PostgreSQL $(basename "$(dirname "$bindir")"), trust auth)"
    # cd /tmp: the postgres user may not be able to read the caller's working directory.
    (cd /tmp && "${as[@]}" "$bindir/initdb" -D "$dir" -A trust -U postgres -E UTF8 --locale=C \
        --no-sync >"$dir.initdb.log" 2>&1 9>&-) || {
        cat "$dir.initdb.log" >&2
        sb_die "initdb failed"
    }
    rm -f "$dir.initdb.log"
    # Throw-away cluster: durability off for speed; loopback only; socket in /tmp.
    sb_log "starting PostgreSQL on 127.0.0.1:$port"
    (cd /tmp && "${as[@]}" "$bindir/pg_ctl" -D "$dir" -l "$dir/postgres.log" -w -t 60 \
        -o "-p $port -k /tmp -c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=200" \
        start >&2 </dev/null 9>&-) || {
        tail -n 20 "$dir/postgres.log" >&2 || true
        sb_die "pg_ctl start failed"
    }
    STARTED+=(pg)
    pg_sql "$port" postgres 'create database test' >/dev/null || sb_die "could not create database test"
    pg_usable "$port" || sb_die "the new PostgreSQL on port $port does not accept postgres@test"
    sb_log "PostgreSQL up on 127.0.0.1:$port (pid $(head -n 1 "$dir/postmaster.pid"))"
    PG_URL="postgres://postgres@127.0.0.1:$port/test"
}

stop_pg() {
    local pid dir
    if [[ ! -f $SB_RUN/pg.datadir ]]; then
        sb_log "PostgreSQL: nothing started by this script"
        return 0
    fi
    dir=$(<"$SB_RUN/pg.datadir")
    pid=$(own_pg_pid)
    if [[ -n $pid ]]; then
        # SIGINT = PostgreSQL's "fast" shutdown: disconnect clients, stop cleanly.
        sb_log "stopping PostgreSQL in $dir (pid $pid)"
        sb_stop_pid "$pid" INT 30
        remove_pg_datadir "$dir"
    fi
    rm -f "$SB_RUN/pg.port" "$SB_RUN/pg.datadir"
}

# ---------------------------------------------------------------- main

status() {
    local pid
    pid=$(own_redis_pid)
    if [[ -n $pid ]]; then
        echo "redis: started by this script, 127.0.0.1:$(<"$SB_RUN/redis.port"), pid $pid"
    else
        echo "redis: none started by this script"
    fi
    redis_pings "$REDIS_PROBE_PORT" && echo "redis: something answers PING on 127.0.0.1:$REDIS_PROBE_PORT"
    pid=$(own_pg_pid)
    if [[ -n $pid ]]; then
        echo "pg: started by this script, 127.0.0.1:$(<"$SB_RUN/pg.port"), pid $pid, data $(<"$SB_RUN/pg.datadir")"
    else
        echo "pg: none started by this script"
    fi
    pg_usable "$PG_PROBE_PORT" && echo "pg: postgres@test usable on 127.0.0.1:$PG_PROBE_PORT"
    return 0
}

main() {
    local cmd=${1:-env} what=${2:-all}
    case $what in all | redis | pg) ;; *) sb_die "unknown service '$what' (all, redis or pg)" ;; esac
    mkdir -p "$SB_RUN"
    # One caller at a time: two test runs starting at once must not both start a server.
    # Fd 9 holds the lock; every server we start gets `9>&-`, else the daemon would inherit the
    # descriptor and keep the lock held forever.
    if command -v flock >/dev/null 2>&1; then
        exec 9>"$SB_RUN/services.lock"
        flock -w 600 9 || sb_die "timed out waiting for $SB_RUN/services.lock"
    fi
    case $cmd in
        env)
            REDIS_URL="" PG_URL=""
            [[ $what == pg ]] || ensure_redis "$what"
            [[ $what == redis ]] || ensure_pg
            [[ -n $REDIS_URL ]] && printf 'export SWITCHBOARD_TEST_REDIS_URL=%q\n' "$REDIS_URL"
            [[ -n $PG_URL ]] && printf 'export SWITCHBOARD_TEST_PG_URL=%q\n' "$PG_URL"
            printf 'export SWITCHBOARD_SERVICES_STARTED=%q\n' "${STARTED[*]}"
            ;;
        stop)
            [[ $what == pg ]] || stop_redis
            [[ $what == redis ]] || stop_pg
            ;;
        status) status ;;
        -h | --help | help) sed -n '2,/^$/{s/^# \{0,1\}//;p}' "${BASH_SOURCE[0]}" ;;
        *) sb_die "unknown command '$cmd' (env, stop, status)" ;;
    esac
}

main "$@"
