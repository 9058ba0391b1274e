"""What the runbook knows beyond the specs: overlays in sync, and (online) the bootstrap plans read from Google."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path

from compiler import git
from compiler.bootstrap import clients, desired, engine, providers
from compiler.bootstrap.engine import Outcome
from compiler.build.check import differences
from compiler.runbook.steps import Facts, Merged, merge_paths
from compiler.spec.fleet import locals_of
from compiler.spec.model import ClusterSpec, GlobalCluster
from compiler.spec.settings import load_settings


def plans(name: str, specs: Mapping[str, ClusterSpec],
          progress: Callable[[str], None] | None = None) -> dict[str, Outcome]:
    """The bootstrap plan (read from Google) of the cluster and, for a global one, of the locals using it."""
    clients.credentials()
    involved = [name, *(locals_of(name, specs) if isinstance(specs[name], GlobalCluster) else [])]
    out = {}
    for cluster in involved:
        if progress is not None:
            progress(f"reading the bootstrap plan of {cluster} ...")
        out[cluster] = engine.plan(desired.desired(specs[cluster]), providers.provider_for)
    return out


def merged(root: Path, name: str, remote: str = "origin") -> Merged:
    """Does `remote`'s branch that Argo CD deploys (gitops.yaml target_revision, as last fetched) hold the
    working tree's spec and overlays of cluster `name`? Not while a file differs from it or is not committed:
    a commit only on a local branch, or pushed to a pull-request branch, is not deployed."""
    loaded = load_settings(root)
    branch = loaded.settings.argocd.target_revision if loaded is not None else "main"
    ref = f"{remote}/{branch}"
    if not git.is_repo(root):
        return Merged("unknown", ref, detail=f"{root} is not a git repository")
    if git.resolve(root, f"refs/remotes/{ref}") is None:
        return Merged("todo", ref, tuple(merge_paths(name)),
                      detail=f"no {ref}: add the remote and `git fetch {remote}`, or push {branch}")
    paths = merge_paths(name)
    changed = git.run(root, "diff", "--name-only", "--no-renames", f"refs/remotes/{ref}", "--", *paths).stdout
    untracked = git.run(root, "ls-files", "--others", "--exclude-standard", "--", *paths).stdout
    files = sorted({line for line in (changed + untracked).splitlines() if line})
    return Merged("todo" if files else "done", ref, tuple(files))


def gather(root: Path, name: str, specs: Mapping[str, ClusterSpec], *, online: bool,
           progress: Callable[[str], None] | None = None) -> Facts:
    """The facts a runbook is built from: overlay differences, whether they are merged, and the plans when
    `online`."""
    return Facts(differences(root), plans(name, specs, progress) if online else None, merged(root, name))
