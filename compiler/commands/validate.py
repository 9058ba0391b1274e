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

Results are cached by content under .cache/cave-gitops/validated/: a cluster whose rendered text, spec, schemas
and compiler are those of an earlier run is not checked again (its findings are read back), and neither are the
fleet rules when no render or spec changed. --no-cache renders and validates everything afresh.

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

from compiler.render import kustomize
from compiler.validate.engine import format_json, format_text, validate
from compiler.validate.schemas import Schemas


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
    parser.add_argument("--no-cache", action="store_true",
                        help="render and validate afresh: no render or validation cache is read or filled")
    parser.add_argument("--no-fleet-rules", action="store_true",
                        help="skip the fleet rules (first sync, scheduling, metrics, identities, DNS, owners, shared "
                             "data), which read every spec and the bootstrap plans")


def run(args: argparse.Namespace) -> int:
    root = Path(args.root)
    schemas = Schemas.from_options(args.crd_schemas, args.crds, root=root)
    result = validate(root, args.clusters, schemas, kubernetes_version=args.kubernetes_version,
                      use_cache=not args.no_cache, fleet_rules=not args.no_fleet_rules)
    sys.stdout.write(format_json(result.findings) if args.format == "json" else format_text(result.findings))
    for line in kustomize.find(root).notice():  # which kustomize, and a warning when not the pinned one
        print(line, file=sys.stderr)
    if args.format == "text":
        print(result.verdict(), file=sys.stderr)
    return 1 if result.findings else 0
