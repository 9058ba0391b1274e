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
from pathlib import Path

from compiler.build.bump import bump


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("component", help="service name or alias (schema, annotation, materialize)")
    parser.add_argument("version", help="new version, without the leading v (image tag is v<version>)")
    parser.add_argument("--cluster", action="append", default=[], metavar="C",
                        help="only this cluster (repeatable; default: every cluster configuring the service)")


def run(args: argparse.Namespace) -> int:
    result = bump(Path(args.root), args.component, args.version, args.cluster)
    for c in result.unchanged:
        print(f"{c}: {result.service} already at {result.version}")
    for change in result.changed:
        print(f"{change.cluster}: {result.service} {change.old} -> {change.new}")
    for name in result.written:
        print(f"wrote overlays/{name}/")
    return 0
