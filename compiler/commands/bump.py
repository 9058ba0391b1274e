"""Set a service's image version in the specs (comments and formatting kept), then rebuild the overlays.

COMPONENT is a service name from the catalogue; `schema`, `annotation` and `materialize` are aliases of
emannotationschemas, annotationengine and materializationengine (the version-bump bot uses them).
Without --cluster every cluster that configures the service is bumped.

VERSION is semver without the `v` (the image's tag rule adds it: 4.24.0 becomes the tag v4.24.0; a leading v
typed here is dropped), or a tag the catalogue allows for the service's images. A downgrade is refused unless
--allow-downgrade; --check-registry first asks each cluster's registry whether the new images exist (Docker
Hub's tag API for docker.io, the OCI API elsewhere, as the bump bot does). Nothing is written while there is
a problem; each is printed on its own line at the spec line it concerns.

Examples:
  python -m compiler bump materialize 4.24.0
  python -m compiler bump schema 5.13.0 --cluster global
  python -m compiler bump annotationengine 4.15.0 --cluster minnie --cluster fanc --check-registry
  python -m compiler bump annotationengine 4.14.0 --cluster minnie --allow-downgrade   # roll back

All or nothing: when the rebuild of the overlays fails (a spec that no longer loads, an overlays/ that cannot be
written), every spec is put back byte for byte and the one-line error says so. Like build, it names on stderr any
file under overlays/ edited or added by hand that the rebuild replaced.

Exit codes: 0 done, 2 bad input (unknown component or cluster, not a version, a downgrade, a missing image, a
failed rebuild).
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from compiler.bot.images import RegistryClient
from compiler.build.bump import ImageExists, bump


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("component", help="service name or alias (schema, annotation, materialize)")
    parser.add_argument("version", help="new version, semver without the leading v (image tag is v<version>)")
    parser.add_argument("--cluster", action="append", default=[], metavar="C",
                        help="only this cluster (repeatable; default: every cluster configuring the service)")
    parser.add_argument("--allow-downgrade", action="store_true",
                        help="allow setting a version older than a cluster's current one (a rollback)")
    parser.add_argument("--check-registry", action="store_true",
                        help="refuse unless every image of the new version exists in the cluster's registry")
    parser.add_argument("--registry-url", default=os.environ.get("CAVE_BOT_REGISTRY_URL"), metavar="URL",
                        help="with --check-registry: registry API base replacing Docker Hub's / the registry "
                             "host's (default: $CAVE_BOT_REGISTRY_URL, else the public APIs)")


def run(args: argparse.Namespace) -> int:
    exists: ImageExists | None = RegistryClient(args.registry_url).exists if args.check_registry else None
    result = bump(Path(args.root), args.component, args.version, args.cluster,
                  allow_downgrade=args.allow_downgrade, image_exists=exists)
    for c in result.unchanged:
        print(f"{c}: {result.service} already at {result.version}")
    for change in result.changed:
        print(f"{change.cluster}: {result.service} {change.old} -> {change.new}")
    for name in result.written:
        print(f"wrote overlays/{name}/")
    for path, what in result.hand_edits.items():
        print(f"{what} {path}", file=sys.stderr)
    return 0
