"""The inner test loop against the whole suite: wall time and test count of each, as `make test-fast` and
`make test` run pytest (2 workers), printed, never asserted.

    python benchmarks/suite_bench.py [--runs N] [--fast-only]

Each run is a fresh pytest process; the best and the median of ``--runs`` are printed. The machine's load at the start
is printed too: on a busy machine the figures are the machine's, not the suite's.
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PYTEST = [sys.executable, "-m", "pytest", "-n", "2", "--dist", "worksteal", "-q", "-p", "no:cacheprovider"]
CASES = {"make test-fast (-m 'not outer')": [*PYTEST, "-m", "not outer"], "make test (everything)": PYTEST}


def run(command: list[str]) -> tuple[float, str]:
    started = time.perf_counter()
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True)
    wall = time.perf_counter() - started
    summary = next((line for line in reversed(done.stdout.splitlines()) if re.search(r"\d+ (passed|failed)", line)), "")
    if done.returncode != 0:
        print(f"  exit {done.returncode}: {summary or done.stdout[-500:]}", file=sys.stderr)
    return wall, summary.strip("= ")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=1)
    parser.add_argument("--fast-only", action="store_true", help="time the inner loop only")
    args = parser.parse_args()
    print(f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.2f} at the start")
    for name, command in CASES.items():
        if args.fast_only and "everything" in name:
            continue
        walls, summary = [], ""
        for _ in range(args.runs):
            wall, summary = run(command)
            walls.append(wall)
        print(f"{name:36} best {min(walls):6.1f} s  median {statistics.median(walls):6.1f} s  ({summary})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
