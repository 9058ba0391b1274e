"""What the fleet rules add to `validate` on a fleet of 1 global + 99 local specs, renders cached (prints figures;
not a test). Issue 12's budget: at most 20% over `validate --no-fleet-rules`.

Usage: .venv/bin/python bench/bench_validate.py [--locals N] [--runs R]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from fleet import make_fleet

from compiler.validate.fleet import load_fleet
from compiler.validate.fleet.rules import FLEET_RULES, check_fleet


def timed(cmd: list[str]) -> float:
    start = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True)
    elapsed = time.perf_counter() - start
    if proc.returncode not in (0, 1):
        raise SystemExit(f"{' '.join(cmd)} failed ({proc.returncode}):\n{proc.stdout[-2000:]}{proc.stderr[-2000:]}")
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--locals", type=int, default=99)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--crd-schemas", type=Path, default=Path(__file__).resolve().parents[2] / "shared/schemas/crds",
                        help="CRD JSON schemas for validate (default: ../shared/schemas/crds)")
    args = parser.parse_args()
    scratch = Path(__file__).resolve().parent.parent / ".cache" / "bench"  # /tmp is slow for many small files
    scratch.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=scratch) as tmp:
        root = make_fleet(Path(tmp), args.locals)
        py = [sys.executable, "-m", "compiler", "-C", str(root)]
        schemas = ["--crd-schemas", str(args.crd_schemas)]
        timed([*py, "build"])
        timed([*py, "validate", *schemas, "--no-fleet-rules"])  # fills the render cache
        plain = [timed([*py, "validate", *schemas, "--no-fleet-rules"]) for _ in range(args.runs)]
        full = [timed([*py, "validate", *schemas]) for _ in range(args.runs)]
        a, b = statistics.median(plain), statistics.median(full)
        print(f"fleet: 1 global + {args.locals} locals, renders cached, {args.runs} runs, medians")
        print(f"validate --no-fleet-rules  {a:6.2f} s")
        print(f"validate                   {b:6.2f} s   (+{(b - a) / a:.0%}; budget +20%)")
        start = time.perf_counter()
        fleet = load_fleet(root)
        loaded = time.perf_counter() - start
        plans_start = time.perf_counter()
        _ = fleet.plans
        print(f"in process: load_fleet {loaded:.2f} s, bootstrap plans {time.perf_counter() - plans_start:.2f} s")
        for rule in sorted(FLEET_RULES):
            start = time.perf_counter()
            found = check_fleet(fleet, [rule])
            print(f"  {rule:16} {time.perf_counter() - start:6.2f} s  {len(found)} finding(s)")


if __name__ == "__main__":
    main()
