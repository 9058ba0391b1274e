"""Validate the rendered manifests of clusters: Kubernetes schemas, CRD schemas and CAVE rules.

Each cluster is rendered (cached by content hash, in parallel) and every object is checked:
  - built-in kinds against the strict schemas of the cluster's Kubernetes version
    (kubernetes-validate); an API the version no longer serves fails (batch/v1beta1 CronJob on 1.31);
  - custom resources against the repository's schemas/crds/<group>/<kind>_<version>.json (those of the
    Argo CD release and add-on charts gitops.yaml pins; schemas/README.md), or --crd-schemas DIR laid out
    the same way instead, and --crds FILE (CustomResourceDefinition manifests, e.g. those of your cluster),
    which take precedence; a custom resource with no schema fails;
  - CAVE rules over the whole cluster: resource requests, pinned images, HPA bounds and targets,
    Service selectors, Ingress backends, ConfigMap/Secret references, no plaintext secrets.

Overlays that are not what their specs compile to (spec edited, build not run; or a hand edit) are refused
with exit 2 (`overlays/CLUSTER is stale: run python -m compiler build`): the clusters validated, and with the
fleet rules every cluster and overlays/argocd/, which those rules read.

Every problem is reported, one line each: `cluster: Kind/namespace/name: field.path: message`.

Examples:
  python -m compiler validate                                  # every cluster
  python -m compiler validate minnie --crd-schemas ~/crd-schemas  # another schema directory
  python -m compiler validate --crds crds/argocd.yaml --crds crds/external-secrets.yaml
  python -m compiler validate minnie --kubernetes-version 1.33 # would it pass after an upgrade?
  python -m compiler validate --format json | jq '.[].rule'

Exit codes: 0 valid, 1 invalid, 2 bad input (unknown cluster, unreadable schemas, kustomize error).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from compiler.build.check import is_managed, require_fresh
from compiler.paths import spec_rel
from compiler.render import kustomize
from compiler.render.sources import select_clusters
from compiler.spec.load import load_all
from compiler.validate.engine import format_json, format_text, validate_clusters
from compiler.validate.schemas import Schemas

HELP = "check rendered manifests against Kubernetes/CRD schemas and CAVE rules"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("clusters", nargs="*", metavar="CLUSTER", help="clusters to validate (default: all)")
    parser.add_argument(
        "--crd-schemas", type=Path, metavar="DIR",
        help="JSON schemas DIR/<group>/<kind>_<version>.json (default: the repository's schemas/crds)"
    )
    parser.add_argument(
        "--crds",
        type=Path,
        action="append",
        default=[],
        metavar="FILE",
        help="YAML file of CustomResourceDefinitions (repeatable)",
    )
    parser.add_argument(
        "--kubernetes-version",
        metavar="X.Y",
        help="validate against this Kubernetes version instead of each cluster's spec",
    )
    parser.add_argument("--format", choices=("text", "json"), default="text", help="output format (default: text)")
    parser.add_argument("--no-cache", action="store_true", help="render afresh instead of reading the cache")
    parser.add_argument("--no-fleet-rules", action="store_true",
                        help="skip the fleet rules (first sync, scheduling, metrics, identities, DNS, owners, shared "
                             "data), which read every spec and the bootstrap plans")




def run(args: argparse.Namespace) -> int:
    root = Path(args.root)
    schemas = Schemas.from_options(args.crd_schemas, args.crds, root=root)
    if not all((root / spec_rel(c)).is_file() for c in args.clusters):
        select_clusters(root, args.clusters)  # raises: each unknown cluster, with the known ones
    loaded = None
    if not args.kubernetes_version:
        loaded = load_all(root)  # each cluster's Kubernetes version; the fleet rules read the same specs
    elif not args.no_fleet_rules and is_managed(root):
        loaded = load_all(root, for_fleet_rules=True)  # the freshness check and the fleet rules read them: once
    # Never validate overlays the specs no longer compile to. The fleet rules read every cluster and the
    # app-of-apps, so with them every overlay must be fresh; without them, only the clusters validated.
    fleet = not args.no_fleet_rules
    require_fresh(root, None if fleet or not args.clusters else args.clusters, argocd=fleet, loaded=loaded,
                  use_cache=not args.no_cache)
    clusters = select_clusters(root, args.clusters)
    if args.kubernetes_version:
        versions = dict.fromkeys(clusters, args.kubernetes_version)
    else:
        assert loaded is not None
        versions = {c: str(loaded[c].spec.kubernetes_version) for c in clusters if c in loaded}
    findings = validate_clusters(root, versions, schemas, use_cache=not args.no_cache,
                                 fleet_rules=not args.no_fleet_rules, loaded=loaded)
    out = format_json(findings) if args.format == "json" else format_text(findings)
    sys.stdout.write(out)
    for line in kustomize.find(root).notice():  # which kustomize, and a warning when not the pinned one
        print(line, file=sys.stderr)
    if args.format == "text":
        checked = ", ".join(sorted(versions)) or "no clusters"
        verdict = f"{len(findings)} problem(s)" if findings else "valid"
        print(f"validated {checked}: {verdict}", file=sys.stderr)
    return 1 if findings else 0
