"""Run the end-to-end tests (real Airflow stacks: `pytest -m airflow_stack`) several times in a row
while busy loops load the CPU, and report each run's wall time (``make test-stress``).

    python scripts/test_stress.py [--runs 5] [--hogs 2] [-- extra pytest args]

A hog is a Python process spinning in a loop (one per core by default: 2 on the CI machine).
Every run must pass; the hogs are stopped whatever happens. Exit status: 0 when all runs passed,
1 otherwise. Output: one line per run, then a summary.
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import time

HOG = "while True: pass"


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5, help="how many runs in a row (default 5)")
    parser.add_argument("--hogs", type=int, default=os.cpu_count() or 2,
                        help="busy-loop processes (default: one per core)")
    parser.add_argument("pytest_args", nargs="*", help="extra pytest arguments (after --)")
    args = parser.parse_args(argv)
    if args.runs < 1 or args.hogs < 0:
        parser.error("--runs must be >= 1 and --hogs >= 0")
    command = [sys.executable, "-m", "pytest", "-m", "airflow_stack", "-q", "-p", "no:cacheprovider",
               *args.pytest_args]
    hogs = [subprocess.Popen([sys.executable, "-c", HOG], stdin=subprocess.DEVNULL)  # noqa: S603 - our own argv
            for _ in range(args.hogs)]
    times: list[tuple[float, int]] = []
    try:
        for number in range(1, args.runs + 1):
            started = time.monotonic()
            done = subprocess.run(command, check=False, stdin=subprocess.DEVNULL)  # noqa: S603 - our own argv
            elapsed = time.monotonic() - started
            times.append((elapsed, done.returncode))
            load = os.getloadavg()[0]
            verdict = "passed" if done.returncode == 0 else f"FAILED (exit {done.returncode})"
            print(f"test-stress: run {number}/{args.runs}: {verdict} in {elapsed:.0f} s "
                  f"(load average {load:.1f}, {args.hogs} hog(s))", flush=True)
    finally:
        for hog in hogs:
            hog.send_signal(signal.SIGTERM)
        for hog in hogs:
            try:
                hog.wait(timeout=10)
            except subprocess.TimeoutExpired:
                hog.kill()
                hog.wait()
    failed = sum(1 for _, code in times if code != 0)
    total = sum(t for t, _ in times)
    print(f"test-stress: {len(times) - failed}/{len(times)} runs passed; times "
          f"{', '.join(f'{t:.0f} s' for t, _ in times)}; total {total / 60:.1f} min")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
