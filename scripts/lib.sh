# shellcheck shell=bash
# Helpers shared by scripts/services.sh, scripts/test and scripts/run. Sourced, never run.
# Everything here writes its chatter to stderr, so a script's stdout stays machine-readable
# (services.sh prints `export ...` lines there for `eval`).

# The repository root, whatever directory the caller was started from.
SB_ROOT=$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")/.." && pwd -P)
# Runtime state (pid files, logs, secrets, the local SQLite file); git-ignored as /.run.
SB_RUN="$SB_ROOT/.run"

sb_log() { printf '%s %s\n' "[${SB_SCRIPT:-switchboard}]" "$*" >&2; }
sb_die() { sb_log "error: $*"; exit 1; }

# Microseconds since the epoch, from bash's own clock (no `date` fork, no float maths).
sb_now_us() { local t=${EPOCHREALTIME/./}; printf '%s' "$((10#$t))"; }
# Formats a duration given in microseconds as seconds with one decimal, e.g. 12.3s.
sb_fmt_us() { local d=$(($1 / 100000)); printf '%d.%ds' "$((d / 10))" "$((d % 10))"; }

# True when something accepts a TCP connection on 127.0.0.1:$1. Uses bash's /dev/tcp so it works
# on a bare machine without ss/nc; `timeout` guards against a listener that never completes.
sb_port_open() {
    # shellcheck disable=SC2016  # $1 is the child bash's argument
    timeout 2 bash -c 'exec 3<>"/dev/tcp/127.0.0.1/$1"' _ "$1" 2>/dev/null
}

# Prints the first port >= $1 that nothing listens on (tries 200 ports). The caller still handles
# a lost race (someone binds it in between) by noticing the server failed to start.
sb_free_port() {
    local p=$1 end=$(($1 + 200))
    while ((p < end)); do
        if ! sb_port_open "$p"; then printf '%s\n' "$p"; return 0; fi
        p=$((p + 1))
    done
    sb_die "no free TCP port in $1..$((end - 1))"
}

# True while process $1 exists and is not a zombie (a daemon whose parent is a PID 1 that does
# not reap would otherwise look alive forever to `kill -0`).
sb_pid_alive() {
    local pid=$1 state
    [[ $pid =~ ^[0-9]+$ ]] || return 1
    kill -0 "$pid" 2>/dev/null || return 1
    state=$(awk '{print $3}' "/proc/$pid/stat" 2>/dev/null) || return 1
    [[ $state != Z ]]
}

# True when process $1's command line contains $2: checked before we signal a pid read from a
# pid file, so a stale file whose pid was reused by an unrelated process never gets it killed.
sb_pid_is() {
    local cmd
    cmd=$(tr '\0' ' ' <"/proc/$1/cmdline" 2>/dev/null) || return 1
    [[ $cmd == *"$2"* ]]
}

# Sends $2 (a signal name) to pid $1, then waits up to $3 seconds for it to go; escalates to KILL.
sb_stop_pid() {
    local pid=$1 sig=$2 wait_s=$3 i
    sb_pid_alive "$pid" || return 0
    kill -s "$sig" "$pid" 2>/dev/null || true
    for ((i = 0; i < wait_s * 10; i++)); do
        sb_pid_alive "$pid" || return 0
        sleep 0.1
    done
    sb_log "pid $pid did not exit after SIG$sig within ${wait_s}s; sending KILL"
    kill -s KILL "$pid" 2>/dev/null || true
    for ((i = 0; i < 50; i++)); do
        sb_pid_alive "$pid" || return 0
        sleep 0.1
    done
    sb_log "pid $pid is still there"
    return 1
}

# apt-get install for the named packages, as root (or through sudo when there is one).
# `apt-get update` runs once: its stamp in .run/ is shared by every script of one run (services.sh
# and scripts/test are separate processes) and trusted for an hour. If an install still fails with
# skipped update, the lists may be stale: update and try once more.
sb_apt_install() {
    local -a sudo=()
    if ((EUID != 0)); then
        command -v sudo >/dev/null 2>&1 || sb_die "need root (or sudo) to apt-get install $*"
        sudo=(sudo -n)
    fi
    command -v apt-get >/dev/null 2>&1 || sb_die "apt-get not found; install by hand: $*"
    mkdir -p "$SB_RUN"
    local stamp="$SB_RUN/apt-updated" updated=0
    # DPkg::Lock::Timeout waits for another apt/dpkg instead of failing at once.
    local -a apt=("${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get -q -o DPkg::Lock::Timeout=300)
    if [[ -z $(find "$stamp" -mmin -60 2>/dev/null) ]]; then
        sb_log "apt-get update"
        "${apt[@]}" update >&2 </dev/null
        touch "$stamp"
        updated=1
    fi
    sb_log "apt-get install -y $*"
    if ! "${apt[@]}" install -y --no-install-recommends "$@" >&2 </dev/null; then
        ((updated)) && return 1
        sb_log "install failed; refreshing package lists and retrying"
        "${apt[@]}" update >&2 </dev/null
        touch "$stamp"
        "${apt[@]}" install -y --no-install-recommends "$@" >&2 </dev/null
    fi
}

# HTTP status code of GET http://127.0.0.1:$1$2 ("000" when nothing answers). curl when present,
# else a raw HTTP/1.0 request over /dev/tcp, so a bare machine needs no extra package.
sb_http_status() {
    local port=$1 path=$2
    if command -v curl >/dev/null 2>&1; then
        curl -s -o /dev/null -m 3 -w '%{http_code}' "http://127.0.0.1:$port$path" 2>/dev/null || printf '000'
        return 0
    fi
    local line
    # shellcheck disable=SC2016  # the child bash expands these, not us
    line=$(timeout 3 bash -c '
        exec 3<>"/dev/tcp/127.0.0.1/$1" || exit 1
        printf "GET %s HTTP/1.0\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n" "$2" >&3
        IFS= read -r l <&3 && printf "%s" "$l"' _ "$port" "$path" 2>/dev/null) || line=""
    if [[ $line =~ ^HTTP/[0-9.]+\ ([0-9]{3}) ]]; then printf '%s' "${BASH_REMATCH[1]}"; else printf '000'; fi
}

# Random lowercase hex of $1 bytes from the kernel (no openssl needed).
sb_random_hex() { od -An -N"$1" -tx1 /dev/urandom | tr -d ' \n'; }
