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

from compiler.render.jobs import render_clusters
from compiler.render.sources import list_clusters
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
    parser.add_argument("--crd-schemas", type=Path, default=Path(__file__).resolve().parents[1] / "schemas/crds",
                        help="CRD JSON schemas for validate (default: the repository's schemas/crds)")
    args = parser.parse_args()
    scratch = Path(__file__).resolve().parent.parent / ".cache" / "bench"  # /tmp is slow for many small files
    scratch.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=scratch) as tmp:
        root = make_fleet(Path(tmp), args.locals)
        py = [sys.executable, "-m", "compiler", "-C", str(root)]
        schemas = ["--crd-schemas", str(args.crd_schemas)]
        timed([*py, "build"])
        timed([*py, "validate", *schemas, "--no-fleet-rules"])  # fills the render cache
        plain: list[float] = []
        full: list[float] = []
        for _ in range(args.runs):  # interleaved, so drift in the machine's load hits both alike
            plain.append(timed([*py, "validate", *schemas, "--no-fleet-rules"]))
            full.append(timed([*py, "validate", *schemas]))
        a, b = statistics.median(plain), statistics.median(full)
        print(f"fleet: 1 global + {args.locals} locals, renders cached, {args.runs} runs, medians")
        print(f"validate --no-fleet-rules  {a:6.2f} s")
        print(f"validate                   {b:6.2f} s   (+{(b - a) / a:.0%}; budget +20%)")
        rendered = render_clusters(root, list_clusters(root))
        for r in rendered.values():
            _ = r.objects  # parsed once, as validate parses them for the schemas
        start = time.perf_counter()
        fleet = load_fleet(root, rendered=rendered)
        loaded = time.perf_counter() - start
        plans_start = time.perf_counter()
        _ = fleet.plans
        print(f"in process, renders parsed: load_fleet {loaded:.2f} s (specs, argocd and add-on overlays), "
              f"bootstrap plans {time.perf_counter() - plans_start:.2f} s")
        total = 0.0
        for rule in sorted(FLEET_RULES):
            start = time.perf_counter()
            found = check_fleet(fleet, [rule])
            took = time.perf_counter() - start
            total += took
            print(f"  {rule:16} {took:6.2f} s  {len(found)} finding(s)")
        print(f"  {'all rules':16} {total:6.2f} s")


if __name__ == "__main__":
    main()
