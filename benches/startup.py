#!/usr/bin/env python3
"""Whole-process start-up, side by side: each NAME=COMMAND runs 100 times, interleaved with
the others, and the median and first quartile are printed.

    cargo build --release
    target/release/luabundle build small/ -o small.bundle --no-cache -q
    python3 benches/startup.py 'lua=lua5.4 -e ;' \\
        'run=target/release/luabundle run small.bundle -e ;' 'true=/bin/true'
"""
import statistics
import subprocess
import sys
import time

RUNS = 100

commands = dict(arg.split("=", 1) for arg in sys.argv[1:])
times = {name: [] for name in commands}
for _ in range(RUNS):
    for name, command in commands.items():
        started = time.perf_counter()
        subprocess.run(command.split(), capture_output=True)
        times[name].append((time.perf_counter() - started) * 1000)
for name, values in times.items():
    values.sort()
    print(f"{name:<10} median {statistics.median(values):.2f} ms  p25 {values[len(values) // 4]:.2f} ms")
