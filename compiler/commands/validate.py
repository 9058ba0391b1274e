"""Validate the rendered manifests of clusters: Kubernetes schemas, CRD schemas and CAVE rules.

Each cluster is rendered (cached by content hash, in parallel) and every object is checked:
  - built-in kinds against the strict schemas of the cluster's Kubernetes version
    (kubernetes-validate); an API the version no longer serves fails (batch/v1beta1 CronJob on 1.31);
  - custom resources against --crds FILE (CustomResourceDefinition manifests, e.g. those of your
    Argo CD or External Secrets install) or --crd-schemas DIR (<group>/<kind>_<version>.json);
    a custom resource with no schema in either fails;
  - CAVE rules over the whole cluster: resource requests, pinned images, HPA bounds and targets,
    Service selectors, Ingress backends, ConfigMap/Secret references, no plaintext secrets.

Every problem is reported, one line each: `cluster: Kind/namespace/name: field.path: message`.

Examples:
  python -m compiler validate                                  # every cluster
  python -m compiler validate minnie --crd-schemas ../shared/schemas/crds
  python -m compiler validate --crds crds/argocd.yaml --crds crds/external-secrets.yaml
  python -m compiler validate minnie --kubernetes-version 1.33 # would it pass after an upgrade?
  python -m compiler validate --format json | jq '.[].rule'

Exit codes: 0 valid, 1 invalid, 2 bad input (unknown cluster, unreadable schemas, kustomize error).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from compiler.render.sources import select_clusters
from compiler.spec.load import load_all
from compiler.validate.engine import format_json, format_text, validate_clusters
from compiler.validate.schemas import Schemas

HELP = "check rendered manifests against Kubernetes/CRD schemas and CAVE rules"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("clusters", nargs="*", metavar="CLUSTER", help="clusters to validate (default: all)")
    parser.add_argument(
        "--crd-schemas", type=Path, metavar="DIR", help="JSON schemas: DIR/<group>/<kind>_<version>.json"
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
    schemas = Schemas.from_options(args.crd_schemas, args.crds)
    clusters = select_clusters(root, args.clusters)
    loaded = None
    if args.kubernetes_version:
        versions = dict.fromkeys(clusters, args.kubernetes_version)
    else:
        loaded = load_all(root)  # each cluster's Kubernetes version; the fleet rules read the same specs
        versions = {c: str(loaded[c].spec.kubernetes_version) for c in clusters if c in loaded}
    findings = validate_clusters(root, versions, schemas, use_cache=not args.no_cache,
                                 fleet_rules=not args.no_fleet_rules, loaded=loaded)
    out = format_json(findings) if args.format == "json" else format_text(findings)
    sys.stdout.write(out)
    if args.format == "text":
        checked = ", ".join(sorted(versions)) or "no clusters"
        verdict = f"{len(findings)} problem(s)" if findings else "valid"
        print(f"validated {checked}: {verdict}", file=sys.stderr)
    return 1 if findings else 0
