"""Semantic diff of rendered clusters between a git ref and the working tree, object by object.

Only clusters whose overlay inputs differ (content hash) are rendered; both sides render in parallel
through the render cache. When a cluster's only changed inputs are service bases, just those bases are
rendered, both sides in one kustomize process ("reduced renders", below; CAVE_GITOPS_FULL_RENDER=1 turns
them off). Objects are matched by cluster + api group/kind + namespace + name, with
kustomize hash suffixes of generated ConfigMaps/Secrets stripped (and references to them normalised),
so a config edit is one content change, not a delete and an add. Values of Secrets and of ExternalSecret
templates are never shown: only their key names and "value changed".

JSON schema (`--format json`), stable; fields are only ever added, `version` bumps otherwise:

    {
      "version": 1,
      "base": {"ref": str, "commit": str},          # what the working tree is compared with
      "changed": bool,                              # same as exit code 1
      "summary": {
        "clusters": {"added": [str], "removed": [str], "changed": [str], "unchanged": [str]},
        "objects": {"added": int, "removed": int, "changed": int}
      },
      "images": [{"cluster", "kind", "namespace", "name", "container", "old", "new"}],   # old/new: str|null
      "argocd": [{"cluster", "kind", "namespace", "name", "annotation", "old", "new"}],  # old/new: str|null
      "matrix": {"services": [str], "clusters": [str], "cells": {service: {cluster: status}}},
      "clusters": [{
        "name": str,
        "status": "added"|"removed"|"changed"|"unchanged",
        "rendered": bool,                           # false: inputs identical, nothing rendered
        "unchanged_objects": int,
        "objects": [{                               # objects that are not unchanged, sorted
          "group", "kind", "namespace", "name", "service": str,
          "status": "added"|"removed"|"changed",
          "old_name", "new_name": str|null,         # generated (hash-suffixed) names on each side
          "changes": [{"path": str, "op": "added"|"removed"|"changed"|"reordered",
                       "old": any, "new": any, "redacted": bool}],   # redacted: old/new are null
          "notes": [str]
        }]
      }]
    }

Matrix cell status: "added", "removed", "changed", "unchanged" (service has objects, none differ).
"""

from __future__ import annotations

import copy
import dataclasses
import difflib
import html
import json
import os
import re
import tempfile
from collections import defaultdict
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from compiler import git, kustomize, render
from compiler.errors import Problem, UserError

JSON_VERSION = 1
SERVICE_LABEL = "cave.io/service"
NO_SERVICE = "(cluster)"
ARGOCD_PREFIXES = ("argocd.argoproj.io/sync-wave", "argocd.argoproj.io/hook")
GITHUB_COMMENT_LIMIT = 65_000
# List items carrying one of these keys are matched by it rather than by position.
_ITEM_KEYS = ("name", "secretKey")
# Fields whose values are secret: compared key by key, values never kept.
_SECRET_FIELDS: dict[str, tuple[tuple[str, ...], ...]] = {
    "Secret": (("data",), ("stringData",)),
    "ExternalSecret": (("spec", "target", "template", "data"), ("spec", "target", "template", "templateFrom")),
}
_HASHED_KINDS = ("ConfigMap", "Secret")
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
class DiffResult:
    """The whole diff: base ref, and every cluster in the comparison (unchanged ones included)."""

    base_ref: str
    base_commit: str
    clusters: list[ClusterDiff]

    @property
    def changed(self) -> bool:
        return any(c.status != "unchanged" for c in self.clusters)

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


# --------------------------------------------------------------------------- generated names


def _suffix_split(obj: Mapping[str, Any]) -> tuple[str, str] | None:
    _, kind, _, name = render.object_id(obj)
    match = _SUFFIX_RE.match(name) if kind in _HASHED_KINDS else None
    return (match[1], match[2]) if match else None


def generated_names(side: Sequence[Obj], other: Sequence[Obj]) -> dict[tuple[str, str, str], str]:
    """(kind, namespace, full name) → base name for one side's hash-suffixed ConfigMaps/Secrets."""
    other_bases = {
        (render.object_id(o)[1], render.object_id(o)[2], split[0]) for o in other if (split := _suffix_split(o))
    }
    renames: dict[tuple[str, str, str], str] = {}
    for obj in side:
        split = _suffix_split(obj)
        if split is None:
            continue
        _, kind, namespace, name = render.object_id(obj)
        if _KUSTOMIZE_HASH_RE.match(split[1]) or (kind, namespace, split[0]) in other_bases:
            renames[(kind, namespace, name)] = split[0]
    # Two objects stripping to one name would merge: keep their full names instead.
    counts: dict[tuple[str, str, str], int] = defaultdict(int)
    for (kind, namespace, _), base in renames.items():
        counts[(kind, namespace, base)] += 1
    return {k: v for k, v in renames.items() if counts[(k[0], k[1], v)] == 1}


def _normalise(obj: Any, names: Mapping[str, str], used: set[str]) -> Any:
    """A copy of obj with every generated name replaced by its base name (the names used noted)."""
    if isinstance(obj, dict):
        return {k: _normalise(v, names, used) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_normalise(v, names, used) for v in obj]
    if isinstance(obj, str) and obj in names:
        used.add(obj)
        return names[obj]
    return obj


@dataclass
class _Side:
    """One side's objects keyed by normalised identity, with generated names and what refers to them."""

    objects: dict[ObjKey, Obj]
    full_names: dict[ObjKey, str]
    refs: dict[ObjKey, set[str]]
    generated: dict[str, tuple[str, str]]  # full name → (kind, base name)


def _index(side: Sequence[Obj], other: Sequence[Obj]) -> _Side:
    renames = generated_names(side, other)
    by_full = {full: base for (_, _, full), base in renames.items()}
    generated = {full: (kind, base) for (kind, _, full), base in renames.items()}
    objects: dict[ObjKey, Obj] = {}
    full_names: dict[ObjKey, str] = {}
    refs: dict[ObjKey, set[str]] = {}
    for obj in side:
        group, kind, namespace, name = render.object_id(obj)
        own = renames.get((kind, namespace, name))
        key = (group, kind, namespace, own or name)
        used: set[str] = set()
        objects[key] = _normalise(obj, by_full, used)
        used.discard(name)
        full_names[key] = name
        refs[key] = used
    return _Side(objects, full_names, refs, generated)


# --------------------------------------------------------------------------- field diffs


def _keyed_by(items: list[Any], key: str) -> bool:
    names = [i.get(key) if isinstance(i, dict) else None for i in items]
    return all(isinstance(n, str | int) for n in names) and len(set(names)) == len(names)


def _list_key(old: list[Any], new: list[Any]) -> str | None:
    """The key naming every item of both lists uniquely (containers, env, ports...), if any."""
    for key in _ITEM_KEYS:
        if (old or new) and _keyed_by(old, key) and _keyed_by(new, key):
            return key
    return None


def diff_values(old: Any, new: Any, path: str = "") -> Iterator[Change]:
    """Field-level changes from old to new; named list items matched by name."""
    if isinstance(old, dict) and isinstance(new, dict):
        for k in sorted(set(old) | set(new), key=str):
            sub = render.join_path(path, str(k))
            if k not in old:
                yield Change(sub, "added", None, new[k])
            elif k not in new:
                yield Change(sub, "removed", old[k], None)
            else:
                yield from diff_values(old[k], new[k], sub)
        return
    if isinstance(old, list) and isinstance(new, list):
        key = _list_key(old, new)
        if key is not None:
            olds = {i[key]: i for i in old}
            news = {i[key]: i for i in new}
            for name in [*olds, *[n for n in news if n not in olds]]:
                sub = f"{path}[{key}={name}]"
                if name not in news:
                    yield Change(sub, "removed", olds[name], None)
                elif name not in olds:
                    yield Change(sub, "added", None, news[name])
                else:
                    yield from diff_values(olds[name], news[name], sub)
            common_old = [n for n in olds if n in news]
            common_new = [n for n in news if n in olds]
            if common_old != common_new:
                yield Change(path, "reordered", common_old, common_new)
            return
        for i in range(max(len(old), len(new))):
            sub = render.join_path(path, i)
            if i >= len(new):
                yield Change(sub, "removed", old[i], None)
            elif i >= len(old):
                yield Change(sub, "added", None, new[i])
            else:
                yield from diff_values(old[i], new[i], sub)
        return
    if old != new or type(old) is not type(new):
        yield Change(path, "changed", old, new)


def _pop_path(obj: Any, path: tuple[str, ...]) -> Any:
    """Remove and return obj[path...] (on a copy), dropping parents it leaves empty; or _ABSENT."""
    parents = [obj]
    for key in path[:-1]:
        obj = obj.get(key) if isinstance(obj, dict) else None
        parents.append(obj)
    if not isinstance(obj, dict) or path[-1] not in obj:
        return _ABSENT
    value = obj.pop(path[-1])
    for parent, key in zip(reversed(parents[:-1]), reversed(path[:-1]), strict=True):
        if parent[key]:
            break
        del parent[key]
    return value


def _secret_changes(kind: str, old: Obj, new: Obj) -> tuple[Obj, Obj, list[Change]]:
    """Split secret-bearing fields off copies of both objects; compare them by key, values redacted."""
    fields = _SECRET_FIELDS.get(kind, ())
    if not fields:
        return old, new, []
    old, new = copy.deepcopy(old), copy.deepcopy(new)
    changes: list[Change] = []
    for path in fields:
        before, after = _pop_path(old, path), _pop_path(new, path)
        dotted = render.field_path(path)
        if before is _ABSENT and after is _ABSENT:
            continue
        if not all(v is _ABSENT or isinstance(v, dict) for v in (before, after)):
            if before != after:  # not a mapping of keys (e.g. a templateFrom list): one redacted change
                op = "added" if before is _ABSENT else "removed" if after is _ABSENT else "changed"
                changes.append(Change(dotted, op, redacted=True))
            continue
        b = before if isinstance(before, dict) else {}
        a = after if isinstance(after, dict) else {}
        for k in sorted(set(b) | set(a), key=str):
            sub = render.join_path(dotted, str(k))
            if k not in b:
                changes.append(Change(sub, "added", redacted=True))
            elif k not in a:
                changes.append(Change(sub, "removed", redacted=True))
            elif b[k] != a[k]:
                changes.append(Change(sub, "changed", redacted=True))
    return old, new, changes


def diff_object(kind: str, old: Obj, new: Obj) -> list[Change]:
    """Every field change between two versions of an object, secret values redacted."""
    old, new, secret = _secret_changes(kind, old, new)
    return sorted([*diff_values(old, new), *secret], key=lambda c: c.path)


# --------------------------------------------------------------------------- summaries


def _service(obj: Mapping[str, Any] | None) -> str | None:
    labels = ((obj or {}).get("metadata") or {}).get("labels") or {}
    value = labels.get(SERVICE_LABEL)
    return str(value) if value else None


def _images(obj: Obj | None) -> dict[str, str]:
    """container name → image of a workload's pod template (init containers too)."""
    if obj is None:
        return {}
    spec: Any = obj.get("spec") or {}
    for step in ("jobTemplate", "spec", "template", "spec") if obj.get("kind") == "CronJob" else ("template", "spec"):
        if obj.get("kind") == "Pod":
            break
        spec = spec.get(step) if isinstance(spec, dict) else None
    if not isinstance(spec, dict):
        return {}
    return {
        str(c.get("name")): str(c.get("image"))
        for key in ("initContainers", "containers")
        for c in spec.get(key) or []
        if isinstance(c, dict) and c.get("image")
    }


def _argocd_annotations(obj: Obj | None) -> dict[str, str]:
    annotations = ((obj or {}).get("metadata") or {}).get("annotations") or {}
    return {str(k): str(v) for k, v in annotations.items() if str(k).startswith(ARGOCD_PREFIXES)}


def _service_status(statuses: list[str]) -> str:
    differing = [s for s in statuses if s != "unchanged"]
    if not differing:
        return "unchanged"
    if len(differing) == len(statuses) and len(set(differing)) == 1:
        return differing[0]
    return "changed"


def diff_cluster(cluster: str, old: Sequence[Obj] | None, new: Sequence[Obj] | None) -> ClusterDiff:
    """Compare one cluster's rendered objects (None: the cluster does not exist on that side)."""
    old_side = _index(old or [], new or [])
    new_side = _index(new or [], old or [])
    # Generated ConfigMaps/Secrets whose content (so name) changed: pods using them roll.
    rolled = {
        full: kind_base
        for full, kind_base in new_side.generated.items()
        if full not in old_side.generated and kind_base in old_side.generated.values()
    }
    objects: list[ObjectDiff] = []
    unchanged = 0
    per_service: dict[str, list[str]] = defaultdict(list)
    images: list[ImageChange] = []
    argocd: list[ArgoChange] = []
    for key in sorted(set(old_side.objects) | set(new_side.objects)):
        before, after = old_side.objects.get(key), new_side.objects.get(key)
        service = _service(after) or _service(before) or NO_SERVICE
        diff = ObjectDiff(
            cluster,
            key,
            service,
            "changed",
            old_name=old_side.full_names.get(key),
            new_name=new_side.full_names.get(key),
        )
        if before is None:
            diff.status = "added"
        elif after is None:
            diff.status = "removed"
        else:
            diff.changes = diff_object(key[1], before, after)
            diff.notes = [
                f"pods roll: {rolled[full][0]} {rolled[full][1]} changed (now {full})"
                for full in sorted(new_side.refs.get(key, set()) & set(rolled))
            ]
            if not diff.changes and not diff.notes:
                unchanged += 1
                per_service[service].append("unchanged")
                continue
            if diff.old_name != diff.new_name:
                diff.notes.append(f"generated name {diff.old_name} → {diff.new_name}")
            old_images, new_images = _images(before), _images(after)
            for name in sorted(set(old_images) | set(new_images)):
                if old_images.get(name) != new_images.get(name):
                    images.append(ImageChange(cluster, key, name, old_images.get(name), new_images.get(name)))
        # A whole cluster added or removed is one event; its objects' waves are not news on their own.
        both_sides = old is not None and new is not None
        old_argo = _argocd_annotations(before) if both_sides else {}
        new_argo = _argocd_annotations(after) if both_sides else {}
        for annotation in sorted(set(old_argo) | set(new_argo)):
            if old_argo.get(annotation) != new_argo.get(annotation):
                argocd.append(ArgoChange(cluster, key, annotation, old_argo.get(annotation), new_argo.get(annotation)))
        per_service[service].append(diff.status)
        objects.append(diff)
    if old is None:
        status = "added"
    elif new is None:
        status = "removed"
    else:
        status = "changed" if objects else "unchanged"
    services = {s: _service_status(v) for s, v in sorted(per_service.items())}
    return ClusterDiff(cluster, status, True, objects, unchanged, services, images, argocd)


# --------------------------------------------------------------------------- parsing only what differs

_DOC_SEPARATOR = re.compile(r"^---[ \t]*\n", re.M)
_TOP_RE = re.compile(r"^(apiVersion|kind): *(.+)$", re.M)
_META_RE = re.compile(r"^metadata:\n((?:(?:  .*)?\n)*)", re.M)
_META_FIELD_RE = re.compile(r"^  (name|namespace): *(.+)$", re.M)
_SERVICE_RE = re.compile(r"^  labels:\n(?:    .*\n)*?    " + re.escape(SERVICE_LABEL) + r": *(.+)$", re.M)


def _scalar(text: str) -> str:
    text = text.strip()
    return text[1:-1] if len(text) >= 2 and text[0] == text[-1] and text[0] in "'\"" else text


def _stub(document: str) -> Obj | None:
    """Identity and service label of a document in kustomize's canonical layout, without parsing it
    (None when the layout is not recognised: the caller parses the document instead)."""
    top = dict(_TOP_RE.findall(document))
    meta = _META_RE.search(document + "\n")
    if "kind" not in top or "apiVersion" not in top or not meta:
        return None
    fields = {k: _scalar(v) for k, v in _META_FIELD_RE.findall(meta[1])}
    if "name" not in fields or any(c in v for v in (*top.values(), *fields.values()) for c in "{}[]&*!|>#"):
        return None
    metadata: Obj = dict(fields)
    if service := _SERVICE_RE.search(meta[1]):
        metadata["labels"] = {SERVICE_LABEL: _scalar(service[1])}
    return {"apiVersion": _scalar(top["apiVersion"]), "kind": _scalar(top["kind"]), "metadata": metadata}


def split_documents(text: str) -> list[str]:
    """The documents of kustomize's output (empty ones dropped)."""
    return [d for d in _DOC_SEPARATOR.split(text) if d.strip()]


def comparable_objects(old_text: str | None, new_text: str | None) -> tuple[list[Obj] | None, list[Obj] | None]:
    """Both sides' objects for diff_cluster; a document byte-identical on both sides becomes a stub
    (identity and service only), so the cost follows what changed, not the size of the cluster."""
    old_docs = split_documents(old_text) if old_text is not None else None
    new_docs = split_documents(new_text) if new_text is not None else None
    same = set(old_docs or ()) & set(new_docs or ())
    stubs = {d: _stub(d) for d in same}

    def objects(docs: list[str] | None) -> list[Obj] | None:
        if docs is None:
            return None
        out = []
        for doc in docs:
            stub = stubs.get(doc)
            out += [stub] if stub is not None else render.parse_objects(doc)
        return out

    return objects(old_docs), objects(new_docs)


def _add_unrendered(diff: ClusterDiff, unrendered: Sequence[tuple[str, str, str]]) -> ClusterDiff:
    """The cluster's diff with the objects left out of a reduced render counted as unchanged."""
    count: dict[str, int] = defaultdict(int)
    for _, _, service in unrendered:
        count[service] += 1
    services = dict(diff.services)
    for service in count:
        status = services.get(service, "unchanged")
        services[service] = status if status in ("unchanged", "changed") else "changed"
    diff.services = dict(sorted(services.items()))
    diff.unchanged_objects += len(unrendered)
    return diff


# --------------------------------------------------------------------------- the pipeline


def diff_sources(
    old: render.Source,
    new: render.FsSource,
    clusters: Sequence[str] = (),
    *,
    cache: render.RenderCache | None = None,
    workers: int | None = None,
    reduced: bool | None = None,
) -> list[ClusterDiff]:
    """Diff the clusters of two trees (the old one may be a git commit, exported only where a
    cluster's content hash differs); renders of both sides run in parallel. A cluster whose only
    changed inputs are service bases is rendered reduced (compiler/reduced.py) unless `reduced` is False or
    $CAVE_GITOPS_FULL_RENDER is set; compiler.reduced.REDUCED says what was done."""
    from compiler import reduced as reduction  # it builds on this module's parsing helpers

    if reduced is None:
        reduced = not os.environ.get(reduction.FULL_RENDER_ENV)
    reduction.REDUCED.reset()
    old_known, new_known = render.clusters_in(old), render.clusters_in(new)
    wanted = sorted(set(old_known) | set(new_known))
    if clusters:
        missing = [c for c in clusters if c not in wanted]
        if missing:
            known = ", ".join(wanted) or "none"
            raise UserError(
                [
                    Problem(f"overlays/{c}", message=f"unknown cluster {c!r} on both sides (known: {known})")
                    for c in missing
                ]
            )
        wanted = sorted(set(clusters))
    tool = kustomize.find(new.root)
    old_hasher, new_hasher = render.InputHasher(old), render.InputHasher(new)

    def key(hasher: render.InputHasher, cluster: str) -> str:
        return hasher.overlay_hash(f"overlays/{cluster}", tool.version)

    result: dict[str, ClusterDiff] = {}
    pending: list[str] = []
    for cluster in wanted:
        same = cluster in old_known and cluster in new_known and key(old_hasher, cluster) == key(new_hasher, cluster)
        if same and not old_hasher.inputs(f"overlays/{cluster}").remotes:  # remote inputs: always render
            result[cluster] = ClusterDiff(cluster, "unchanged", rendered=False)
        else:
            pending.append(cluster)
    plans: dict[str, reduction.Plan] = {}
    planner = reduction.Planner(old, new, {"old": old_hasher, "new": new_hasher}, tool.version)
    for cluster in pending:
        if not (cluster in old_known and cluster in new_known):
            continue
        plan = planner.plan(cluster) if reduced else "reduced renders disabled"
        if isinstance(plan, str):
            reduction.REDUCED.full[cluster] = plan
        else:
            plans[cluster] = plan

    def full_jobs(names: Sequence[str]) -> dict[tuple[str, str], render.RenderJob]:
        return {
            (side, cluster): render.make_job(
                old_hasher if side == "old" else new_hasher,
                f"overlays/{cluster}" + (f" at {old.label}" if side == "old" else ""),
                f"overlays/{cluster}",
                Path("overlays") / cluster,  # relative until we know where the side's files are
                tool.version,
            )
            for cluster in names
            for side, known in (("old", old_known), ("new", new_known))
            if cluster in known
        }

    pair_jobs = {
        c: render.RenderJob(f"overlays/{c} (reduced render)", Path("pairs") / c, p.key) for c, p in plans.items()
    }
    jobs = full_jobs([c for c in pending if c not in plans])
    rendered = {slot: hit for slot, job in jobs.items() if (hit := render.from_cache(job, cache))}
    pairs = {c: hit for c, job in pair_jobs.items() if (hit := render.from_cache(job, cache))}
    problems: list[Problem] = []
    with tempfile.TemporaryDirectory(prefix="cave-diff-base-") as tmp:
        # Only renders the cache does not have need the old side's files on disk.
        pair_misses = [c for c in pair_jobs if c not in pairs]
        pair_dir = reduction.materialise([plans[c] for c in pair_misses], old, new, Path(tmp) / "reduced")

        def full_todo(slots: Sequence[tuple[str, str]], where: Path) -> list[render.RenderJob]:
            old_dir = _checkout(old, old_hasher, [c for side, c in slots if side == "old"], where)
            return [
                dataclasses.replace(jobs[s], overlay=(old_dir if s[0] == "old" else new.root) / jobs[s].overlay)
                for s in slots
            ]

        misses = [slot for slot in jobs if slot not in rendered]
        todo = [dataclasses.replace(pair_jobs[c], overlay=pair_dir[c]) for c in pair_misses]
        todo += full_todo(misses, Path(tmp) / "full")
        outcomes = render.render_jobs_settled(todo, tool, cache, workers)
        for c, outcome in zip(pair_misses, outcomes[: len(pair_misses)], strict=True):
            if isinstance(outcome, render.Rendered):
                pairs[c] = outcome
            else:
                reduction.REDUCED.full[c] = f"reduced render failed: {'; '.join(p.message for p in outcome.problems)}"
        for slot, outcome in zip(misses, outcomes[len(pair_misses) :], strict=True):
            if isinstance(outcome, render.Rendered):
                rendered[slot] = outcome
            else:
                problems.extend(outcome.problems)
        split: dict[str, dict[str, str]] = {}
        for c, pair in pairs.items():
            sides = reduction.split_pair(pair.text)
            if sides is None:
                reduction.REDUCED.full[c] = "the sentinel namespace landed elsewhere than metadata.namespace"
            else:
                split[c] = sides
        fallback = [c for c in plans if c not in split]
        if fallback:  # render these in full after all (rare: a precondition kustomize saw differently)
            extra = full_jobs(fallback)
            jobs |= extra
            rendered |= {slot: hit for slot, job in extra.items() if (hit := render.from_cache(job, cache))}
            slots = [slot for slot in extra if slot not in rendered]
            outcomes = render.render_jobs_settled(full_todo(slots, Path(tmp) / "fallback"), tool, cache, workers)
            for slot, outcome in zip(slots, outcomes, strict=True):
                if isinstance(outcome, render.Rendered):
                    rendered[slot] = outcome
                else:
                    problems.extend(outcome.problems)
    if problems:
        raise UserError(problems)
    for cluster, sides in split.items():
        reduction.REDUCED.reduced[cluster] = plans[cluster].kept
        old_objects, new_objects = comparable_objects(sides["old"], sides["new"])
        result[cluster] = _add_unrendered(diff_cluster(cluster, old_objects, new_objects), plans[cluster].unrendered)
    for cluster in wanted:
        if cluster not in result:
            before, after = rendered.get(("old", cluster)), rendered.get(("new", cluster))
            old_objects, new_objects = comparable_objects(
                before.text if before else None, after.text if after else None
            )
            result[cluster] = diff_cluster(cluster, old_objects, new_objects)
    return [result[c] for c in wanted]


def reduced_plans(root: Path, base: str | None = None) -> tuple[dict[str, tuple[str, ...]], dict[str, str]]:
    """Which changed clusters `diff` would render reduced (→ bases kept) and which in full (→ why); renders
    nothing (for benchmarks and debugging)."""
    from compiler import reduced as reduction

    root = root.absolute()
    _, commit = git.resolve_base(root, base)
    old, new = render.GitSource(root, commit), render.worktree_source(root)
    version = kustomize.find(root).version
    hashers = {"old": render.InputHasher(old), "new": render.InputHasher(new)}
    planner = reduction.Planner(old, new, hashers, version)
    reduced: dict[str, tuple[str, ...]] = {}
    full: dict[str, str] = {}
    for cluster in sorted(set(render.clusters_in(old)) & set(render.clusters_in(new))):
        overlay = f"overlays/{cluster}"
        if hashers["old"].overlay_hash(overlay, version) == hashers["new"].overlay_hash(overlay, version):
            continue
        plan = planner.plan(cluster)
        if isinstance(plan, str):
            full[cluster] = plan
        else:
            reduced[cluster] = plan.kept
    return reduced, full


def _checkout(source: render.Source, hasher: render.InputHasher, clusters: Sequence[str], tmp: Path) -> Path:
    """A directory holding the source's files for rendering these clusters (exported from git if needed)."""
    if isinstance(source, render.FsSource):
        return source.root
    assert isinstance(source, render.GitSource)
    rels: set[str] = set()
    for cluster in clusters:
        inputs = hasher.inputs(f"overlays/{cluster}")
        rels |= {rel for rel, digest in inputs.files.items() if digest != "missing"}
    source.export(sorted(rels), tmp)
    return tmp


def diff_ref(
    root: Path,
    base: str | None = None,
    clusters: Sequence[str] = (),
    *,
    cache: render.RenderCache | None = None,
    use_cache: bool = True,
    workers: int | None = None,
    reduced: bool | None = None,
) -> DiffResult:
    """Diff the working tree at root against a git ref (default: merge-base with origin/main, else HEAD)."""
    root = root.absolute()
    label, commit = git.resolve_base(root, base)
    if use_cache and cache is None:
        cache = render.default_cache(root)
    old = render.GitSource(root, commit)
    old.label = f"{label} ({commit[:12]})"
    new = render.worktree_source(root)
    diffs = diff_sources(old, new, clusters, cache=cache if use_cache else None, workers=workers, reduced=reduced)
    return DiffResult(label, commit, diffs)


# --------------------------------------------------------------------------- formatting helpers


STATUS_MARK = {"added": "+", "removed": "-", "changed": "~", "unchanged": "=", "reordered": "~"}


def _value(value: Any, limit: int = 300) -> str:
    """A value on one line: strings bare (quoted when ambiguous), others as compact JSON."""
    if isinstance(value, str) and value and value.strip() == value and "\n" not in value and len(value) <= limit:
        return value
    text = json.dumps(value, sort_keys=True, ensure_ascii=False)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def change_lines(change: Change) -> list[str]:
    """A change as diff-style lines: a header and `-`/`+` lines (unified diff for multi-line text)."""
    if change.redacted:
        what = {"added": "added", "removed": "removed", "changed": "value changed"}[change.op]
        return [f"{change.path}: {what} (secret value not shown)"]
    if change.op == "reordered":
        return [f"{change.path}: reordered {_value(change.old)} → {_value(change.new)}"]
    old, new = change.old, change.new
    if isinstance(old, str) and isinstance(new, str) and ("\n" in old or "\n" in new):
        body = list(difflib.unified_diff(old.splitlines(), new.splitlines(), lineterm="", n=2))[2:]
        return [f"{change.path}: text changed", *body]
    if change.op == "added":
        return [f"{change.path}: added {_value(new)}"]
    if change.op == "removed":
        return [f"{change.path}: removed (was {_value(old)})"]
    return [f"{change.path}: {_value(old)} → {_value(new)}"]


def _short_image_change(old: str | None, new: str | None) -> str:
    if old and new:
        repo_old, _, tag_old = old.rpartition(":") if "@" not in old else (old, "", "")
        repo_new, _, tag_new = new.rpartition(":") if "@" not in new else (new, "", "")
        if repo_old and repo_old == repo_new and "/" not in tag_old + tag_new:
            return f"{repo_old}: {tag_old} → {tag_new}"
    return f"{old or '(none)'} → {new or '(none)'}"


def grouped_images(result: DiffResult) -> list[tuple[str, list[str]]]:
    """(image change, clusters) with identical changes grouped, sorted."""
    groups: dict[str, set[str]] = defaultdict(set)
    for change in result.images:
        groups[_short_image_change(change.old, change.new)].add(change.cluster)
    return sorted((text, sorted(clusters)) for text, clusters in groups.items())


def _object_label(key: ObjKey) -> str:
    _, kind, namespace, name = key
    return f"{kind}/{namespace}/{name}" if namespace else f"{kind}/{name}"


def argocd_lines(result: DiffResult) -> list[str]:
    return [
        f"{a.cluster}: {_object_label(a.key)}: {a.annotation} {a.old if a.old is not None else '(none)'}"
        f" → {a.new if a.new is not None else '(none)'}"
        for a in result.argocd
    ]


def matrix_columns(result: DiffResult) -> tuple[list[str], list[tuple[list[str], dict[str, str]]]]:
    """(services, columns): clusters with identical per-service status share one column."""
    services, clusters, cells = result.matrix()
    columns: dict[tuple[str, ...], list[str]] = {}
    for cluster in clusters:
        signature = tuple(cells[s].get(cluster, "") for s in services)
        columns.setdefault(signature, []).append(cluster)
    out = [(members, {s: cells[s].get(members[0], "") for s in services}) for members in columns.values()]
    return services, out


def _column_title(members: list[str]) -> str:
    return ", ".join(members) if len(members) <= 3 else f"{members[0]}, {members[1]} +{len(members) - 2} more"


def headline(result: DiffResult) -> str:
    counts = {s: len(result.clusters_with(s)) for s in ("added", "removed", "changed", "unchanged")}
    objects = {s: sum(c.count(s) for c in result.clusters) for s in ("added", "changed", "removed")}
    parts = [f"{n} {s}" for s, n in counts.items() if n]
    return (
        f"clusters: {', '.join(parts) or 'none'}; objects: {objects['added']} added, "
        f"{objects['changed']} changed, {objects['removed']} removed"
    )


# --------------------------------------------------------------------------- text


_COLORS = {"+": "\033[32m", "-": "\033[31m", "~": "\033[33m", "bold": "\033[1m", "dim": "\033[2m"}
_RESET = "\033[0m"


def format_text(result: DiffResult, color: bool = False) -> str:
    """Plain (or ANSI-coloured) report: summary first, then every object's changes."""

    def paint(style: str, text: str) -> str:
        return f"{_COLORS[style]}{text}{_RESET}" if color and style in _COLORS else text

    out = [
        paint("bold", f"diff {result.base_ref} ({result.base_commit[:12]}) → working tree"),
        headline(result),
    ]
    removed_clusters = result.clusters_with("removed")
    if removed_clusters:
        out.append(paint("-", f"REMOVED clusters (every object deleted): {', '.join(removed_clusters)}"))
    if result.images:
        out += ["", paint("bold", "Images")]
        out += [f"  {text}  [{', '.join(clusters)}]" for text, clusters in grouped_images(result)]
    if result.argocd:
        out += ["", paint("bold", "Argo CD sync waves and hooks")]
        out += [f"  {line}" for line in argocd_lines(result)]
    services, columns = matrix_columns(result)
    if columns:
        out += ["", paint("bold", "Services × clusters") + "  (+ added, ~ changed, - removed, = unchanged)"]
        width = max(len(s) for s in services) if services else 8
        titles = [_column_title(m) for m, _ in columns]
        out.append("  " + " " * width + "  " + "  ".join(titles))
        for service in services:
            cells = []
            for (_, statuses), title in zip(columns, titles, strict=True):
                mark = STATUS_MARK.get(statuses[service], ".")
                cells.append(paint(mark, mark) + " " * (len(title) - 1))
            out.append(f"  {service.ljust(width)}  " + "  ".join(cells))
        for members, _ in columns:
            if len(members) > 3:
                out.append(f"  {_column_title(members)}: {', '.join(members)}")
    unchanged = result.clusters_with("unchanged")
    if unchanged:
        out += ["", f"unchanged clusters: {', '.join(unchanged)}"]
    for cluster in result.clusters:
        if cluster.status == "unchanged":
            continue
        out += ["", paint("bold", f"{cluster.name} ({cluster.status})")]
        for obj in cluster.objects:
            mark = STATUS_MARK[obj.status]
            out.append(paint(mark, f"{mark} {obj.label}") + paint("dim", f"  [{obj.service}] {obj.status}"))
            for change in obj.changes:
                for i, line in enumerate(change_lines(change)):
                    style = line[:1] if i and line[:1] in "+-" else ""
                    out.append("    " + (paint(style, line) if style else line))
            out += [f"    note: {note}" for note in obj.notes]
    return "\n".join(out) + "\n"


# --------------------------------------------------------------------------- markdown


def _md(text: str) -> str:
    """Text safe inside a markdown table cell or list item."""
    return html.escape(text, quote=False).replace("|", "\\|").replace("`", "'")


def _fence(lines: Sequence[str]) -> str:
    longest = max((len(m) for line in lines for m in re.findall(r"`+", line)), default=0)
    ticks = "`" * max(3, longest + 1)
    return f"{ticks}diff\n" + "\n".join(lines) + f"\n{ticks}\n"


def _md_change_lines(change: Change) -> list[str]:
    """A change for a ```diff block: old values on `-` lines and new on `+` lines, so GitHub colours them."""
    lines = change_lines(change)
    if change.redacted or change.op == "reordered":
        return [f"  {lines[0]}"]
    if len(lines) > 1:  # multi-line text: a unified diff body already
        body = [f"  {line}" if line.startswith("@@") else f"{line[:1] or ' '}     {line[1:]}" for line in lines[1:]]
        return [f"  {lines[0]}", *body]
    if change.op == "added":
        return [f"+   {change.path}: {_value(change.new)}"]
    if change.op == "removed":
        return [f"-   {change.path}: {_value(change.old)}"]
    return [f"  {change.path}:", f"-     {_value(change.old)}", f"+     {_value(change.new)}"]


def _cluster_lines(cluster: ClusterDiff, full: bool) -> list[str]:
    lines: list[str] = []
    for obj in cluster.objects:
        if obj.status == "changed":
            lines.append(f"@@ ~ {obj.label}  [{obj.service}] changed @@")
        else:
            lines.append(f"{STATUS_MARK[obj.status]} {obj.label}  [{obj.service}] {obj.status}")
        if full:
            for change in obj.changes:
                lines += _md_change_lines(change)
            lines += [f"  note: {note}" for note in obj.notes]
    return lines


def _cluster_section(cluster: ClusterDiff, full: bool) -> str:
    counts = ", ".join(f"{cluster.count(s)} {s}" for s in ("added", "changed", "removed") if cluster.count(s))
    summary = f"<b>{_md(cluster.name)}</b> ({cluster.status}: {counts or 'no object differs'})"
    body = _fence(_cluster_lines(cluster, full))
    note = "" if full else "\n_Field changes cut to fit; run the diff locally for them._\n"
    return f"<details><summary>{summary}</summary>\n\n{body}{note}\n</details>\n"


def format_markdown(result: DiffResult, max_chars: int = GITHUB_COMMENT_LIMIT) -> str:
    """A GitHub PR comment: the summary always, then per-cluster <details>, cut to stay under max_chars."""
    top = [
        f"### Rendered diff: `{_md(result.base_ref)}` ({result.base_commit[:12]}) → this branch",
        "",
        f"**{headline(result)}**",
    ]
    removed_clusters = result.clusters_with("removed")
    if removed_clusters:
        top += [
            "",
            f"**Removed clusters (every object deleted):** {', '.join(_md(c) for c in removed_clusters)}",
        ]
    if result.images:
        top += ["", "**Images**", "", "| image change | clusters |", "| --- | --- |"]
        top += [f"| {_md(text)} | {_md(', '.join(clusters))} |" for text, clusters in grouped_images(result)]
    if result.argocd:
        top += ["", "**Argo CD sync waves and hooks**", ""]
        top += [f"- {_md(line)}" for line in argocd_lines(result)]
    services, columns = matrix_columns(result)
    if columns:
        top += ["", "**Services × clusters** (+ added, ~ changed, − removed, = unchanged)", ""]
        top.append("| service | " + " | ".join(_md(_column_title(m)) for m, _ in columns) + " |")
        top.append("| --- |" + " :---: |" * len(columns))
        for service in services:
            row = [f"{STATUS_MARK.get(s[service], '')} {s[service]}".strip() for _, s in columns]
            top.append(f"| {_md(service)} | " + " | ".join(row) + " |")
        grouped = [m for m, _ in columns if len(m) > 3]
        top += [""] + [f"- {_md(_column_title(m))}: {_md(', '.join(m))}" for m in grouped] if grouped else []
    unchanged = result.clusters_with("unchanged")
    if unchanged:
        top += ["", f"Unchanged clusters: {_md(', '.join(unchanged))}"]
    text = "\n".join(top) + "\n\n"
    # Reserve room for the note about what was cut, so adding it never breaks the limit.
    budget = max_chars - 600
    cut_fields: list[str] = []
    cut_all: list[str] = []
    cut_objects = 0
    for cluster in result.clusters:
        if cluster.status == "unchanged":
            continue
        section = _cluster_section(cluster, full=True)
        if len(text) + len(section) > budget:
            section = _cluster_section(cluster, full=False)
            if len(text) + len(section) > budget:
                cut_all.append(cluster.name)
                cut_objects += len(cluster.objects)
                continue
            cut_fields.append(cluster.name)
        text += section
    if cut_fields or cut_all:
        parts = []
        if cut_fields:
            parts.append(f"field changes of {', '.join(_md(c) for c in cut_fields)}")
        if cut_all:
            parts.append(
                f"all details of {len(cut_all)} cluster(s) ({cut_objects} objects): {_md(', '.join(cut_all))}"[:400]
            )
        text += (
            f"\n**Cut to fit a GitHub comment ({max_chars:,} characters):** {'; '.join(parts)}. "
            f"Run `python -m compiler diff --base {result.base_commit[:12]}` for everything.\n"
        )
    return text


# --------------------------------------------------------------------------- json


def as_json_data(result: DiffResult) -> dict[str, Any]:
    """The documented JSON structure (see the module docstring)."""
    services, clusters, cells = result.matrix()

    def ident(cluster: str, key: ObjKey) -> dict[str, str]:
        return {"cluster": cluster, "kind": key[1], "namespace": key[2], "name": key[3]}

    return {
        "version": JSON_VERSION,
        "base": {"ref": result.base_ref, "commit": result.base_commit},
        "changed": result.changed,
        "summary": {
            "clusters": {s: result.clusters_with(s) for s in ("added", "removed", "changed", "unchanged")},
            "objects": {s: sum(c.count(s) for c in result.clusters) for s in ("added", "removed", "changed")},
        },
        "images": [
            {**ident(i.cluster, i.key), "container": i.container, "old": i.old, "new": i.new} for i in result.images
        ],
        "argocd": [
            {**ident(a.cluster, a.key), "annotation": a.annotation, "old": a.old, "new": a.new} for a in result.argocd
        ],
        "matrix": {"services": services, "clusters": clusters, "cells": cells},
        "clusters": [
            {
                "name": c.name,
                "status": c.status,
                "rendered": c.rendered,
                "unchanged_objects": c.unchanged_objects,
                "objects": [o.as_dict() for o in c.objects],
            }
            for c in result.clusters
        ],
    }


def format_json(result: DiffResult) -> str:
    return json.dumps(as_json_data(result), indent=2, sort_keys=True, ensure_ascii=False, default=str) + "\n"


def format_result(result: DiffResult, fmt: str, *, color: bool = False, max_chars: int = GITHUB_COMMENT_LIMIT) -> str:
    if fmt == "json":
        return format_json(result)
    if fmt == "markdown":
        return format_markdown(result, max_chars)
    return format_text(result, color)
