"""The fleet at a glance: every cluster (kind, global server, GCP project, Argo CD destination, whether its overlay
is in sync with its spec), each service's version per cluster as a matrix ("disabled" when the spec turns it off,
"-" when the cluster does not run it), what gitops.yaml pins (Argo CD, kustomize, the add-on charts), each
cluster's node pools (machine type, min–max nodes, taints), and the Argo CD Applications of overlays/argocd/ by
sync wave (setup -1, then the global clusters' add-ons and CAVE, then the locals'). `--format markdown` ends with
the fleet diagram (a ```mermaid block GitHub draws: locals grouped under their global, node pools, add-ons, waves);
`--format mermaid` prints the diagram's source alone.

Reads the specs and overlays only (no cluster, no network). Exit 0 (a stale, missing or orphaned overlay is
shown, not an error: `check` is the gate), 2 when a spec does not load.

Examples:
  python -m compiler status
  python -m compiler status --format markdown >> "$GITHUB_STEP_SUMMARY"
  python -m compiler status --format json | jq '.versions.materializationengine'
  python -m compiler status --format json | jq '.applications[] | select(.wave == 2) | .name'
  python -m compiler status --format mermaid > fleet.mmd   # draw with mermaid-cli: mmdc -i fleet.mmd -o fleet.svg
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from compiler.build.status import FORMATS, fleet_status, format_status


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--format", choices=FORMATS, default="text", help="output format (default: text)")


def run(args: argparse.Namespace) -> int:
    status = fleet_status(Path(args.root))
    sys.stdout.write(format_status(status, args.format))
    return 0
