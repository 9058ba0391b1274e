"""Start the spec of a new cluster: environments/NAME.yaml, copied from a cluster or from a template.

With --from SOURCE, SOURCE's spec is copied with its comments. Names that derive from the cluster name follow
NAME; everything two clusters must not share (GCP project, Cloud SQL instance, static IP, Argo CD destination,
Redis hosts, secret names the source chose, registered datastacks, Bigtable instance, buckets, extra hostnames)
becomes a placeholder TODO-... with a TODO comment. A local cluster keeps SOURCE's global_server (the same global
cluster, shared on purpose), data project, domain and zones (a zone SOURCE creates stays SOURCE's).
With --kind global|local, the spec starts from a template; a local one uses the repository's global cluster.

`build` (and every command reading the specs) refuses each TODO-... value at its file:line:col until it is set.

examples:
  python -m compiler new-cluster h01 --from minnie     # a local cluster like minnie
  python -m compiler new-cluster h01 --kind local      # from the template, using the global cluster
  python -m compiler new-cluster global2 --kind global
  then: set every TODO-... in environments/h01.yaml, python -m compiler build, open a pull request,
        python -m compiler runbook h01 --online > runbook.md

exit codes: 0 written, 2 bad input (NAME taken or invalid, unknown SOURCE); nothing is written on an error.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from compiler.spec.scaffold import KINDS, new_cluster


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("name", metavar="NAME", help="the new cluster's name (lowercase, like minnie-prod)")
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--from", dest="source", metavar="SOURCE", help="copy the spec of this cluster")
    source.add_argument("--kind", choices=KINDS, help="start from the template of this kind")
    parser.add_argument("--global", dest="global_cluster", metavar="GLOBAL",
                        help="--kind local: the global cluster it uses (default: the only one)")


def run(args: argparse.Namespace) -> int:
    made = new_cluster(Path(args.root), args.name, source=args.source, kind=args.kind,
                       global_cluster=args.global_cluster)
    print(f"wrote {made.display} with {len(made.todos)} value(s) to set:")
    for todo in made.todos:
        print(f"  {made.display}:{todo.line}:{todo.col}: {todo.placeholder}")
    print(f"then: python -m compiler bootstrap {args.name} --apply (it prints the static IP and Redis hosts); "
          f"set the values; python -m compiler build; python -m compiler validate {args.name}; open a pull request; "
          f"python -m compiler runbook {args.name} --online", file=sys.stdout)
    return 0
