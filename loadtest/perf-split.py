#!/usr/bin/env python3
"""Where the CPU went, per process, from a system-wide `perf record -a -e cpu-clock` profile:
each process's share of the machine split into kernel and user space, and its hottest
functions. Standard library only.

    perf script -i perf.data -F pid,ip,sym,dso -G | python3 loadtest/perf-split.py NCPU name=PID ...

Samples are counted per process (all its threads). CPU is in percent of one core (NCPU * 100
is the whole machine), from each process's share of all samples, idle included. Samples of
processes not named are summed as "other". A halted virtual CPU can miss clock samples, so
idle may be under-counted and the busy shares come out somewhat high (compare the load
tester's CPU figures from /proc); a process's kernel share does not depend on that.
"""

import collections
import re
import sys

LINE = re.compile(r"^\s*(\d+)\s+([0-9a-f]+)\s+(.*?)\s*\((.*)\)\s*$")
TOP = 8


def main():
    if len(sys.argv) < 3:
        sys.exit("usage: perf script -F pid,ip,sym,dso -G | perf-split.py NCPU name=PID ...")
    ncpu = int(sys.argv[1])
    names = {}
    for a in sys.argv[2:]:
        name, _, pid = a.partition("=")
        names[int(pid)] = name
    total = 0
    split = collections.defaultdict(lambda: [0, 0])  # name -> [kernel, user]
    syms = collections.defaultdict(collections.Counter)  # name -> (space, symbol) -> samples
    for line in sys.stdin:
        m = LINE.match(line)
        if not m:
            continue
        pid, sym, dso = int(m.group(1)), m.group(3), m.group(4)
        total += 1
        who = "idle" if pid == 0 else names.get(pid, "other")
        kernel = dso == "[kernel.kallsyms]"
        split[who][0 if kernel else 1] += 1
        if who in names.values():
            sym = re.sub(r"\+0x[0-9a-f]+$", "", sym) or "[unknown]"
            syms[who][("kernel" if kernel else "user", sym)] += 1
    if total == 0:
        sys.exit("no samples read")

    def pct(n):
        return f"{n / total * ncpu * 100:.1f}"

    print("| process | CPU (% of one core) | in the kernel | in user space | kernel share |")
    print("| --- | --- | --- | --- | --- |")
    for who in list(names.values()) + ["other", "idle"]:
        k, u = split.get(who, (0, 0))
        if k + u == 0:
            continue
        share = f"{k / (k + u) * 100:.0f} %" if who != "idle" else "-"
        print(f"| {who} | {pct(k + u)} | {pct(k)} | {pct(u)} | {share} |")
    print(f"\n{total} samples on {ncpu} CPUs.\n")
    for who in names.values():
        if not syms[who]:
            continue
        print(f"Hottest functions of {who} (self time, % of one core):\n")
        for (space, sym), n in syms[who].most_common(TOP):
            print(f"- {pct(n)} {space}: `{sym[:100]}`")
        print()


if __name__ == "__main__":
    main()
