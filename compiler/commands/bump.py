"""Set a service's image version in the specs (comments and formatting kept), then rebuild the overlays.

COMPONENT is a service name from the catalogue; `schema`, `annotation` and `materialize` are aliases of
emannotationschemas, annotationengine and materializationengine (the version-bump bot uses them).
Without --cluster every cluster that configures the service is bumped.

Examples:
  python -m compiler bump materialize 4.24.0
  python -m compiler bump schema 5.13.0 --cluster global
  python -m compiler bump annotationengine 4.15.0 --cluster minnie --cluster fanc
"""

from __future__ import annotations

import argparse
import difflib
import re
from pathlib import Path

from compiler import catalog
from compiler.build import overlays
from compiler.errors import UserError
from compiler.paths import ENV_DIR
from compiler.spec.load import load_all
from compiler.spec.yaml_rewrite import replace_scalar

VERSION = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,126}$")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("component", help="service name or alias (schema, annotation, materialize)")
    parser.add_argument("version", help="new version, without the leading v (image tag is v<version>)")
    parser.add_argument("--cluster", action="append", default=[], metavar="C",
                        help="only this cluster (repeatable; default: every cluster configuring the service)")


def _service(component: str) -> catalog.Service:
    svc = catalog.resolve(component)
    if svc is None:
        names = sorted([*catalog.BY_NAME, *catalog.ALIASES])
        close = difflib.get_close_matches(component, names, n=1)
        hint = f"did you mean {close[0]!r}?" if close else f"known: {', '.join(names)}"
        raise UserError(f"unknown component {component!r} ({hint})")
    return svc


def run(args: argparse.Namespace) -> int:
    root = Path(args.root)
    svc = _service(args.component)
    version = args.version.removeprefix("v") if re.match(r"^v[0-9]", args.version) else args.version
    if not VERSION.match(version):
        raise UserError(f"version {args.version!r} is not a valid image version (like 4.24.0)")
    loaded = load_all(root)
    configured = [n for n, item in sorted(loaded.items()) if getattr(item.spec.services, svc.name, None) is not None]
    targets = sorted(set(args.cluster)) if args.cluster else configured
    problems = []
    for c in targets:
        if c not in loaded:
            problems.append(f"unknown cluster {c!r} (known: {', '.join(sorted(loaded))})")
        elif c not in configured:
            problems.append(f"{ENV_DIR}/{c}.yaml: cluster {c!r} does not run {svc.name} "
                            f"(add services.{svc.name} to its spec first)")
    if not targets:
        problems.append(f"no cluster runs {svc.name} (add services.{svc.name} to a spec)")
    if problems:
        raise UserError("\n".join(problems))

    originals: dict[Path, str] = {}
    for c in targets:
        item = loaded[c]
        if getattr(item.spec.services, svc.name).version == version:
            print(f"{c}: {svc.name} already at {version}")
            continue
        path = root / ENV_DIR / f"{c}.yaml"
        text = path.read_text(encoding="utf-8")
        originals[path] = text
        new = replace_scalar(text, item.doc, ("services", svc.name, "version"), version)
        tmp = path.with_suffix(".yaml.tmp")
        tmp.write_text(new, encoding="utf-8")
        tmp.replace(path)
        print(f"{c}: {svc.name} {getattr(item.spec.services, svc.name).version} -> {version}")
    if not originals:
        return 0
    try:
        reloaded = load_all(root)
    except UserError:
        for path, text in originals.items():
            path.write_text(text, encoding="utf-8")
        raise
    trees = overlays.expected(reloaded)
    written, _ = overlays.write(root, trees, [])
    for name in written:
        print(f"wrote overlays/{name}/")
    return 0
