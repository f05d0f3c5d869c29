#!/usr/bin/env bash
# Samples, once a second until stopped, what a `wide` run holds: for each node its open sockets
# (file descriptors that are sockets) and resident memory, and Redis's resident memory.
#
#   loadtest/wide-sample.sh OUT.tsv REDIS_PID NODE_PID...
#
# Writes one line a second to OUT.tsv: unix time, then `sockets rss_kib` per node, then Redis's
# rss_kib. Reads /proc only; stops on SIGTERM (run-bench.sh stops it by its PID).
set -euo pipefail
out=$1 redis=$2
shift 2
rss() { awk '/^VmRSS:/ {print $2}' "/proc/$1/status" 2>/dev/null || echo 0; }
sockets() { find "/proc/$1/fd" -lname 'socket:*' 2>/dev/null | wc -l; }
{
    printf 'time'
    for p in "$@"; do printf '\tsockets_%s\trss_kib_%s' "$p" "$p"; done
    printf '\tredis_rss_kib\n'
} >"$out"
while true; do
    line=$(date +%s)
    for p in "$@"; do line+=$'\t'"$(sockets "$p")"$'\t'"$(rss "$p")"; done
    line+=$'\t'"$(rss "$redis")"
    echo "$line" >>"$out"
    sleep 1
done
