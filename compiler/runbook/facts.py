"""What the runbook knows beyond the specs: overlays in sync, and (online) the bootstrap plans read from Google."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path

from compiler.bootstrap import clients, desired, engine, providers
from compiler.bootstrap.engine import Outcome
from compiler.build.check import differences
from compiler.runbook.steps import Facts
from compiler.spec.fleet import locals_of
from compiler.spec.model import ClusterSpec, GlobalCluster


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


def gather(root: Path, name: str, specs: Mapping[str, ClusterSpec], *, online: bool,
           progress: Callable[[str], None] | None = None) -> Facts:
    """The facts a runbook is built from: overlay differences, and the plans when `online`."""
    return Facts(differences(root), plans(name, specs, progress) if online else None)
