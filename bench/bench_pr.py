"""What a spec-only pull request waits for in CI: `check`, `validate` and `diff` (the PR comment's body), as
.github/workflows/ci.yml runs them, on the example fleet and on bench/fleet.py's synthetic one (1 global + 99 locals).

For each fleet: a git repository whose `main` holds the built overlays, and a pull-request commit that bumps one
service of one local cluster (spec edited, `build` run). Each step runs as its own `python -m compiler` process,
like a CI step, from an empty .cache (a fresh runner: nothing compiled, nothing rendered) and with main's renders
restored (what the render-cache workflow saves after each merge and ci.yml's diff job restores). The test suite is
not run: ci.yml skips it when only environments/, overlays/ and gitops.yaml change.

  .venv/bin/python bench/bench_pr.py                 # both fleets
  .venv/bin/python bench/bench_pr.py --locals 19     # a smaller synthetic fleet
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
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from fleet import REPO, make_fleet

from compiler.render import kustomize

BUMP = ("  annotationengine:\n    version: 4.14.1", "  annotationengine:\n    version: 4.15.0")
STEPS = {  # name → arguments, as ci.yml runs them
    "check": ["check"],
    "validate": ["validate"],
    "diff": ["diff", "--base", "main", "--format", "markdown"],
}
GIT_ENV = {"GIT_AUTHOR_NAME": "bench", "GIT_AUTHOR_EMAIL": "bench@example.org", "GIT_COMMITTER_NAME": "bench",
           "GIT_COMMITTER_EMAIL": "bench@example.org", "GIT_CONFIG_GLOBAL": os.devnull, "GIT_CONFIG_NOSYSTEM": "1"}


def compiler(root: Path, *args: str, ok: tuple[int, ...] = (0,)) -> subprocess.CompletedProcess[str]:
    # The fleets live outside the repository, so without $KUSTOMIZE they would not see its .venv/bin/kubectl:
    # CI renders with the pinned kustomize .ci/setup installs there, and so does the benchmark.
    env = {**os.environ, **GIT_ENV, "KUSTOMIZE": os.environ.get("KUSTOMIZE") or kustomize.find(REPO).binary}
    proc = subprocess.run([sys.executable, "-m", "compiler", "-C", str(root), *args], capture_output=True, text=True,
                          check=False, env=env)
    if proc.returncode not in ok:
        sys.exit(f"python -m compiler {' '.join(args)} exited {proc.returncode}:\n{proc.stderr[-3000:]}")
    return proc


def git(root: Path, *args: str) -> None:
    subprocess.run(["git", *args], cwd=root, check=True, capture_output=True, env={**os.environ, **GIT_ENV})


def pull_request(root: Path, cluster: str) -> Path:
    """`root` as a repository: main with built overlays and main's renders saved aside, then a bump of `cluster`."""
    compiler(root, "build")
    git(root, "init", "-q", "-b", "main")
    git(root, "add", "-A")
    git(root, "commit", "-qm", "main")
    compiler(root, "validate", "--no-fleet-rules")  # fills the render cache with main's renders, as after a merge
    saved = root.parent / f"{root.name}-main-renders"
    shutil.copytree(root / ".cache" / "cave-gitops" / "renders", saved)
    spec = root / "environments" / f"{cluster}.yaml"
    text = spec.read_text()
    assert BUMP[0] in text, f"{spec} has no {BUMP[0]!r}"
    spec.write_text(text.replace(BUMP[0], BUMP[1], 1))
    compiler(root, "build")
    git(root, "switch", "-q", "-c", "pr")
    git(root, "commit", "-qam", f"bump annotationengine on {cluster}")
    return saved


def measure(root: Path, saved: Path, warm: bool, repeat: int) -> dict[str, float]:
    times: dict[str, list[float]] = {name: [] for name in STEPS}
    for _ in range(repeat):
        shutil.rmtree(root / ".cache", ignore_errors=True)
        if warm:
            shutil.copytree(saved, root / ".cache" / "cave-gitops" / "renders")
        for name, args in STEPS.items():
            start = time.perf_counter()
            compiler(root, *args, ok=(0, 1) if name == "diff" else (0,))
            times[name].append(time.perf_counter() - start)
    return {name: statistics.median(values) for name, values in times.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--locals", type=int, default=99, help="local clusters of the synthetic fleet (default 99)")
    parser.add_argument("--repeat", type=int, default=1, help="runs per figure; the median is printed (default 1)")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="bench-pr-") as tmp:
        examples = Path(tmp) / "examples"
        examples.mkdir()
        for name in ("environments", "base", "gitops.yaml", "schemas"):
            source = REPO / name
            if source.is_dir():
                shutil.copytree(source, examples / name)
            elif source.is_file():
                shutil.copy2(source, examples / name)
        synthetic = make_fleet(Path(tmp) / "synthetic", args.locals)
        shutil.copytree(REPO / "schemas", synthetic / "schemas")
        fleets = [("examples", examples, "minnie"), ("bench/fleet.py", synthetic, "l001")]

        saved = {label: pull_request(root, cluster) for label, root, cluster in fleets}
        tool = [ln for ln in compiler(examples, "render", "minnie").stderr.splitlines() if ln.startswith("kustomize ")]
        print(f"{tool[0] if tool else 'kustomize ?'}; {os.cpu_count()} CPUs; median of {args.repeat} run(s)")
        print(f"{'fleet':<16} {'clusters':>8}  {'step':<9} {'empty cache':>12} {'main cached':>12}")
        for label, root, _ in fleets:
            count = len(list((root / "environments").glob("*.yaml")))
            cold = measure(root, saved[label], warm=False, repeat=args.repeat)
            warm = measure(root, saved[label], warm=True, repeat=args.repeat)
            for name in STEPS:
                print(f"{label:<16} {count:>8}  {name:<9} {cold[name]:>10.1f} s {warm[name]:>10.1f} s")
            print(f"{label:<16} {count:>8}  {'total':<9} {sum(cold.values()):>10.1f} s {sum(warm.values()):>10.1f} s")


if __name__ == "__main__":
    main()
