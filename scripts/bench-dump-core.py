#!/usr/bin/env python3
"""Times `pysampler dump --core` against `py-spy dump --core` on the same
core files: median and minimum of N runs of each (whole process, as a user
runs it). Usage: scripts/bench-dump-core.py [--runs N] CORE...

Cores to try it on: run fixtures/core_crash.py with `ulimit -c unlimited`
(it segfaults; core_pattern `core` writes ./core).
"""
import argparse
import os
import statistics
import subprocess
import time

ap = argparse.ArgumentParser()
ap.add_argument("--runs", type=int, default=21)
ap.add_argument("--pysampler", default="target/release/pysampler")
ap.add_argument("--py-spy", default=os.path.expanduser("~/.cache/pysampler/pyspy-venv/bin/py-spy"))
ap.add_argument("cores", nargs="+")
args = ap.parse_args()
for core in args.cores:
    for name, exe in [("pysampler", args.pysampler), ("py-spy", args.py_spy)]:
        times = []
        for _ in range(args.runs):
            start = time.perf_counter()
            r = subprocess.run([exe, "dump", "--core", core], capture_output=True)
            times.append(time.perf_counter() - start)
            if r.returncode != 0:
                raise SystemExit(f"{name} failed on {core}: {r.stderr.decode()}")
        print(f"{core}: {name} median {statistics.median(times) * 1000:.1f} ms, min {min(times) * 1000:.1f} ms")
print(f"load average: {os.getloadavg()[0]:.1f}")
