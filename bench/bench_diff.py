"""Benchmark `diff` against the naive way on a synthetic fleet (figures printed; not a timed test).

Builds N local overlays (~85 objects each) over 12 shared bases in a temp git repo, then measures
  (a) one cluster's image tag bumped, and
  (b) a base change that touches every cluster,
for `python -m compiler diff` (cold cache, and warm: the same diff run again) and for the naive way:
materialise HEAD, render every overlay on both sides with one kustomize process each, `diff -ru`.

With `--fleet cave` the fleet is the real thing instead: bench/fleet.py's 1 global + N-1 local specs
compiled by `python -m compiler build` over this repository's bases; (a) is `bump materialize` on one
cluster, (b) an edit of base/materializationengine that every local cluster renders.

Usage: .venv/bin/python bench/bench_diff.py [--sizes 10 100] [--runs 3] [--fleet synthetic|cave]
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from compiler import git as cgit  # noqa: E402
from compiler.diff.engine import reduced_plans  # noqa: E402
from compiler.render import kustomize  # noqa: E402
from compiler.render.cache import default_cache  # noqa: E402
from compiler.render.jobs import render_clusters  # noqa: E402
from compiler.render.sources import GitSource, list_clusters  # noqa: E402

SERVICES = (
    "annotationengine", "materializationengine", "pychunkedgraph", "meshing", "l2cache", "skeletoncache",
    "guidebook", "dash", "proofreading", "proxy", "canary", "schema",
)  # fmt: skip
GIT_ENV = {
    "GIT_AUTHOR_NAME": "bench", "GIT_AUTHOR_EMAIL": "bench@example.com",
    "GIT_COMMITTER_NAME": "bench", "GIT_COMMITTER_EMAIL": "bench@example.com",
}  # fmt: skip


def base_files(svc: str) -> dict[str, str]:
    """Six objects per service: Deployment, Service, HPA, ServiceAccount, PDB, ExternalSecret."""
    labels = f"{{app: {svc}, cave.io/service: {svc}}}"
    return {
        f"base/{svc}/kustomization.yaml": "resources: [deployment.yaml, service.yaml, hpa.yaml, sa.yaml, pdb.yaml, "
        "externalsecret.yaml]\n",
        f"base/{svc}/deployment.yaml": textwrap.dedent(f"""\
            apiVersion: apps/v1
            kind: Deployment
            metadata: {{name: {svc}, labels: {labels}}}
            spec:
              selector: {{matchLabels: {{app: {svc}}}}}
              template:
                metadata: {{labels: {{app: {svc}}}}}
                spec:
                  serviceAccountName: {svc}
                  containers:
                  - name: {svc}
                    image: ghcr.io/cave/{svc}:v1.0.0
                    ports: [{{name: http, containerPort: 8080}}]
                    envFrom: [{{configMapRef: {{name: {svc}-config}}}}]
                    env:
                    - {{name: TOKEN, valueFrom: {{secretKeyRef: {{name: {svc}-secrets, key: TOKEN}}}}}}
                    resources: {{requests: {{cpu: 100m, memory: 256Mi}}, limits: {{memory: 1Gi}}}}
                    readinessProbe: {{httpGet: {{path: /health, port: http}}}}
            """),
        f"base/{svc}/service.yaml": f"apiVersion: v1\nkind: Service\nmetadata: {{name: {svc}, labels: {labels}}}\n"
        f"spec:\n  selector: {{app: {svc}}}\n  ports: [{{name: http, port: 80, targetPort: http}}]\n",
        f"base/{svc}/hpa.yaml": f"apiVersion: autoscaling/v2\nkind: HorizontalPodAutoscaler\n"
        f"metadata: {{name: {svc}, labels: {labels}}}\nspec:\n"
        f"  scaleTargetRef: {{apiVersion: apps/v1, kind: Deployment, name: {svc}}}\n"
        "  minReplicas: 1\n  maxReplicas: 5\n",
        f"base/{svc}/sa.yaml": f"apiVersion: v1\nkind: ServiceAccount\nmetadata: {{name: {svc}, labels: {labels}}}\n",
        f"base/{svc}/pdb.yaml": f"apiVersion: policy/v1\nkind: PodDisruptionBudget\n"
        f"metadata: {{name: {svc}, labels: {labels}}}\nspec:\n  maxUnavailable: 1\n"
        f"  selector: {{matchLabels: {{app: {svc}}}}}\n",
        f"base/{svc}/externalsecret.yaml": f"apiVersion: external-secrets.io/v1\nkind: ExternalSecret\n"
        f"metadata: {{name: {svc}-secrets, labels: {labels}}}\nspec:\n"
        "  secretStoreRef: {kind: ClusterSecretStore, name: gcp}\n"
        f"  target: {{name: {svc}-secrets}}\n  data:\n  - {{secretKey: TOKEN, remoteRef: {{key: {svc}-token}}}}\n",
    }


def overlay_files(cluster: str, tag: str = "v1.0.0") -> dict[str, str]:
    """One local cluster: 72 base objects + 12 generated ConfigMaps + its Namespace = 85 objects."""
    kustomization = [
        "apiVersion: kustomize.config.k8s.io/v1beta1",
        "kind: Kustomization",
        f"namespace: {cluster}",
        "labels:",
        f"- pairs: {{app.kubernetes.io/part-of: cave, cave.io/cluster: {cluster}}}",
        "resources:",
        "- namespace.yaml",
        *[f"- ../../base/{svc}" for svc in SERVICES],
        "components: [../../base/components/node-pool]",
        "images:",
        *[f"- {{name: ghcr.io/cave/{svc}, newTag: {tag}}}" for svc in SERVICES],
        "replicas:",
        *[f"- {{name: {svc}, count: 2}}" for svc in SERVICES],
        "configMapGenerator:",
        *[f"- {{name: {svc}-config, envs: [configs/{svc}.env]}}" for svc in SERVICES],
    ]
    files = {
        f"overlays/{cluster}/kustomization.yaml": "\n".join(kustomization) + "\n",
        f"overlays/{cluster}/namespace.yaml": f"apiVersion: v1\nkind: Namespace\nmetadata: {{name: {cluster}}}\n",
        f"environments/{cluster}.yaml": f"name: {cluster}\nkind: local\nkubernetes_version: '1.31'\n",
    }
    for svc in SERVICES:
        env = "".join(f"SETTING_{i}={cluster}-{svc}-{i}\n" for i in range(20))
        files[f"overlays/{cluster}/configs/{svc}.env"] = env
    return files


def make_fleet(root: Path, n: int) -> None:
    files: dict[str, str] = {}
    for svc in SERVICES:
        files |= base_files(svc)
    files["base/components/node-pool/kustomization.yaml"] = (
        "apiVersion: kustomize.config.k8s.io/v1alpha1\nkind: Component\n"
        "patches:\n- path: pool.yaml\n  target: {kind: Deployment}\n"
    )
    files["base/components/node-pool/pool.yaml"] = (
        "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: any}\n"
        "spec: {template: {spec: {nodeSelector: {cloud.google.com/gke-nodepool: standard}}}}\n"
    )
    for i in range(n):
        files |= overlay_files(f"cluster{i:03d}")
    files[".gitignore"] = ".cache/\n"
    for rel, text in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    git(root, "init", "-q", "-b", "main")
    git(root, "add", "-A")
    git(root, "commit", "-q", "-m", "fleet")


def make_cave_fleet(root: Path, n: int) -> None:
    """The generated CAVE fleet (1 global + n-1 locals) built with the compiler, committed."""
    sys.path.insert(0, str(REPO / "bench"))
    from fleet import make_fleet as make_specs

    make_specs(root, n - 1)
    (root / ".gitignore").write_text(".cache/\n")
    subprocess.run([sys.executable, "-m", "compiler", "-C", str(root), "build"], check=True, capture_output=True)
    git(root, "init", "-q", "-b", "main")
    git(root, "add", "-A")
    git(root, "commit", "-q", "-m", "fleet")


def git(root: Path, *args: str) -> None:
    subprocess.run(["git", "-C", str(root), *args], env={**os.environ, **GIT_ENV}, check=True, capture_output=True)


def measured(argv: list[str], cwd: Path | None = None) -> tuple[float, int]:
    """(wall seconds, peak RSS in MiB) of a command, from a fresh helper so rusage covers only it."""
    helper = (
        "import resource, subprocess, sys, time\n"
        "t = time.perf_counter()\n"
        "rc = subprocess.run(sys.argv[1:], stdout=subprocess.DEVNULL).returncode\n"
        "dt = time.perf_counter() - t\n"
        "peak = max(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss, "
        "resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)\n"
        "assert rc in (0, 1), rc\n"
        "print(dt, peak)\n"
    )
    out = subprocess.run([sys.executable, "-c", helper, *argv], cwd=cwd, capture_output=True, text=True, check=True)
    seconds, kib = out.stdout.split()
    return float(seconds), int(kib) // 1024


def cpu_split(root: Path) -> tuple[float, float, float]:
    """(wall s, the compiler's own CPU-s, its children's CPU-s: kustomize, git and the freshness check `diff` runs
    in a forked child) of `diff`, run in a fresh process so that both rusage counts cover only it. All that CPU over
    the cores is the floor a diff can reach."""
    helper = (
        "import contextlib, io, resource, sys, time\n"
        "from compiler.main import main\n"
        "t = time.perf_counter()\n"
        "with contextlib.redirect_stdout(io.StringIO()):\n"
        "    rc = main(sys.argv[1:])\n"
        "dt = time.perf_counter() - t\n"
        "me, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)\n"
        "assert rc in (0, 1), rc\n"
        "print(dt, me.ru_utime + me.ru_stime, kids.ru_utime + kids.ru_stime)\n"
    )
    argv = ["-C", str(root), "diff", "--format", "text"]
    out = subprocess.run([sys.executable, "-c", helper, *argv], capture_output=True, text=True, check=True,
                         env={**os.environ, "CAVE_GITOPS_PROGRESS": "off"})
    wall, own, children = (float(x) for x in out.stdout.split())
    return wall, own, children


def naive_script(root: Path, tool: kustomize.Kustomize, workers: int, base: str = "HEAD") -> list[str]:
    """Render every overlay on both sides (`base` and the working tree, one kustomize process each), then
    `diff -ru` (bench_pr.py uses it too)."""
    cmd = " ".join(tool.command)
    return [
        "bash",
        "-c",
        textwrap.dedent(f"""\
            set -e
            work=$(mktemp -d); trap 'rm -rf "$work"' EXIT
            mkdir -p "$work/tree" "$work/old" "$work/new"
            git -C {root} archive {base} environments overlays base | tar -x -C "$work/tree"
            render() {{ {cmd} "$2/overlays/$1" > "$3/$1.yaml"; }}
            export -f render
            ls {root}/overlays | xargs -P {workers} -I{{}} bash -c 'render {{}} "$0" "$1"' "$work/tree" "$work/old"
            ls {root}/overlays | xargs -P {workers} -I{{}} bash -c 'render {{}} "$0" "$1"' {root} "$work/new"
            diff -ru "$work/old" "$work/new" > "$work/diff.txt" || true
            """),
    ]


def median_run(
    argv: list[str], runs: int, before: list[str] | None = None, prepare: Path | None = None
) -> tuple[float, int]:
    times, peaks = [], []
    for _ in range(runs):
        if before:
            subprocess.run(before, check=True)
        if prepare:
            warm_base(prepare)
        seconds, peak = measured(argv)
        times.append(seconds)
        peaks.append(peak)
    return statistics.median(times), max(peaks)


def warm_base(root: Path) -> None:
    """Render HEAD's clusters into root's cache, as CI's run on main leaves it (not timed)."""
    with tempfile.TemporaryDirectory(prefix="cave-bench-head-") as tmp:
        head = GitSource(root, cgit.resolve_base(root, "HEAD")[1])
        head.export(head.files_under(""), Path(tmp))
        render_clusters(Path(tmp), list_clusters(Path(tmp)), cache=default_cache(root))


def scenario(root: Path, name: str, runs: int, tool: kustomize.Kustomize) -> None:
    ours = [sys.executable, "-m", "compiler", "-C", str(root), "diff", "--format", "text"]
    clear = ["rm", "-rf", str(root / ".cache")]
    cold, cold_peak = median_run(ours, runs, before=clear)
    base_warm, base_peak = median_run(ours, runs, before=clear, prepare=root)
    warm, warm_peak = median_run(ours, runs)  # the previous run cached both sides
    naive_seq, naive_peak = median_run(naive_script(root, tool, 1), runs)
    cpus = os.cpu_count() or 1
    naive_par, _ = median_run(naive_script(root, tool, cpus), runs)
    print(f"  ({name})")
    reduced, full = reduced_plans(root, "HEAD")
    kept = sorted({base for bases in reduced.values() for base in bases})
    reasons = sorted(set(full.values()))
    print(
        f"    reduced renders: {len(reduced)} clusters (kept {', '.join(kept) or '-'}); full: {len(full)}"
        + (f" ({'; '.join(reasons)[:200]})" if reasons else "")
    )
    subprocess.run(clear, check=True)
    wall, own, children = cpu_split(root)
    print(f"    ours, cold cache            {cold:7.2f} s   peak {cold_peak} MiB")
    print(f"      one cold run: {wall:.2f} s wall; the compiler's own CPU {own:.2f} s, its children (kustomize, git,"
          f" the forked freshness check) {children:.2f} CPU-s: at least {(own + children) / cpus:.2f} s on {cpus} CPUs")
    print(f"    ours, base side cached      {base_warm:7.2f} s   peak {base_peak} MiB")
    print(f"    ours, both sides cached     {warm:7.2f} s   peak {warm_peak} MiB")
    print(f"    naive, sequential           {naive_seq:7.2f} s   peak {naive_peak} MiB")
    print(f"    naive, {cpus} in parallel        {naive_par:7.2f} s")
    for label, ours_s in (("cold", cold), ("base cached", base_warm), ("both cached", warm)):
        print(
            f"    ours {label:<12} vs naive: {naive_seq / ours_s:6.1f}x (sequential), "
            f"{naive_par / ours_s:6.1f}x (parallel)"
        )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=[10, 100])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--fleet", choices=("synthetic", "cave"), default="synthetic")
    args = parser.parse_args()
    # Inside the repository's ignored .cache/: /tmp is a much slower filesystem here for many small files.
    scratch = REPO / ".cache" / "bench"
    scratch.mkdir(parents=True, exist_ok=True)
    tool = kustomize.find(REPO)
    # The fleets live outside the repository's root, so without $KUSTOMIZE the compiler runs there would not see its
    # .venv/bin/kubectl (and would probe another kustomize): every run, ours and the naive one, uses this one.
    os.environ.setdefault("KUSTOMIZE", tool.binary)
    print(f"kustomize: {' '.join(tool.command)} (v{tool.version}); cpus: {os.cpu_count()}; runs: {args.runs}")
    for n in args.sizes:
        with tempfile.TemporaryDirectory(prefix="cave-bench-", dir=scratch) as tmp:
            root = Path(tmp) / "fleet"
            if args.fleet == "cave":
                make_cave_fleet(root, n)
                first = "overlays/l001"
            else:
                make_fleet(root, n)
                first = "overlays/cluster000"
            objects = (
                subprocess.run([*tool.command, str(root / first)], capture_output=True, text=True, check=True)
                .stdout.count("\nkind: ")
                + 1
            )
            print(f"\nN={n} overlays ({args.fleet}), {objects} objects in {first}")
            if args.fleet == "cave":
                subprocess.run([sys.executable, "-m", "compiler", "-C", str(root), "bump", "materialize", "4.24.0",
                                "--cluster", "l001"], check=True, capture_output=True)
            else:
                kust = root / "overlays/cluster000/kustomization.yaml"
                kust.write_text(kust.read_text().replace("ghcr.io/cave/guidebook, newTag: v1.0.0",
                                                         "ghcr.io/cave/guidebook, newTag: v1.1.0"))
            scenario(root, "a: one cluster's image tag bumped", args.runs, tool)
            git(root, "checkout", "--", "environments", "overlays")
            if args.fleet == "cave":
                deployment = root / "base/materializationengine/deployment-celery-orchestration.yaml"
                deployment.write_text(deployment.read_text().replace("replicas: 2", "replicas: 3", 1))
            else:
                deployment = root / "base/annotationengine/deployment.yaml"
                deployment.write_text(deployment.read_text().replace("memory: 256Mi", "memory: 512Mi"))
            scenario(root, "b: base change touching every cluster", args.runs, tool)
            shutil.rmtree(root / ".cache", ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
