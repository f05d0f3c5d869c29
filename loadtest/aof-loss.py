#!/usr/bin/env python3
"""What a Redis crash loses of acknowledged writes under `appendonly yes` + `appendfsync
everysec` (or the FSYNC given): a throw-away redis-server on a free loopback port, a writer
that pipelines `XADD` (as a chat's append does) with a bounded window and counts what was
acknowledged, SIGKILL of the server mid-load, a restart from the same directory, and a count
of what came back. Prints one line per run and the total.

    loadtest/aof-loss.py [RUNS] [SECONDS] [FSYNC]     (defaults: 5 3 everysec)

Bounded: RUNS x SECONDS of writes, 64 commands in flight. Needs redis-server (Debian)."""

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

RUNS = int(sys.argv[1]) if len(sys.argv) > 1 else 5
SECONDS = float(sys.argv[2]) if len(sys.argv) > 2 else 3.0
FSYNC = sys.argv[3] if len(sys.argv) > 3 else "everysec"
WINDOW = 64
STREAM = b"aof-loss:log"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start(port, workdir):
    proc = subprocess.Popen(
        ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--dir", workdir,
         "--save", "", "--appendonly", "yes", "--appendfsync", FSYNC],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    for _ in range(200):
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2) as s:
                s.sendall(b"PING\r\n")
                if s.recv(16).startswith(b"+PONG"):
                    return proc
        except OSError:
            pass
        time.sleep(0.05)
    proc.kill()
    raise SystemExit("redis-server did not start")


def command(*args):
    out = b"*%d\r\n" % len(args)
    for a in args:
        out += b"$%d\r\n%s\r\n" % (len(a), a)
    return out


def write_until_killed(port, proc):
    """XADDs with `WINDOW` in flight; SIGKILL after SECONDS; returns the acknowledged count."""
    s = socket.create_connection(("127.0.0.1", port))
    s.settimeout(2)
    sent = acked = 0
    buf = b""
    deadline = time.monotonic() + SECONDS
    killed = False
    while True:
        while sent - acked < WINDOW and not killed:
            sent += 1
            s.sendall(command(b"XADD", STREAM, b"*", b"n", str(sent).encode()))
        if not killed and time.monotonic() >= deadline:
            proc.send_signal(signal.SIGKILL)
            killed = True
        try:
            chunk = s.recv(65536)
        except OSError:
            break
        if not chunk:
            break
        buf += chunk
        # Each reply is a bulk string: $LEN\r\nID\r\n.
        while True:
            head = buf.find(b"\r\n")
            if head < 0 or not buf.startswith(b"$"):
                break
            n = int(buf[1:head])
            end = head + 2 + n + 2
            if len(buf) < end:
                break
            buf = buf[end:]
            acked += 1
    s.close()
    proc.wait()
    return acked


def count(port):
    with socket.create_connection(("127.0.0.1", port)) as s:
        s.sendall(command(b"XLEN", STREAM))
        reply = s.recv(64)
    return int(reply[1:reply.find(b"\r\n")])


def main():
    total_acked = total_lost = 0
    for run in range(1, RUNS + 1):
        workdir = tempfile.mkdtemp(prefix="switchboard-aof-loss.")
        port = free_port()
        try:
            proc = start(port, workdir)
            acked = write_until_killed(port, proc)
            proc = start(port, workdir)
            present = count(port)
            proc.terminate()
            proc.wait()
        finally:
            shutil.rmtree(workdir, ignore_errors=True)
        lost = max(0, acked - present)
        total_acked += acked
        total_lost += lost
        print(f"run {run}: appendfsync {FSYNC}: {acked} acknowledged, {present} present after "
              f"the restart, {lost} lost")
    print(f"total: {total_acked} acknowledged, {total_lost} lost over {RUNS} kill -9")


if __name__ == "__main__":
    os.chdir(os.path.dirname(os.path.abspath(__file__)))
    main()
