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

from compiler.build.run import build


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("clusters", nargs="*", metavar="CLUSTER", help="clusters to build (default: all)")
    parser.add_argument("--no-wait", action="store_true",
                        help="when another build is writing overlays/, exit 2 instead of waiting for it")


def run(args: argparse.Namespace) -> int:
    result = build(Path(args.root), args.clusters, wait=not args.no_wait)
    for to_stderr, line in result.messages():
        print(line, file=sys.stderr if to_stderr else sys.stdout)
    return 0
