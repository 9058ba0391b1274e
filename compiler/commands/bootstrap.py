"""Plan, then create, the one-off Google Cloud resources a cluster needs before Argo CD can sync it.

From environments/CLUSTER.yaml: the Google APIs the project (and a local cluster's data project) needs,
enabled first through the Service Usage API (a plan lists the disabled ones), VPC network and subnet, static
IP, GKE cluster (Workload Identity on) and node pools, Cloud SQL instance, databases and user, Memorystore
Redis, the Bigtable instance (SSD, manual scaling, one cluster), Pub/Sub topics and subscriptions, Cloud DNS
zones and A records, Firestore in Datastore mode, GCP service accounts with their IAM roles and Workload
Identity bindings, Secret Manager secrets and GCS buckets.

Without --apply it only reads and prints one row per resource: ok (exists as specified), missing,
DIFFERS (field by field), OPERATOR (a value only you have, e.g. the OAuth client JSON: the line says
how to add it) or ERROR. With --apply it creates what is missing in dependency order, printing
progress; "already exists" is success. It never deletes, shrinks, replaces or updates anything: a
resource that differs is reported, not changed. If a step fails it stops, says what it created and
what remains; run it again to continue.

Values the cloud chooses (the static IP, Redis hosts) are compared with the spec (static_ip,
redis.*host); the plan says what to put there. Generated secret values (database password, Flask
keys) go straight into Secret Manager and are never printed.

Credentials: Application Default Credentials (`gcloud auth application-default login`). Endpoints
can be pointed elsewhere (emulators, test servers) with CAVE_GITOPS_<API>_ENDPOINT variables and
PUBSUB_EMULATOR_HOST; see compiler/bootstrap/clients.py.

The project itself must exist, with billing: bootstrap reads it and never creates it. `--format json`
carries the same rows and notes as the text (see compiler/bootstrap/report.py for its shape).
`--format mermaid` draws the same rows as a Mermaid flowchart: an arrow from each resource to those created
after it, each node coloured and labelled with its status (ok, missing, DIFFERS, OPERATOR, planned, ERROR),
grouped by project and API, network, GKE cluster, secrets, data, Pub/Sub, DNS and IAM, with a legend (see
compiler/bootstrap/diagram.py). Paste it into a ```mermaid block on GitHub, or draw it with mermaid-cli.

Exit codes: 0 everything exists as specified (or --offline), 1 something is missing, differs, needs
the operator or failed, 2 bad input (spec errors, no credentials).

Examples:
  python -m compiler bootstrap minnie --offline          # what minnie needs, without contacting Google
  python -m compiler bootstrap minnie                    # plan: what exists, what is missing
  python -m compiler bootstrap minnie --apply            # create what is missing
  python -m compiler bootstrap global --format json      # the plan for scripts
  python -m compiler bootstrap minnie --offline --format mermaid > minnie-plan.mmd   # the plan as a diagram
  python -m compiler bootstrap minnie --format mermaid | npx -p @mermaid-js/mermaid-cli mmdc -i - -o plan.svg
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from compiler.bootstrap import diagram, report
from compiler.bootstrap.engine import Mode, bootstrap


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("cluster", metavar="CLUSTER", help="cluster name (a file environments/CLUSTER.yaml)")
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--apply", action="store_true", help="create what is missing (never deletes or changes)")
    mode.add_argument("--offline", action="store_true", help="print the desired resources without contacting Google")
    parser.add_argument("--format", choices=("text", "json", "mermaid"), default="text",
                        help="report format (default: text; mermaid: the plan as a flowchart)")


def _progress(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def run(args: argparse.Namespace) -> int:
    mode: Mode = "apply" if args.apply else "offline" if args.offline else "plan"
    done = bootstrap(Path(args.root), args.cluster, mode, _progress)
    formatter = {"json": report.format_json, "mermaid": diagram.format_mermaid}.get(args.format, report.format_text)
    sys.stdout.write(formatter(done.spec, done.outcome, done.mode))
    return 0 if done.ok else 1
