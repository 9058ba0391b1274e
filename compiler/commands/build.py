"""Validate every spec in environments/ and write the overlays they compile to.

Examples:
  python -m compiler build            # all clusters; removes overlays whose spec was deleted
  python -m compiler build minnie     # overlays/minnie/ (and overlays/argocd/)

All specs are validated on every run (rules span clusters: hostnames, global servers). On any problem
nothing is written and each problem is printed as `file:line:col: message`. Output is deterministic, and
each overlay is replaced atomically.

With a gitops.yaml at the repository root, every build also writes overlays/argocd/, the Argo CD
app-of-apps (one Application per cluster and add-on); it spans every spec, so it is never left out,
and it is never removed as an orphan.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from compiler.build import overlays
from compiler.spec.fleet import select
from compiler.spec.load import load_all


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("clusters", nargs="*", metavar="CLUSTER", help="clusters to build (default: all)")


def selected(known: list[str], wanted: list[str]) -> list[str] | None:
    """The clusters asked for, or None for all; unknown names are a user error."""
    return sorted(select(wanted, known)) if wanted else None


def run(args: argparse.Namespace) -> int:
    root = Path(args.root)
    loaded = load_all(root)
    clusters = selected(sorted(loaded), args.clusters)
    trees = overlays.expected_all(root, loaded, clusters)
    orphans = [] if clusters else [c for c in overlays.generated_overlays(root) if c not in loaded]
    written, removed = overlays.write(root, trees, orphans)
    for name in written:
        print(f"wrote overlays/{name}/ ({len(trees[name])} files)")
    for name in removed:
        print(f"removed overlays/{name}/ (its spec is gone)")
    abandoned = overlays.abandoned_argocd(root)
    if abandoned:
        print(f"note: {abandoned}", file=sys.stderr)
    if not written and not removed:
        n = len([t for t in trees if t != overlays.ARGOCD])
        print(f"overlays up to date ({n} cluster{'s' if n != 1 else ''})", file=sys.stderr)
    return 0
