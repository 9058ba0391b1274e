"""Validate every spec in environments/ and write the overlays they compile to.

Examples:
  python -m compiler build            # all clusters; removes overlays whose spec was deleted
  python -m compiler build minnie     # overlays/minnie/ (and overlays/argocd/)

All specs are validated on every run (rules span clusters: hostnames, global servers). On any problem
nothing is written and each problem is printed as `file:line:col: message`. Output is deterministic, and
each overlay is replaced whole: a build killed at any point leaves every overlay old or new, never half-written,
and the next command cleans up after it (compiler/build/overlays.py tells how). One build writes at a time: a
second one waits for the first, saying whom it waits for (--no-wait: exit 2 instead).

Files under overlays/ are build's: a file build replaces or deletes that it did not write (edited or added by
hand) is named on stderr, `replaced hand-edited overlays/<c>/<file>`; make such changes in the spec.

With a gitops.yaml at the repository root, every build also writes overlays/argocd/, the Argo CD
app-of-apps (one Application per cluster and add-on); it spans every spec, so it is never left out,
and it is never removed as an orphan.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from compiler.build import overlays, specschema
from compiler.build.check import inputs, remember
from compiler.spec.fleet import select
from compiler.spec.load import load_all


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("clusters", nargs="*", metavar="CLUSTER", help="clusters to build (default: all)")
    parser.add_argument("--no-wait", action="store_true",
                        help="when another build is writing overlays/, exit 2 instead of waiting for it")


def selected(known: list[str], wanted: list[str]) -> list[str] | None:
    """The clusters asked for, or None for all; unknown names are a user error."""
    return sorted(select(wanted, known)) if wanted else None


def run(args: argparse.Namespace) -> int:
    root = Path(args.root)
    before = inputs(root)  # what the specs were before loading: only what is unchanged after is remembered
    loaded = load_all(root)
    clusters = selected(sorted(loaded), args.clusters)
    trees = overlays.expected_all(root, loaded, clusters)
    # without a cluster list, overlays whose spec is gone are removed (found under the lock, after any repair)
    done = overlays.write(root, trees, keep=None if clusters else set(loaded), wait=not args.no_wait)
    written, removed = done.written, done.removed
    remember(root, trees, before)  # render, validate and diff then know these overlays are fresh at once
    for name in written:
        print(f"wrote overlays/{name}/ ({len(trees[name])} files)")
    for name in removed:
        print(f"removed overlays/{name}/ (its spec is gone)")
    for path, what in done.hand_edits.items():
        print(f"{what} {path}", file=sys.stderr)
    if done.hand_edits:
        print("note: build owns overlays/ and overwrites changes made there by hand: make them in the spec "
              "(environments/<cluster>.yaml) or the templates instead", file=sys.stderr)
    if schema_written := specschema.write(root):  # schemas/spec.schema.json, the editors' schema of a spec
        print(schema_written)
    abandoned = overlays.abandoned_argocd(root)
    if abandoned:
        print(f"note: {abandoned}", file=sys.stderr)
    if not written and not removed:
        n = len([t for t in trees if t != overlays.ARGOCD])
        print(f"overlays up to date ({n} cluster{'s' if n != 1 else ''})", file=sys.stderr)
    return 0

