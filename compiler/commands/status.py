"""The fleet at a glance: every cluster (kind, global server, GCP project, Argo CD destination, whether its overlay
is in sync with its spec), each service's version per cluster as a matrix ("disabled" when the spec turns it off,
"-" when the cluster does not run it), and what gitops.yaml pins (Argo CD, kustomize, the add-on charts).

Reads the specs and overlays only (no cluster, no network). Exit 0 (a stale, missing or orphaned overlay is
shown, not an error: `check` is the gate), 2 when a spec does not load.

Examples:
  python -m compiler status
  python -m compiler status --format markdown >> "$GITHUB_STEP_SUMMARY"
  python -m compiler status --format json | jq '.versions.materializationengine'
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
