#!/usr/bin/env python3
"""Summarises a `wide` run (loadtest/run-bench.sh): the peak of idle connections held at once
over all nodes, the nodes' and Redis's memory then, and each client process's own report.

    python3 loadtest/wide-summary.py loadtest/results/RUN
"""
import csv
import glob
import json
import os
import sys

run = sys.argv[1]
with open(os.path.join(run, "wide-samples.tsv")) as f:
    rows = list(csv.DictReader(f, delimiter="\t"))
if not rows:
    sys.exit("no samples")
nodes = [k[len("sockets_"):] for k in rows[0] if k.startswith("sockets_")]


def total(row, prefix):
    return sum(int(row[prefix + p] or 0) for p in nodes)


first, peak = rows[0], max(rows, key=lambda r: total(r, "sockets_"))
base_rss = total(first, "rss_kib_")
peak_rss = total(peak, "rss_kib_")
reports = [json.load(open(p)) for p in sorted(glob.glob(os.path.join(run, "wide-*.json")))]
held = sum(r["result"]["connected"] for r in reports)
failed = sum(r["result"]["failed"] for r in reports)
closed = sum(c["count"] for r in reports for c in r["result"]["closed_while_held"].values())
sockets_then = total(peak, "sockets_") - total(first, "sockets_")
redis_growth = int(peak["redis_rss_kib"]) - int(first["redis_rss_kib"])
print(f"| | |\n| --- | --- |")
print(f"| nodes, client processes | {len(nodes)}, {len(reports)} |")
print(f"| connections set up (failed, closed while held) | {held:,} ({failed}, {closed}) |")
print(f"| sockets open on the nodes at the peak sample | {sockets_then:,} |")
print(f"| nodes' resident memory, before / at the peak | {base_rss / 1024:,.0f} MiB / {peak_rss / 1024:,.0f} MiB |")
if sockets_then:
    print(f"| nodes' growth per connection | {(peak_rss - base_rss) * 1024 / sockets_then:,.0f} B |")
print(f"| Redis's growth (its per-visitor subscriptions and records) | {redis_growth / 1024:,.0f} MiB |")
for r in reports:
    n = r["result"]["nodes"][0]
    print(
        f"| node pid {n['pid']} | {n['open_connections']:,} held; "
        f"{n['bytes_per_connection_end_minus_start']:,.0f} B per connection end minus start, "
        f"slope {n['bytes_per_connection_slope']:,.0f} B; connect rate {r['result']['connect_rate_per_s']:,.0f}/s |"
    )
