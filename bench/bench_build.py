"""Benchmark `build` and `check` on a fleet of 1 global + 99 local specs (prints figures; not a test).

Usage: .venv/bin/python bench/bench_build.py [--locals N] [--runs R]
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from fleet import make_fleet


def timed(cmd: list[str]) -> float:
    start = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True)
    elapsed = time.perf_counter() - start
    if proc.returncode not in (0, 1):
        raise SystemExit(f"{' '.join(cmd)} failed ({proc.returncode}):\n{proc.stderr[-2000:]}")
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--locals", type=int, default=99)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    # Inside the repository's ignored .cache/: on these machines /tmp is a much slower filesystem for
    # thousands of small files, which would measure the disk, not the compiler.
    scratch = Path(__file__).resolve().parent.parent / ".cache" / "bench"
    scratch.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=scratch) as tmp:
        root = make_fleet(Path(tmp), args.locals)
        cli = [sys.executable, "-m", "compiler", "--root", str(root)]
        cold, noop, check = [], [], []
        for _ in range(args.runs):
            shutil.rmtree(root / "overlays", ignore_errors=True)
            cold.append(timed([*cli, "build"]))
            noop.append(timed([*cli, "build"]))
            check.append(timed([*cli, "check"]))
        files = sum(1 for _ in (root / "overlays").rglob("*") if _.is_file())
        print(f"fleet: 1 global + {args.locals} local specs -> {files} overlay files; {args.runs} runs, median wall:")
        print(f"  build (empty overlays/):   {statistics.median(cold):.2f} s  (min {min(cold):.2f})")
        print(f"  build (already up to date): {statistics.median(noop):.2f} s  (min {min(noop):.2f})")
        print(f"  check (in sync):           {statistics.median(check):.2f} s  (min {min(check):.2f})")


if __name__ == "__main__":
    main()
