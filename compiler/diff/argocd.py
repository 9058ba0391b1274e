"""What a change does to overlays/argocd/, the app-of-apps: Applications added or removed, chart versions,
sources and destinations changed, and the other objects there (AppProject, argocd-cm) changed.

Read from the files on both sides (the base commit's blobs, the working tree's files), not rendered: build writes
them as plain manifests listed by one kustomization. Objects are matched by kind and name.

Both sides are also kept by sync wave (compiler/build/waves.py), for the PR comment's "Sync order" diagrams:
`SyncOrder` says which Applications a change adds, removes or moves to another wave, and which waves that
touches. A change of anything else (a chart version, Helm values, a destination) leaves the order as it is.
In JSON (compiler/diff/report.py) as `"waves": {"before": [...], "after": [...]}`: those Applications on each
side, as `{"kind", "name", "cluster", "wave", "what", "destination"}` (waves.WaveApp).
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from compiler import catalog, git
from compiler.build import waves
from compiler.build.compile import WAVE
from compiler.build.waves import WaveApp
from compiler.cache import ParsedCache
from compiler.paths import ARGOCD_DIR, OVERLAYS
from compiler.spec.yamlio import YAMLError, cached_parse, load_manifests

PREFIX = f"{OVERLAYS}/{ARGOCD_DIR}/"
CLUSTER_LABEL = catalog.CLUSTER_LABEL
# What a reviewer must see of an Application, in this order: (label, path in the object).
FIELDS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("chart", ("spec", "source", "chart")),
    ("chart version", ("spec", "source", "targetRevision")),
    ("source", ("spec", "source", "repoURL")),
    ("path", ("spec", "source", "path")),
    ("destination", ("spec", "destination", "server")),
    ("destination name", ("spec", "destination", "name")),
    ("destination namespace", ("spec", "destination", "namespace")),
    ("project", ("spec", "project")),
    ("sync wave", ("metadata", "annotations", WAVE)),
)


@dataclass(frozen=True)
class FieldChange:
    field: str
    old: str | None
    new: str | None


@dataclass
class AppChange:
    """An object of overlays/argocd/ that was added, removed or changed; for Applications, what they deploy."""

    kind: str
    name: str
    cluster: str | None  # the cave.io/cluster label (None: the root Application, the AppProject, argocd-cm)
    status: str  # added, removed, changed
    summary: str  # what it deploys where (the new one, or the removed one)
    changes: list[FieldChange] = field(default_factory=list)
    other: list[str] = field(default_factory=list)  # other changed paths (values, sync policy, ...)

    def as_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "name": self.name, "cluster": self.cluster, "status": self.status,
                "summary": self.summary, "changes": [{"field": c.field, "old": c.old, "new": c.new}
                                                     for c in self.changes],
                "other": list(self.other)}


@dataclass(frozen=True)
class SyncOrder:
    """Both sides of overlays/argocd/ by sync wave, and what a change does to the order: `marks` names each
    Application added, removed or moved to another wave ("changed"), of `clusters` only when given."""

    before: list[WaveApp]
    after: list[WaveApp]
    clusters: tuple[str, ...] = ()

    @property
    def marks(self) -> dict[str, str]:
        old = {a.name: a for a in self.before if a.kind == "Application"}
        new = {a.name: a for a in self.after if a.kind == "Application"}
        out: dict[str, str] = {}
        for name in sorted(old.keys() | new.keys()):
            a, b = old.get(name), new.get(name)
            either = b or a
            if self.clusters and either is not None and either.cluster not in self.clusters:
                continue
            if a is None or b is None:
                out[name] = "added" if a is None else "removed"
            elif a.wave != b.wave:
                out[name] = "changed"
        return out

    @property
    def waves(self) -> list[int]:
        """The waves holding a marked Application, on either side."""
        marks = self.marks
        return sorted({a.wave for a in [*self.before, *self.after] if a.name in marks and a.kind == "Application"})

    def side(self, which: str) -> list[WaveApp]:
        """Every object of the affected waves on one side ("before" or "after"): what its diagram draws."""
        affected = set(self.waves)
        return [a for a in (self.before if which == "before" else self.after) if a.wave in affected]

    def moved(self, which: str) -> list[WaveApp]:
        """The marked Applications as they are on one side (the JSON's "waves")."""
        marks = self.marks
        return [a for a in (self.before if which == "before" else self.after)
                if a.kind == "Application" and a.name in marks]


def _get(obj: Any, path: Sequence[str]) -> str | None:
    for part in path:
        if not isinstance(obj, Mapping) or part not in obj:
            return None
        obj = obj[part]
    return None if obj is None else str(obj)


def summary(obj: Mapping[str, Any]) -> str:
    """`chart cert-manager v1.19.0 (https://charts.jetstack.io) → daf-minnie/cert-manager, wave 2`, or a path."""
    if obj.get("kind") != "Application":
        return str(obj.get("kind"))
    chart = _get(obj, ("spec", "source", "chart"))
    repo = _get(obj, ("spec", "source", "repoURL")) or "?"
    revision = _get(obj, ("spec", "source", "targetRevision")) or "?"
    if chart:
        what = f"chart {chart} {revision} ({repo})"
    else:
        what = f"{_get(obj, ('spec', 'source', 'path')) or '.'} at {revision}"
    where = (_get(obj, ("spec", "destination", "name")) or _get(obj, ("spec", "destination", "server")) or "?")
    namespace = _get(obj, ("spec", "destination", "namespace"))
    wave = _get(obj, ("metadata", "annotations", WAVE))
    return f"{what} → {where}{'/' + namespace if namespace else ''}" + (f", wave {wave}" if wave else "")


def _paths(old: Any, new: Any, at: str = "") -> list[str]:
    """Dotted paths where two objects differ (a mapping's keys compared one by one, anything else as a whole)."""
    if isinstance(old, Mapping) and isinstance(new, Mapping):
        out: list[str] = []
        for key in sorted(set(old) | set(new), key=str):
            out += _paths(old.get(key), new.get(key), f"{at}.{key}" if at else str(key))
        return out
    return [] if old == new else [at]


def _objects(files: Iterable[bytes], parsed: ParsedCache | None = None) -> dict[tuple[str, str], dict[str, Any]]:
    """Objects by (kind, name) of YAML files; `parsed` keeps what each file's bytes parse to (the same files on both
    sides of a 100-cluster fleet's diff are otherwise parsed twice, every run)."""
    out: dict[tuple[str, str], dict[str, Any]] = {}
    for data in files:
        try:
            docs = cached_parse(parsed, "argocd-manifests", data, functools.partial(load_manifests, data),
                                lambda value: isinstance(value, list))
        except YAMLError:
            continue  # not YAML: build never writes such a file; the cluster diff and validate say more
        for doc in docs:
            if isinstance(doc, dict) and isinstance(doc.get("metadata"), dict):
                out[(str(doc.get("kind")), str(doc["metadata"].get("name")))] = doc
    return out


def compare(old: Mapping[tuple[str, str], dict[str, Any]], new: Mapping[tuple[str, str], dict[str, Any]],
            clusters: Sequence[str] = ()) -> list[AppChange]:
    """The objects that differ, Applications first, sorted by name; only `clusters`' when given."""
    out: list[AppChange] = []
    for key in sorted(set(old) | set(new), key=lambda k: (k[0] != "Application", k[1], k[0])):
        before, after = old.get(key), new.get(key)
        if before == after:
            continue
        obj = after if after is not None else before
        assert obj is not None
        cluster = _get(obj, ("metadata", "labels", CLUSTER_LABEL))
        if clusters and cluster not in clusters:
            continue
        kind, name = key
        if before is None or after is None:
            out.append(AppChange(kind, name, cluster, "added" if before is None else "removed", summary(obj)))
            continue
        change = AppChange(kind, name, cluster, "changed", summary(after))
        shown = set()
        if kind == "Application":
            for label, path in FIELDS:
                shown.add(".".join(path))
                if (a := _get(before, path)) != (b := _get(after, path)):
                    change.changes.append(FieldChange(label, a, b))
        change.other = [p for p in _paths(before, after) if p not in shown]
        out.append(change)
    return out


def diff_argocd(root: Path, commit: str, clusters: Sequence[str] = (), *, parsed: ParsedCache | None = None,
                changed: frozenset[str] | None = None) -> tuple[list[AppChange], SyncOrder]:
    """overlays/argocd/ at `commit` vs the working tree under `root`: the changes, and both sides by sync wave.
    When `changed` (git.changed_paths) says nothing there may differ, neither side is read: no changes, and a sync
    order that marks nothing (both sides equal)."""
    if changed is not None and not git.may_differ(changed, PREFIX):
        return [], SyncOrder([], [], tuple(clusters))
    tree = {rel: blob for rel, blob in git.ls_tree(root, commit).items()
            if rel.startswith(PREFIX) and rel.endswith((".yaml", ".yml"))}
    blobs = git.cat_blobs(root, sorted(set(tree.values())))
    old = _objects((blobs[b] for _, b in sorted(tree.items()) if b in blobs), parsed)
    directory = root / OVERLAYS / ARGOCD_DIR
    files = sorted(p for p in directory.rglob("*") if p.is_file() and p.suffix in (".yaml", ".yml")) \
        if directory.is_dir() else []
    new = _objects((p.read_bytes() for p in files), parsed)
    order = SyncOrder(waves.of_objects(old.values()), waves.of_objects(new.values()), tuple(clusters))
    return compare(old, new, clusters), order
