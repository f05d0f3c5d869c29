#!/usr/bin/env python3
"""System calls per message, per process, from `perf stat -x,` counts of syscall tracepoints
taken over a chat window. Standard library only.

    syscall-table.py CHAT_JSON SECONDS name=STAT_CSV ...

CHAT_JSON is the load tester's chat report (its delivered rate is the messages per second);
each STAT_CSV is what `perf stat -x, -e syscalls:sys_enter_X,... -p PID -- sleep SECONDS`
wrote for one process. Prints a Markdown table: one row a process, one column a system call,
in calls per delivered message.
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
    for arg in sys.argv[3:]:
        name, _, path = arg.partition("=")
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


if __name__ == "__main__":
    main()
