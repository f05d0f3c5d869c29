#!/usr/bin/env python3
"""The side-by-side table of loadtest/compare.sh, from its JSON reports (standard library only).

    python3 loadtest/compare-table.py RUN_DIR            # markdown table on stdout
    python3 loadtest/compare-table.py RUN_DIR --json F   # also the summary as JSON

Reads RUN_DIR/<system>-<n>/{chat-<rate>,ramp,idle}.json for the systems ours, relay and the
Socket.IO peer (classic or sharded) and prints, per figure, the median of the runs per system
(with the min-max spread when there are several), and ours divided by the relay and by the
peer. A ramp counts only if its whole run lost, duplicated and reordered nothing. A throughput
whose ramp held its last step is the ramp's end, not the system's limit: it is printed as
`≥ N`, and a ratio over it as a bound (`≤` / `≥`).
"""

import json
import re
import statistics
import sys
from pathlib import Path

SYSTEMS = ["ours", "relay", "classic", "sharded"]
NAMES = {"ours": "Switchboard", "relay": "bare relay", "classic": "Socket.IO classic",
         "sharded": "Socket.IO sharded"}
# Other work on the machine (percent of one core) above which a window is named as noisy.
OTHERS_NOTED = 15


def load(run_dir):
    """{system: [{scenario_file_stem: report}, ...one per run]}"""
    out = {s: [] for s in SYSTEMS}
    for d in sorted(run_dir.iterdir()):
        m = re.fullmatch(r"(ours|relay|classic|sharded)-(\d+)", d.name)
        if not m or not d.is_dir():
            continue
        reports = {}
        for f in d.glob("*.json"):
            try:
                reports[f.stem] = json.loads(f.read_text())
            except (OSError, ValueError) as e:
                print(f"warning: {f}: {e}", file=sys.stderr)
        out[m.group(1)].append(reports)
    return {s: r for s, r in out.items() if r}


def dig(v, *path):
    for p in path:
        if isinstance(v, dict):
            v = v.get(p)
        elif isinstance(v, list) and isinstance(p, int) and p < len(v):
            v = v[p]
        else:
            return None
    return v


def num(v):
    return v if isinstance(v, (int, float)) and not isinstance(v, bool) else None


def clean(integrity):
    """Nothing lost, duplicated or out of order (None when unknown)."""
    if not isinstance(integrity, dict):
        return None
    return all(integrity.get(k) == 0 for k in ("lost", "duplicated", "out_of_order"))


def ramp_held(r):
    rep = r.get("ramp")
    held = num(dig(rep, "result", "highest_rate_held"))
    ok = clean(dig(rep, "result", "integrity"))
    if held is None or ok is None:
        return None
    return held if ok else 0


def ramp_capped(r):
    """Whether the ramp's last step held: its figure is then the ramp's end, a lower bound."""
    steps = dig(r.get("ramp"), "result", "steps")
    return bool(steps) and isinstance(steps[-1], dict) and steps[-1].get("held") is True


def ramp_step(r, *path):
    return num(dig(r.get("ramp"), "result", "highest_step_held", *path))


def win(rate, *path):
    return lambda r: num(dig(r.get(f"chat-{rate}"), "result", "window", *path))


def figures(rates):
    """(key, label, better, getter(reports) -> number or None)."""
    rows = [
        ("throughput", "throughput at p99 < 50 ms, 0 lost/dup/reordered (msg/s)", "higher", ramp_held),
        ("throughput_gen_us", "  load generator CPU per message at that rate (us)", "info",
         lambda r: ramp_step(r, "cpu_us_per_message", "loadtest")),
    ]
    for rate in rates:
        k = f"{int(rate) // 1000}k" if int(rate) % 1000 == 0 else str(rate)
        rows += [
            (f"p50_{k}", f"p50 at {int(rate):,} msg/s (ms)", "lower", win(rate, "latency", "p50_ms")),
            (f"p99_{k}", f"p99 at {int(rate):,} msg/s (ms)", "lower", win(rate, "latency", "p99_ms")),
        ]
    for rate in rates:
        k = f"{int(rate) // 1000}k" if int(rate) % 1000 == 0 else str(rate)
        r = f"{int(rate):,}"
        rows += [
            (f"delivered_{k}", f"delivered at {r} msg/s (msg/s)", "higher", win(rate, "delivered_rate")),
            (f"cpu_system_us_{k}", f"CPU per delivered message at {r} msg/s, both server processes + Redis (us)",
             "lower", win(rate, "cpu_us_per_message", "system")),
            (f"cpu_node0_us_{k}", "  process A (visitors) (us)", "lower", win(rate, "cpu_us_per_message", "node0")),
            (f"cpu_node1_us_{k}", "  process B (agents) (us)", "lower", win(rate, "cpu_us_per_message", "node1")),
            (f"cpu_redis_us_{k}", "  Redis (us)", "lower", win(rate, "cpu_us_per_message", "redis")),
            (f"cpu_gen_us_{k}", "  load generator (us; not counted above)", "info",
             win(rate, "cpu_us_per_message", "loadtest")),
        ]
    rows += [
        ("idle_kib", "idle memory per connection (KiB)", "lower",
         lambda r: (lambda b: None if b is None else b / 1024)(
             num(dig(r.get("idle"), "result", "nodes", 0, "bytes_per_connection_slope")))),
    ]
    return rows


def median(vals):
    vals = [v for v in vals if v is not None]
    return statistics.median(vals) if vals else None


def fmt(v):
    if v is None:
        return "-"
    if abs(v) >= 100:
        return f"{v:,.0f}"
    if abs(v) >= 10:
        return f"{v:.1f}"
    return f"{v:.2f}"


def summarize(data, rates):
    out = {}
    for key, label, better, get in figures(rates):
        row = {"label": label, "better": better}
        for s, runs in data.items():
            vals = [get(r) for r in runs]
            got = [v for v in vals if v is not None]
            row[s] = {"median": median(vals), "runs": vals,
                      "min": min(got) if got else None, "max": max(got) if got else None}
            if key == "throughput":
                # The median is a lower bound when a run that reached the ramp's end gave it.
                capped = [ramp_capped(r) for r in runs]
                row[s]["capped"] = capped
                row[s]["at_least"] = any(c and v == row[s]["median"] for v, c in zip(vals, capped))
        out[key] = row
    return out


def noisy(data, rates):
    notes = []
    for s, runs in data.items():
        for i, r in enumerate(runs, 1):
            for rate in rates:
                m = dig(r.get(f"chat-{rate}"), "result", "window", "machine") or {}
                o = num(m.get("others_percent_of_one_core"))
                st = num(m.get("steal_percent_of_one_core"))
                wt = num(m.get("measured_processes_waiting_for_a_cpu_percent"))
                if (o or 0) > OTHERS_NOTED or (st or 0) > 5:
                    notes.append(f"{NAMES[s]} run {i} at {rate} msg/s: other work {fmt(o)} % "
                                 f"of a core, steal {fmt(st)} %, load {m.get('loadavg_1m')}, "
                                 f"measured processes waiting for a CPU {fmt(wt)} %")
    return notes


def table(summary, systems):
    peer = next((s for s in ("classic", "sharded") if s in systems), None)
    head = ["figure"] + [NAMES[s] for s in systems]
    if "relay" in systems:
        head.append("ours / relay")
    if peer:
        head.append("ours / peer")
    lines = ["| " + " | ".join(head) + " |", "|" + " --- |" * len(head)]
    for row in summary.values():
        cells = [row["label"]]
        for s in systems:
            c = row[s]
            cell = ("≥ " if c.get("at_least") else "") + fmt(c["median"])
            if c["min"] is not None and len([v for v in c["runs"] if v is not None]) > 1:
                cell += f" ({fmt(c['min'])}-{fmt(c['max'])})"
            cells.append(cell)
        for other in (["relay"] if "relay" in systems else []) + ([peer] if peer else []):
            a, b = row.get("ours", {}).get("median"), row[other]["median"]
            # A lower bound over a lower bound says nothing; over a figure it is one too.
            low_a, low_b = row.get("ours", {}).get("at_least"), row[other].get("at_least")
            bound = "?" if low_a and low_b else "≥ " if low_a else "≤ " if low_b else ""
            cells.append("?" if bound == "?" else f"{bound}{a / b:.2f}x" if a is not None and b else "-")
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main():
    args = sys.argv[1:]
    if not args:
        sys.exit(__doc__)
    run_dir = Path(args[0])
    data = load(run_dir)
    rates = sorted({int(m.group(1)) for runs in data.values() for r in runs for k in r
                    for m in [re.fullmatch(r"chat-(\d+)", k)] if m}) or [1000, 5000]
    systems = [s for s in SYSTEMS if s in data]
    summary = summarize(data, rates)
    runs = {s: len(r) for s, r in data.items()}
    print(f"Median of {', '.join(f'{n} {NAMES[s]}' for s, n in runs.items())} runs "
          f"(min-max in brackets); {run_dir.name}.\n")
    print(table(summary, systems))
    notes = noisy(data, rates)
    if notes:
        print("\nWindows shared with other work on the machine (figures noisy):")
        for n in notes:
            print(f"- {n}")
    if "--json" in args:
        out = Path(args[args.index("--json") + 1])
        out.write_text(json.dumps({"run": run_dir.name, "runs": runs, "figures": summary},
                                  indent=1) + "\n")


if __name__ == "__main__":
    main()
