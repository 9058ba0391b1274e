"""The ordered checklist for bringing CLUSTER up (or adding a datastack to it): the steps no API does for us.

Generated from the specs with every value filled in: whether the spec and its overlays are merged (on the
remote's branch Argo CD deploys, as last fetched), the validate command, the OAuth consent screen and the
OAuth client's redirect URIs and origins for each hostname of the global cluster, installing Argo CD (the
release pinned in gitops.yaml) and registering every cluster with it (in the runbook of the cluster Argo CD
runs in), the app-of-apps applied in that cluster's kubectl context, the name servers to set at the
registrar, the auth datasets, groups and service-table mappings and the info-service entries that the local
clusters' `registry:` sections need, where the CAVE service-account token goes (Secret Manager names), the
first materialization database and a first-table test, how to roll back and what deleting the cluster leaves
behind.

Each step has a status: done, to do, check by hand, or unknown. Without --online only the spec and the
overlays are consulted; with --online the bootstrap plan of the cluster (and, for the global cluster,
of its local clusters) is read from Google (Application Default Credentials), which fills in name
servers and whether secrets have values.

Examples:
  python -m compiler runbook global                    # markdown checklist on stdout
  python -m compiler runbook minnie --format json      # the same steps for scripts
  python -m compiler runbook minnie --online > minnie-runbook.md
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from compiler.runbook.facts import gather
from compiler.runbook.report import format_json, format_markdown
from compiler.runbook.steps import build_runbook
from compiler.spec.fleet import select
from compiler.spec.load import load_environments


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("cluster", metavar="CLUSTER", help="cluster name (a file environments/CLUSTER.yaml)")
    parser.add_argument("--format", choices=("markdown", "json"), default="markdown",
                        help="output format (default: markdown)")
    parser.add_argument("--online", action="store_true",
                        help="read the bootstrap plan from Google to fill in statuses and name servers")


def run(args: argparse.Namespace) -> int:
    root = Path(args.root)
    specs = load_environments(root)
    select([args.cluster], specs)
    facts = gather(root, args.cluster, specs, online=args.online,
                   progress=lambda line: print(line, file=sys.stderr, flush=True))
    book = build_runbook(root, args.cluster, specs, facts)
    sys.stdout.write(format_json(book) if args.format == "json" else format_markdown(book))
    return 0
