"""What a diff is made of: changes, object diffs, cluster diffs, the result."""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from compiler.build.status import VersionChange
from compiler.diff.argocd import AppChange, SyncOrder
from compiler.render.jobs import Rendered

NO_SERVICE = "(cluster)"
ARGOCD_PREFIXES = ("argocd.argoproj.io/sync-wave", "argocd.argoproj.io/hook")
# List items carrying one of these keys are matched by it rather than by position.
_ITEM_KEYS = ("name", "secretKey")
# Fields whose values are secret: compared key by key, values never kept.
_SECRET_FIELDS: dict[str, tuple[tuple[str, ...], ...]] = {
    "Secret": (("data",), ("stringData",)),
    "ExternalSecret": (("spec", "target", "template", "data"), ("spec", "target", "template", "templateFrom")),
}
HASHED_KINDS = ("ConfigMap", "Secret")
_SUFFIX_RE = re.compile(r"^(.+)-([a-z0-9]{10})$")
# kustomize encodes the hash in hex with 0,1,3,a,e swapped for g,h,k,m,t (no vowels, no look-alikes).
_KUSTOMIZE_HASH_RE = re.compile(r"^[2456789bcdfghkmt]{10}$")
_ABSENT = object()

Obj = dict[str, Any]
ObjKey = tuple[str, str, str, str]


@dataclass(frozen=True)
class Change:
    """One field that differs: dotted path, what happened, old → new (None when absent or redacted)."""

    path: str
    op: str
    old: Any = None
    new: Any = None
    redacted: bool = False

    def as_dict(self) -> dict[str, Any]:
        return {"path": self.path, "op": self.op, "old": self.old, "new": self.new, "redacted": self.redacted}


@dataclass
class ObjectDiff:
    """An object that was added, removed or changed in one cluster."""

    cluster: str
    key: ObjKey
    service: str
    status: str
    old_name: str | None = None
    new_name: str | None = None
    changes: list[Change] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def label(self) -> str:
        """Kind/namespace/name; an added or removed generated object keeps its full (suffixed) name."""
        _, kind, namespace, name = self.key
        name = {"added": self.new_name, "removed": self.old_name}.get(self.status) or name
        return f"{kind}/{namespace}/{name}" if namespace else f"{kind}/{name}"

    def as_dict(self) -> dict[str, Any]:
        group, kind, namespace, name = self.key
        return {
            "group": group,
            "kind": kind,
            "namespace": namespace,
            "name": name,
            "service": self.service,
            "status": self.status,
            "old_name": self.old_name,
            "new_name": self.new_name,
            "changes": [c.as_dict() for c in self.changes],
            "notes": list(self.notes),
        }


@dataclass(frozen=True)
class ImageChange:
    cluster: str
    key: ObjKey
    container: str
    old: str | None
    new: str | None


@dataclass(frozen=True)
class ArgoChange:
    cluster: str
    key: ObjKey
    annotation: str
    old: str | None
    new: str | None


@dataclass
class ClusterDiff:
    """Everything that differs in one cluster, and per-service status for the matrix."""

    name: str
    status: str
    rendered: bool
    objects: list[ObjectDiff] = field(default_factory=list)
    unchanged_objects: int = 0
    services: dict[str, str] = field(default_factory=dict)
    images: list[ImageChange] = field(default_factory=list)
    argocd: list[ArgoChange] = field(default_factory=list)

    def count(self, status: str) -> int:
        return sum(1 for o in self.objects if o.status == status)


@dataclass
class RenderReport:
    """How a diff got its renders: reduced or full per cluster (and why full), kustomize runs, cache hits."""

    reduced: dict[str, tuple[str, ...]] = field(default_factory=dict)  # cluster → bases rendered
    full: dict[str, str] = field(default_factory=dict)  # cluster → why the full overlay was rendered
    renders: int = 0  # kustomize processes run
    cache_hits: int = 0  # renders read from the cache

    def count(self, rendered: Iterable[Rendered]) -> None:
        for r in rendered:
            if r.from_cache:
                self.cache_hits += 1
            else:
                self.renders += 1


@dataclass
class DiffResult:
    """The whole diff: base ref, and every cluster in the comparison (unchanged ones included)."""

    base_ref: str
    base_commit: str
    clusters: list[ClusterDiff]
    how: RenderReport = field(default_factory=lambda: RenderReport(), compare=False)  # not part of the diff
    # what the reader must know about the comparison itself, e.g. overlays at the base that are stale
    warnings: list[str] = field(default_factory=list)
    # overlays/argocd/: Applications added, removed or changed (chart versions, destinations), other objects there
    applications: list[AppChange] = field(default_factory=list)
    # service versions the specs change, per cluster (the `status` rows this change alters)
    versions: list[VersionChange] = field(default_factory=list)
    # both sides of overlays/argocd/ by sync wave, for the PR comment's diagrams (None: a result made without them)
    sync_order: SyncOrder | None = None

    @property
    def changed(self) -> bool:
        return any(c.status != "unchanged" for c in self.clusters) or bool(self.applications)

    @property
    def images(self) -> list[ImageChange]:
        return [i for c in self.clusters for i in c.images]

    @property
    def argocd(self) -> list[ArgoChange]:
        return [a for c in self.clusters for a in c.argocd]

    def clusters_with(self, status: str) -> list[str]:
        return [c.name for c in self.clusters if c.status == status]

    def matrix(self) -> tuple[list[str], list[str], dict[str, dict[str, str]]]:
        """(services, clusters that differ, service → cluster → status)."""
        clusters = [c for c in self.clusters if c.status != "unchanged"]
        services = sorted({s for c in clusters for s in c.services}, key=lambda s: (s == NO_SERVICE, s))
        cells = {s: {c.name: c.services[s] for c in clusters if s in c.services} for s in services}
        return services, [c.name for c in clusters], cells
