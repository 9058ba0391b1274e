"""Comparing two renders of a cluster object by object (hash suffixes normalised, secrets redacted)."""

from __future__ import annotations

import copy
from collections import defaultdict
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from compiler.catalog import SERVICE_LABEL
from compiler.diff.documents import document_stub, split_documents
from compiler.diff.model import (
    _ABSENT,
    _ITEM_KEYS,
    _KUSTOMIZE_HASH_RE,
    _SECRET_FIELDS,
    _SUFFIX_RE,
    ARGOCD_PREFIXES,
    HASHED_KINDS,
    NO_SERVICE,
    ArgoChange,
    Change,
    ClusterDiff,
    ImageChange,
    Obj,
    ObjectDiff,
    ObjKey,
)
from compiler.render.manifests import field_path, join_path, object_id, parse_objects

# --------------------------------------------------------------------------- generated names


def _suffix_split(obj: Mapping[str, Any]) -> tuple[str, str] | None:
    _, kind, _, name = object_id(obj)
    match = _SUFFIX_RE.match(name) if kind in HASHED_KINDS else None
    return (match[1], match[2]) if match else None


def generated_names(side: Sequence[Obj], other: Sequence[Obj]) -> dict[tuple[str, str, str], str]:
    """(kind, namespace, full name) → base name for one side's hash-suffixed ConfigMaps/Secrets."""
    other_bases = {
        (object_id(o)[1], object_id(o)[2], split[0]) for o in other if (split := _suffix_split(o))
    }
    renames: dict[tuple[str, str, str], str] = {}
    for obj in side:
        split = _suffix_split(obj)
        if split is None:
            continue
        _, kind, namespace, name = object_id(obj)
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
        group, kind, namespace, name = object_id(obj)
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
            sub = join_path(path, str(k))
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
            sub = join_path(path, i)
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
        dotted = field_path(path)
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
            sub = join_path(dotted, str(k))
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
            if old is None:  # a new cluster: its images are its summary (report.new_cluster_summary)
                images += [ImageChange(cluster, key, name, None, image)
                           for name, image in sorted(_images(after).items())]
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


def comparable_objects(old_text: str | None, new_text: str | None) -> tuple[list[Obj] | None, list[Obj] | None]:
    """Both sides' objects for diff_cluster; a document byte-identical on both sides becomes a stub
    (identity and service only), so the cost follows what changed, not the size of the cluster."""
    old_docs = split_documents(old_text) if old_text is not None else None
    new_docs = split_documents(new_text) if new_text is not None else None
    same = set(old_docs or ()) & set(new_docs or ())
    stubs = {d: document_stub(d) for d in same}

    def objects(docs: list[str] | None) -> list[Obj] | None:
        if docs is None:
            return None
        out = []
        for doc in docs:
            stub = stubs.get(doc)
            out += [stub] if stub is not None else parse_objects(doc)
        return out

    return objects(old_docs), objects(new_docs)


def add_unrendered(diff: ClusterDiff, unrendered: Sequence[tuple[str, str, str]]) -> ClusterDiff:
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
