"""What a spec-only pull request waits for in CI, next to the naive way, measured in the same run (prints figures;
not a test).

Each fleet is a git repository whose `main` holds the built overlays, and a pull-request commit that bumps one
service of one local cluster (spec edited, `build` run). The steps run as ci.yml runs them, each its own
`python -m compiler` process: `check`, `validate`, `diff --format markdown` (the PR comment's body). Twice:
from an empty .cache (a fresh runner: nothing compiled, rendered, parsed or validated), and with main's cache
(what render-cache.yml leaves after each merge: `check` and `validate` run on main, every cache under
.cache/cave-gitops filled). Each figure is wall time and the step's peak memory (its own process; kustomize
runs in children of its own).

The naive way, on the same commits: render every overlay of both sides with one kustomize process each
(`xargs -P <cpus>`), `validate --no-cache` (every cluster, nothing reused), `diff -ru` of the two renders.

Fleets: the examples (3 clusters), bench/fleet.py's synthetic fleet (1 global + 99 locals), and, for the
one-cluster bump's `diff` alone, synthetic fleets of 10 and 1,000 clusters with main's compiled overlays and no
renders cached: the diff should follow what changed, not the size of the fleet.

  .venv/bin/python bench/bench_pr.py                      # examples, 100 clusters, diff at 10/100/1,000
  .venv/bin/python bench/bench_pr.py --locals 19 --diff-sizes 10 100
  .venv/bin/python bench/bench_pr.py --no-examples --locals 0 --diff-sizes 1000   # one figure
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_diff import naive_script
from fleet import REPO, make_fleet

from compiler.paths import STATE_DIR
from compiler.render import kustomize

BUMP = ("  annotationengine:\n    version: 4.14.1", "  annotationengine:\n    version: 4.15.0")
STEPS = {  # name → arguments, as ci.yml runs them
    "check": ["check"],
    "validate": ["validate"],
    "diff": ["diff", "--base", "main", "--format", "markdown"],
}
GIT_ENV = {"GIT_AUTHOR_NAME": "bench", "GIT_AUTHOR_EMAIL": "bench@example.org", "GIT_COMMITTER_NAME": "bench",
           "GIT_COMMITTER_EMAIL": "bench@example.org", "GIT_CONFIG_GLOBAL": os.devnull, "GIT_CONFIG_NOSYSTEM": "1"}
TOOL = kustomize.find(REPO)


@dataclass(frozen=True)
class Run:
    seconds: float
    peak_mib: float


def timed(argv: list[str], cwd: Path | None = None, ok: tuple[int, ...] = (0,)) -> Run:
    """Run `argv` and measure its wall time and its own peak RSS (os.wait4's rusage of that one process)."""
    # The fleets live outside the repository, so without $KUSTOMIZE they would not see its .venv/bin/kubectl:
    # CI renders with the pinned kustomize .ci/setup installs there, and so does the benchmark.
    env = {**os.environ, **GIT_ENV, "KUSTOMIZE": os.environ.get("KUSTOMIZE") or TOOL.binary}
    start = time.perf_counter()
    with tempfile.TemporaryFile() as err:
        proc = subprocess.Popen(argv, cwd=cwd, env=env, stdout=subprocess.DEVNULL, stderr=err)
        _, status, usage = os.wait4(proc.pid, 0)
        proc.returncode = os.waitstatus_to_exitcode(status)
        elapsed = time.perf_counter() - start
        if proc.returncode not in ok:
            err.seek(0)
            sys.exit(f"{' '.join(argv)} exited {proc.returncode}:\n{err.read().decode()[-3000:]}")
    return Run(elapsed, usage.ru_maxrss / 1024)


def compiler(root: Path, *args: str, ok: tuple[int, ...] = (0,)) -> Run:
    return timed([sys.executable, "-m", "compiler", "-C", str(root), *args], ok=ok)


def git(root: Path, *args: str) -> None:
    subprocess.run(["git", *args], cwd=root, check=True, capture_output=True, env={**os.environ, **GIT_ENV})


def pull_request(root: Path, cluster: str, main_cache: bool = True) -> Path | None:
    """`root` as a repository: main with built overlays, main's cache saved aside (when `main_cache`), then a
    pull-request branch bumping `cluster`. Returns where main's cache was saved."""
    compiler(root, "build")
    git(root, "init", "-q", "-b", "main")
    git(root, "add", "-A")
    git(root, "commit", "-qm", "main")
    saved = None
    if main_cache:  # what render-cache.yml runs on main
        compiler(root, "check")
        compiler(root, "validate", ok=(0, 1))
        saved = root.parent / f"{root.name}-main-cache"
        shutil.copytree(root / STATE_DIR, saved)
    spec = root / "environments" / f"{cluster}.yaml"
    text = spec.read_text()
    assert BUMP[0] in text, f"{spec} has no {BUMP[0]!r}"
    spec.write_text(text.replace(BUMP[0], BUMP[1], 1))
    compiler(root, "build")
    git(root, "switch", "-q", "-c", "pr")
    git(root, "commit", "-qam", f"bump annotationengine on {cluster}")
    if not main_cache:
        saved = root.parent / f"{root.name}-main-cache"
        shutil.copytree(root / STATE_DIR / "compiled", saved / "compiled")  # build's record of both commits
    return saved


def restore(root: Path, saved: Path | None) -> None:
    shutil.rmtree(root / ".cache", ignore_errors=True)
    if saved is not None:
        shutil.copytree(saved, root / STATE_DIR)


def measure(root: Path, saved: Path | None, repeat: int, steps: dict[str, list[str]] = STEPS) -> dict[str, Run]:
    runs: dict[str, list[Run]] = {name: [] for name in steps}
    for _ in range(repeat):
        restore(root, saved)
        for name, args in steps.items():
            runs[name].append(compiler(root, *args, ok=(0, 1) if name != "check" else (0,)))
    return {name: Run(statistics.median(r.seconds for r in rs), max(r.peak_mib for r in rs))
            for name, rs in runs.items()}


def naive(root: Path) -> dict[str, Run]:
    """Render both sides (every overlay, one kustomize process each, in parallel), validate afresh, diff -ru."""
    shutil.rmtree(root / ".cache", ignore_errors=True)
    render_and_diff = timed(naive_script(root, TOOL, os.cpu_count() or 1, base="main"))
    validate = compiler(root, "validate", "--no-cache", ok=(0, 1))
    shutil.rmtree(root / ".cache", ignore_errors=True)
    return {"render both, diff -ru": render_and_diff, "validate --no-cache": validate}


def copy_examples(dest: Path) -> Path:
    dest.mkdir()
    for name in ("environments", "base", "gitops.yaml", "schemas"):
        source = REPO / name
        if source.is_dir():
            shutil.copytree(source, dest / name)
        elif source.is_file():
            shutil.copy2(source, dest / name)
    return dest


def synthetic(dest: Path, locals_count: int) -> Path:
    make_fleet(dest, locals_count)
    shutil.copytree(REPO / "schemas", dest / "schemas")
    return dest


def fmt(run: Run) -> str:
    return f"{run.seconds:7.2f} s {run.peak_mib:5.0f} MiB"


def pr_steps(label: str, root: Path, cluster: str, repeat: int) -> None:
    saved = pull_request(root, cluster)
    count = len(list((root / "environments").glob("*.yaml")))
    cold = measure(root, None, repeat)
    warm = measure(root, saved, repeat)
    again = [compiler(root, "validate", ok=(0, 1)) for _ in range(repeat)]  # the warm runs cached everything
    revalidate = Run(statistics.median(r.seconds for r in again), max(r.peak_mib for r in again))
    slow = naive(root)
    naive_total = sum(r.seconds for r in slow.values())
    total_cold = sum(r.seconds for r in cold.values())
    total_warm = sum(r.seconds for r in warm.values())
    peak = max(r.peak_mib for r in [*cold.values(), *warm.values(), revalidate])
    print(f"\n{label}: {count} clusters, one local's annotationengine bumped")
    print(f"  {'step':<24} {'empty cache':>21}   {'main cached':>21}")
    for name in STEPS:
        print(f"  {name:<24} {fmt(cold[name])}   {fmt(warm[name])}")
    print(f"  {'total':<24} {total_cold:7.2f} s {'':9}   {total_warm:7.2f} s   (target with main's cache: 5 s)")
    print(f"  {'validate, all cached':<24} {'':21}   {fmt(revalidate)}   (target: 2 s)")
    print(f"  largest process of any step: {peak:.0f} MiB (target: under 500 MiB)")
    print("  the naive way, on the same commits:")
    for name, run in slow.items():
        print(f"    {name:<22} {fmt(run)}")
    print(f"    {'total':<22} {naive_total:7.2f} s")
    print(f"  naive / ours: {naive_total / total_cold:.1f}x with an empty cache, "
          f"{naive_total / total_warm:.1f}x with main's cache")


def diff_sizes(tmp: Path, sizes: list[int], repeat: int) -> None:
    print("\none-cluster bump, `diff` alone (main's compiled overlays; no renders cached, then both sides cached)")
    print(f"  {'clusters':>8}  {'no renders cached':>21}   {'both sides cached':>21}")
    for n in sizes:
        root = synthetic(tmp / f"diff-{n}", n - 1)
        saved = pull_request(root, "l001", main_cache=False)
        step = {"diff": STEPS["diff"]}
        cold = measure(root, saved, repeat, step)["diff"]
        again = [compiler(root, *STEPS["diff"], ok=(0, 1)) for _ in range(repeat)]  # the first run cached both
        warm = Run(statistics.median(r.seconds for r in again), max(r.peak_mib for r in again))
        print(f"  {n:>8}  {fmt(cold)}   {fmt(warm)}")
        shutil.rmtree(root)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--locals", type=int, default=99,
                        help="local clusters of the synthetic fleet (default 99; 0 leaves it out)")
    parser.add_argument("--diff-sizes", type=int, nargs="*", default=[10, 100, 1000],
                        help="fleet sizes for the diff-alone figures (default 10 100 1000)")
    parser.add_argument("--repeat", type=int, default=1, help="runs per figure; the median is printed (default 1)")
    parser.add_argument("--no-examples", action="store_true", help="skip the examples")
    args = parser.parse_args()
    # Inside the repository's ignored .cache/: /tmp is a much slower filesystem here for many small files.
    scratch = REPO / ".cache" / "bench"
    scratch.mkdir(parents=True, exist_ok=True)
    print(f"kustomize {TOOL.version} ({' '.join(TOOL.command)}); {os.cpu_count()} CPUs; median of {args.repeat} "
          "run(s); memory: the largest single process of a step (the compiler or one of its kustomize runs)")
    with tempfile.TemporaryDirectory(prefix="bench-pr-", dir=scratch) as tmp:
        if not args.no_examples:
            pr_steps("examples", copy_examples(Path(tmp) / "examples"), "minnie", args.repeat)
        if args.locals:
            pr_steps("bench/fleet.py", synthetic(Path(tmp) / "synthetic", args.locals), "l001", args.repeat)
        if args.diff_sizes:
            diff_sizes(Path(tmp), args.diff_sizes, args.repeat)


if __name__ == "__main__":
    main()
