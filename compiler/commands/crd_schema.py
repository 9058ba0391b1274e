"""Write the JSON schemas `validate` checks custom resources against, from CustomResourceDefinition manifests.

Each served version of each CRD in the files becomes schemas/crds/<group>/<kind>_<version>.json (the layout
`validate` reads by default and with --crd-schemas DIR), converted the way `validate --crds FILE` converts a CRD:
nullable and int-or-string made explicit, unknown fields rejected. Each file is written atomically; a file
without a CRD writes nothing. After bumping an add-on chart or the Argo CD release in gitops.yaml, fetch the
release's CRD manifests and run this to refresh the schemas, then update the table in schemas/crds/README.md.

Examples:
  python -m compiler crd-schema application-crd.yaml appproject-crd.yaml   # Argo CD's manifests/crds/
  python -m compiler crd-schema cert-manager.io_certificates.yaml --output-dir /tmp/schemas

Exit codes: 0 written, 2 bad input (unreadable file, no CRD in it, output not writable).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from compiler.paths import CRD_SCHEMAS
from compiler.validate.schemas import write_crd_schemas


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("crds", nargs="+", type=Path, metavar="CRD.yaml",
                        help="YAML files of CustomResourceDefinitions (apiextensions.k8s.io/v1)")
    parser.add_argument("--output-dir", type=Path, metavar="DIR",
                        help=f"schema directory (default: {CRD_SCHEMAS} in the repository)")


def run(args: argparse.Namespace) -> int:
    root = Path(args.root)
    out_dir = args.output_dir if args.output_dir is not None else root / CRD_SCHEMAS
    for path in write_crd_schemas(args.crds, out_dir):
        print(f"wrote {path.relative_to(root) if path.is_relative_to(root) else path}", file=sys.stderr)
    return 0
