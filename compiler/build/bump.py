"""Set a service's image version in the specs (comments and formatting kept), then rebuild the overlays.

The one implementation behind `python -m compiler bump` and the version-bump bot.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from compiler import catalog
from compiler.build import overlays
from compiler.errors import UserError
from compiler.paths import spec_rel
from compiler.spec.fleet import unknown_cluster_message
from compiler.spec.load import load_all
from compiler.spec.yaml_rewrite import replace_scalar

VERSION = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,126}$")


@dataclass(frozen=True)
class Change:
    cluster: str
    old: str
    new: str


@dataclass(frozen=True)
class BumpResult:
    """What a bump did: the specs it changed, the clusters already at the version, the overlays rewritten."""

    service: str
    version: str
    changed: list[Change] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    written: list[str] = field(default_factory=list)


def resolve_component(component: str) -> catalog.Service:
    """The catalogue entry of a service name or alias (schema, annotation, materialize); UserError if unknown."""
    svc = catalog.resolve(component)
    if svc is None:
        names = sorted([*catalog.BY_NAME, *catalog.ALIASES])
        close = difflib.get_close_matches(component, names, n=1)
        hint = f"did you mean {close[0]!r}?" if close else f"known: {', '.join(names)}"
        raise UserError(f"unknown component {component!r} ({hint})")
    return svc


def normalise_version(version: str) -> str:
    """`v4.24.0` → `4.24.0` (the image tag's `v` is derived); UserError for what cannot be an image tag."""
    plain = version.removeprefix("v") if re.match(r"^v[0-9]", version) else version
    if not VERSION.match(plain):
        raise UserError(f"version {version!r} is not a valid image version (like 4.24.0)")
    return plain


def bump(root: Path, component: str, version: str, clusters: Sequence[str] = ()) -> BumpResult:
    """Set `component` to `version` in the specs of `clusters` (default: every cluster configuring it), rebuild.

    Specs are edited scalar by scalar (comments and order kept); if the edited specs do not load, every spec
    is restored and the error raised.
    """
    svc = resolve_component(component)
    version = normalise_version(version)
    loaded = load_all(root)
    configured = [n for n, item in sorted(loaded.items()) if getattr(item.spec.services, svc.name, None) is not None]
    targets = sorted(set(clusters)) if clusters else configured
    problems = []
    for c in targets:
        if c not in loaded:
            problems.append(unknown_cluster_message(c, loaded))
        elif c not in configured:
            problems.append(f"{spec_rel(c)}: cluster {c!r} does not run {svc.name} "
                            f"(add services.{svc.name} to its spec first)")
    if not targets:
        problems.append(f"no cluster runs {svc.name} (add services.{svc.name} to a spec)")
    if problems:
        raise UserError("\n".join(problems))

    result = BumpResult(svc.name, version)
    originals: dict[Path, str] = {}
    for c in targets:
        item = loaded[c]
        old = getattr(item.spec.services, svc.name).version
        if old == version:
            result.unchanged.append(c)
            continue
        path = root / spec_rel(c)
        text = path.read_text(encoding="utf-8")
        originals[path] = text
        new = replace_scalar(text, item.doc, ("services", svc.name, "version"), version)
        tmp = path.with_suffix(".yaml.tmp")
        tmp.write_text(new, encoding="utf-8")
        tmp.replace(path)
        result.changed.append(Change(c, str(old), version))
    if not originals:
        return result
    try:
        reloaded = load_all(root)
    except UserError:
        for path, text in originals.items():
            path.write_text(text, encoding="utf-8")
        raise
    written, _ = overlays.write(root, overlays.expected(reloaded), [])
    result.written.extend(written)
    return result
