#!/usr/bin/env python3
"""The side-by-side table of loadtest/compare.sh, from its JSON reports (standard library only).

    python3 loadtest/compare-table.py loadtest/results/RUN  >  RUN/compare.md

Reads RUN/<system>-<n>/{chat-<rate>,ramp,idle}.json for the systems ours, classic and sharded
and prints a markdown table: for each figure, the median and the spread (min-max) of the runs
per system, and ours divided by the better of the two peer variants (which one is named).
"""

import json
import re
import statistics
import sys
from pathlib import Path

SYSTEMS = ["ours", "classic", "sharded"]
# Steal (percent of one core) above which a window is named under the table.
STEAL_NOTED = 10
PEERS = ["classic", "sharded"]


def load(run_dir):
    """{system: [{scenario_file_stem: report}, ...one per run]}"""
    out = {s: [] for s in SYSTEMS}
    for d in sorted(run_dir.iterdir()):
        m = re.fullmatch(r"(ours|classic|sharded)-(\d+)", d.name)
        if not m or not d.is_dir():
            continue
        reports = {}
        for f in d.glob("*.json"):
            try:
                reports[f.stem] = json.loads(f.read_text())
            except (OSError, ValueError) as e:
                print(f"warning: {f}: {e}", file=sys.stderr)
        out[m.group(1)].append(reports)
    return out


def dig(v, *path):
    for p in path:
        if isinstance(v, dict):
            v = v.get(p)
        elif isinstance(v, list) and isinstance(p, int) and p < len(v):
            v = v[p]
        else:
            return None
    return v


def cpu(report, prefix):
    """Summed CPU (% of one core) of the processes whose name starts with prefix."""
    c = dig(report, "result", "window", "cpu_percent_of_one_core")
    if not isinstance(c, dict):
        return None
    vals = [v for k, v in c.items() if k.startswith(prefix) and isinstance(v, (int, float))]
    return sum(vals) if vals else None


def cpu_per_message(report):
    """Microseconds of CPU per delivered message over every process measured (load generator,
    both server processes, Redis)."""
    total = cpu(report, "")
    rate = num(dig(report, "result", "window", "delivered_rate"))
    if total is None or not rate:
        return None
    return total / 100.0 / rate * 1e6


def num(v):
    return v if isinstance(v, (int, float)) and not isinstance(v, bool) else None


def figures(rates):
    """(section, label, better, getter(reports) -> number or None)."""
    rows = []
    for rate in rates:
        f = f"chat-{rate}"
        sec = f"chat {int(rate):,} msg/s"
        lat = lambda q, f=f: lambda r: num(dig(r.get(f), "result", "window", "latency", q))
        lat_sent = lambda q, f=f: lambda r: num(
            dig(r.get(f), "result", "window", "latency_from_send", q))
        rows += [
            (sec, "latency p50 (ms)", "lower", lat("p50_ms")),
            (sec, "latency p90 (ms)", "lower", lat("p90_ms")),
            (sec, "latency p99 (ms)", "lower", lat("p99_ms")),
            (sec, "latency max (ms)", "lower", lat("max_ms")),
            (sec, "latency p50 from the actual send (ms)", "lower", lat_sent("p50_ms")),
            (sec, "latency p99 from the actual send (ms)", "lower", lat_sent("p99_ms")),
            (sec, "delivered (msg/s)", "higher",
             lambda r, f=f: num(dig(r.get(f), "result", "window", "delivered_rate"))),
            (sec, "server CPU, both processes (% of a core)", "lower",
             lambda r, f=f: cpu(r.get(f), "node")),
            (sec, "Redis CPU (% of a core)", "lower", lambda r, f=f: cpu(r.get(f), "redis")),
            (sec, "CPU per message, all four processes (us)", "lower",
             lambda r, f=f: cpu_per_message(r.get(f))),
            (sec, "context switches per message, all four processes", "lower",
             lambda r, f=f: num(dig(r.get(f), "result", "window", "context_switches_per_message", "all"))),
            (sec, "CPU stolen by the hypervisor (% of a core; the machine's, not a system's)", "info",
             lambda r, f=f: num(dig(r.get(f), "result", "window", "steal_percent_of_one_core"))),
            (sec, "lost", "lower", lambda r, f=f: num(dig(r.get(f), "result", "integrity", "lost"))),
            (sec, "duplicated + out of order", "lower",
             lambda r, f=f: sum_of(dig(r.get(f), "result", "integrity"), "duplicated", "out_of_order")),
        ]
    rows += [
        ("ramp", "highest rate held, p99 <= 50 ms (msg/s)", "higher",
         lambda r: num(dig(r.get("ramp"), "result", "highest_rate_held"))),
        ("ramp", "steps run", "info", lambda r: len(dig(r.get("ramp"), "result", "steps") or []) or None),
        ("ramp", "lost", "lower", lambda r: num(dig(r.get("ramp"), "result", "integrity", "lost"))),
        ("ramp", "duplicated + out of order", "lower",
         lambda r: sum_of(dig(r.get("ramp"), "result", "integrity"), "duplicated", "out_of_order")),
        ("idle", "connections held", "higher", lambda r: num(dig(r.get("idle"), "result", "connected"))),
        ("idle", "failed", "lower", lambda r: num(dig(r.get("idle"), "result", "failed"))),
        ("idle", "memory per connection, slope (B)", "lower",
         lambda r: num(dig(r.get("idle"), "result", "nodes", 0, "bytes_per_connection_slope"))),
        ("idle", "memory per connection, end minus start (B)", "lower",
         lambda r: num(dig(r.get("idle"), "result", "nodes", 0, "bytes_per_connection_end_minus_start"))),
        ("idle", "connect rate (/s)", "higher", lambda r: num(dig(r.get("idle"), "result", "connect_rate_per_s"))),
    ]
    return rows


def sum_of(d, *keys):
    if not isinstance(d, dict):
        return None
    vals = [num(d.get(k)) for k in keys]
    return None if any(v is None for v in vals) else sum(vals)


def fmt(v):
    if v is None:
        return "-"
    if abs(v) >= 100 or float(v).is_integer():
        return f"{v:,.0f}"
    if abs(v) >= 10:
        return f"{v:.1f}"
    return f"{v:.2f}"


def cell(vals):
    if not vals:
        return "-"
    med = statistics.median(vals)
    if len(vals) == 1:
        return fmt(med)
    return f"{fmt(med)} ({fmt(min(vals))}-{fmt(max(vals))})"


def ratio(better, ours, peers):
    """Ours over the better peer variant's median, and that variant."""
    if better not in ("lower", "higher") or ours is None:
        return "-"
    cands = [(m, p) for p, m in peers.items() if m is not None]
    if not cands:
        return "-"
    best, who = (min if better == "lower" else max)(cands)
    if best == 0:
        return f"= ({who})" if ours == 0 else f"ours {fmt(ours)} vs 0 ({who})"
    return f"{ours / best:.2f}x ({who})"


def main():
    if len(sys.argv) != 2:
        sys.exit("usage: compare-table.py RESULTS_DIR")
    run_dir = Path(sys.argv[1])
    data = load(run_dir)
    rates = sorted(
        {int(k.split("-", 1)[1]) for runs in data.values() for r in runs for k in r if k.startswith("chat-")}
    )
    runs = {s: len(data[s]) for s in SYSTEMS}
    out = []
    out.append(f"# Switchboard vs Socket.IO peer: {run_dir.name}\n")
    machine = run_dir / "machine.txt"
    if machine.exists():
        first = machine.read_text().splitlines()[:1]
        if first:
            out.append(f"`{first[0]}`\n")
    out.append(
        "Median of the runs, (min-max) when there are several; runs: "
        + ", ".join(f"{s} {runs[s]}" for s in SYSTEMS)
        + ". classic = `createAdapter` (PUBLISH/SUBSCRIBE), sharded = `createShardedAdapter`"
        " (SPUBLISH/SSUBSCRIBE). Ratio = ours / the better peer variant (named); whether lower or"
        " higher is better is in the second column. CPU: percent of one core over the measured"
        " window.\n"
    )
    out.append("| figure | better | ours | classic | sharded | ours / best peer |")
    out.append("| --- | --- | --- | --- | --- | --- |")
    problems = []
    for sec, label, better, get in figures(rates):
        vals = {s: [v for v in (get(r) for r in data[s]) if v is not None] for s in SYSTEMS}
        if not any(vals.values()):
            continue
        med = {s: statistics.median(v) if v else None for s, v in vals.items()}
        out.append(
            f"| {sec}: {label} | {better if better != 'info' else ''} | {cell(vals['ours'])} | "
            f"{cell(vals['classic'])} | {cell(vals['sharded'])} | "
            f"{ratio(better, med['ours'], {p: med[p] for p in PEERS})} |"
        )
        if label.startswith(("lost", "duplicated", "failed")):
            for s in SYSTEMS:
                if any(v > 0 for v in vals[s]):
                    problems.append(f"{s}: {sec} {label} {vals[s]}")
    notes = []
    for s in SYSTEMS:
        for i, r in enumerate(data[s], 1):
            for name, rep in sorted(r.items()):
                if rep.get("timed_out"):
                    problems.append(f"{s} run {i}: {name} passed --max-seconds")
                windows = [dig(rep, "result", "window")] + (dig(rep, "result", "steps") or [])
                steals = [num(dig(w, "steal_percent_of_one_core")) for w in windows]
                steal = max((v for v in steals if v is not None), default=None)
                if steal is not None and steal > STEAL_NOTED:
                    notes.append(
                        f"{s} run {i}: {name} had {steal:g} % of a core stolen by the host; "
                        "its figures say more about the machine than about the system"
                    )
            steps = dig(r.get("ramp"), "result", "steps") or []
            if steps and steps[-1].get("held"):
                notes.append(
                    f"{s} run {i}: the ramp ran out of steps still holding; its highest rate is a lower bound"
                )
    out.append("")
    if problems:
        out.append("Not clean:\n")
        out += [f"- {p}" for p in problems]
    else:
        out.append("Every run: 0 lost, 0 duplicated, 0 out of order, 0 failed connections.")
    if notes:
        out.append("")
        out += [f"- {n}" for n in notes]
    floors = [json.loads(f.read_text()) for f in sorted(run_dir.glob("floor-*.json"))]
    if floors:
        rtt = [num(dig(f, "result", "round_trip", "p99_ms")) for f in floors]
        late = [num(dig(f, "result", "wake_up_lateness", "p99_ms")) for f in floors]
        out.append("")
        out.append(
            "The machine's own floor at the start of each run (`switchboard-loadtest floor`: "
            "250-byte round trips between two threads over loopback, 1,000/s, no server): "
            f"round trip p99 {cell([v for v in rtt if v is not None])} ms, a sleeping thread "
            f"woken late by p99 {cell([v for v in late if v is not None])} ms."
        )
    print("\n".join(out))


if __name__ == "__main__":
    main()
