"""Parsing rendered multi-document YAML into objects, and naming objects and fields."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from typing import Any

from compiler.errors import Problem, UserError
from compiler.spec.yamlio import YAMLError, load_manifests


def parse_objects(text: str, source: str = "") -> list[dict[str, Any]]:
    """Kubernetes objects of a rendered YAML stream (empty documents dropped)."""
    try:
        docs = load_manifests(text)
    except YAMLError as err:  # one line: libyaml's own message spans three ("while ...", the problem, "in ...")
        mark = getattr(err, "problem_mark", None)
        what = " ".join(str(getattr(err, "problem", None) or err).split())
        at = f" at line {mark.line + 1}, column {mark.column + 1} of the output" if mark is not None else ""
        raise UserError([Problem(source, message=f"rendered output is not YAML: {what}{at} (check the overlay)")]) \
            from None
    except RecursionError:
        raise UserError([Problem(source, message="rendered output is nested too deeply to read (check the overlay)")]) \
            from None
    objects = [d for d in docs if d is not None]
    bad = [i for i, d in enumerate(objects) if not isinstance(d, dict)]
    if bad:
        raise UserError([Problem(source, message=f"rendered document {bad[0]} is not a mapping (check the overlay)")])
    return objects


def object_id(obj: Mapping[str, Any]) -> tuple[str, str, str, str]:
    """(api group, kind, namespace, name): the identity of an object in a cluster."""
    api_version = str(obj.get("apiVersion") or "")
    group = api_version.rsplit("/", 1)[0] if "/" in api_version else ""
    meta = obj.get("metadata") or {}
    return (group, str(obj.get("kind") or ""), str(meta.get("namespace") or ""), str(meta.get("name") or ""))


def describe(obj: Mapping[str, Any]) -> str:
    """`Kind/namespace/name` (or `Kind/name` for objects without a namespace) for messages."""
    _, kind, namespace, name = object_id(obj)
    return f"{kind}/{namespace}/{name}" if namespace else f"{kind}/{name}"


def join_path(path: str, part: str | int) -> str:
    """path extended by a key (`a.b`, or `a["b.c"]` when not an identifier) or an index (`a[0]`)."""
    if isinstance(part, int):
        return f"{path}[{part}]"
    if part and part.replace("_", "a").replace("-", "a").isalnum():
        return f"{path}.{part}" if path else part
    return f"{path}[{json.dumps(part)}]"


def field_path(parts: Iterable[str | int]) -> str:
    """A dotted field path with [i] indices, e.g. spec.containers[0].env; odd keys quoted: a["b.c"]."""
    out = ""
    for part in parts:
        out = join_path(out, part)
    return out


def sorted_objects(objects: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """Objects in a stable order: api group, kind, namespace, name."""
    return sorted(objects, key=object_id)


def get(obj: Any, *keys: str | int) -> Any:
    """obj[k1][k2]... of a parsed object, or None where a step is missing or of the wrong type."""
    for key in keys:
        if isinstance(key, int):
            obj = obj[key] if isinstance(obj, list) and -len(obj) <= key < len(obj) else None
        else:
            obj = obj.get(key) if isinstance(obj, dict) else None
    return obj
