#!/usr/bin/env python3
"""System calls per message, per process, from `perf stat -x,` counts of syscall tracepoints
taken over a chat window. Standard library only.

    syscall-table.py CHAT_JSON SECONDS name=STAT_CSV ... [commandstats=INFO_TXT]

CHAT_JSON is the load tester's chat report (its delivered rate is the messages per second);
each STAT_CSV is what `perf stat -x, -e syscalls:sys_enter_X,... -p PID -- sleep SECONDS`
wrote for one process. Prints a Markdown table: one row a process, one column a system call,
in calls per delivered message. With `commandstats=`, Redis's `INFO commandstats` taken over
the same window (after `CONFIG RESETSTAT`), a second table: each command's calls and the
time Redis spent executing it, per delivered message (a script's commands count inside it as
well as under their own names).
"""

import json
import sys


def counts(path):
    """{syscall: count} from a perf stat CSV (value,unit,event,...)."""
    out = {}
    with open(path) as f:
        for line in f:
            parts = line.strip().split(",")
            if len(parts) < 3 or not parts[0].replace(".", "", 1).isdigit():
                continue
            event = parts[2].rsplit(":", 1)[-1].removeprefix("sys_enter_")
            out[event] = int(float(parts[0]))
    return out


def commandstats(path):
    """[(command, calls, usec)] from `INFO commandstats` (cmdstat_X:calls=N,usec=N,...)."""
    out = []
    with open(path) as f:
        for line in f:
            name, _, fields = line.strip().partition(":")
            if not name.startswith("cmdstat_"):
                continue
            kv = dict(p.split("=", 1) for p in fields.split(","))
            out.append((name.removeprefix("cmdstat_"), int(kv["calls"]), int(kv["usec"])))
    return sorted(out, key=lambda c: -c[2])


def print_commandstats(path, messages):
    rows = commandstats(path)
    print()
    print("Redis commands per delivered message over the same window (`INFO commandstats`): calls, "
          "and time executing them (µs); commands a script runs count under their own names "
          "as well as inside the script's time.")
    print()
    print("| command | calls per message | µs per call | µs per message |")
    print("| --- | --- | --- | --- |")
    for name, calls, usec in rows:
        if calls / messages < 0.001:
            continue
        print(f"| `{name}` | {calls / messages:.3f} | {usec / max(calls, 1):.2f} | {usec / messages:.2f} |")


def main():
    if len(sys.argv) < 4:
        sys.exit("usage: syscall-table.py CHAT_JSON SECONDS name=STAT_CSV ...")
    with open(sys.argv[1]) as f:
        rate = json.load(f)["result"]["window"]["delivered_rate"]
    seconds = float(sys.argv[2])
    messages = rate * seconds
    if messages <= 0:
        sys.exit("no messages delivered in the window")
    rows = []
    stats = None
    for arg in sys.argv[3:]:
        name, _, path = arg.partition("=")
        if name == "commandstats":
            stats = path
        else:
            rows.append((name, counts(path)))
    calls = sorted({c for _, cs in rows for c in cs})
    print(f"System calls per delivered message, {rate:,.0f} msg/s over {seconds:g} s "
          f"({messages:,.0f} messages), counted with perf stat on the syscall tracepoints.")
    print()
    print("| process | " + " | ".join(f"`{c}`" for c in calls) + " | all |")
    print("| --- |" + " --- |" * (len(calls) + 1))
    for name, cs in rows:
        per = [cs.get(c, 0) / messages for c in calls]
        print(f"| {name} | " + " | ".join(f"{p:.2f}" for p in per) + f" | {sum(per):.2f} |")
    if stats:
        print_commandstats(stats, messages)


if __name__ == "__main__":
    main()
