#!/usr/bin/env python3
"""Runs a command with a custom scheduler time slice (Linux 6.12 and later, EEVDF): sets
`sched_attr.sched_runtime` for SCHED_OTHER on this process, which every process and thread it
starts inherits, then executes the command. A shorter slice lets a woken thread preempt the
running one sooner. Standard library only.

    loadtest/with-slice.py MICROSECONDS COMMAND [ARG ...]
    loadtest/with-slice.py 100 loadtest/run-bench.sh full chat

The kernel clamps the slice to 100 us - 100 ms; /proc/PID/sched shows it as `se.slice` (ns).
"""

import ctypes
import os
import platform
import struct
import sys

SYS_SCHED_SETATTR = {"x86_64": 314, "aarch64": 274}


def main():
    if len(sys.argv) < 3 or not sys.argv[1].isdigit():
        sys.exit("usage: with-slice.py MICROSECONDS COMMAND [ARG ...]")
    micros = int(sys.argv[1])
    nr = SYS_SCHED_SETATTR.get(platform.machine())
    if nr is None:
        sys.exit(f"with-slice.py: no sched_setattr number known for {platform.machine()}")
    # struct sched_attr, first version (48 bytes): size, policy (SCHED_OTHER), flags, nice,
    # priority, runtime (ns), deadline, period.
    attr = ctypes.create_string_buffer(struct.pack("IIQiIQQQ", 48, 0, 0, 0, 0, micros * 1000, 0, 0))
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.syscall(nr, 0, attr, 0) != 0:
        sys.exit(f"with-slice.py: sched_setattr: {os.strerror(ctypes.get_errno())}")
    os.execvp(sys.argv[2], sys.argv[2:])


if __name__ == "__main__":
    main()
