"""Would `build` change anything? Lists every difference between the specs and the committed overlays.

Catches stale overlays (spec changed, build not run), hand edits, missing overlays and orphaned ones
(spec deleted), in overlays/<cluster>/ and in overlays/argocd/ (the Argo CD app-of-apps, from gitops.yaml).
Exit 0 in sync, 1 stale, 2 bad input. Run it in CI before merging.

Example:
  python -m compiler check && echo "overlays match the specs"
"""

from __future__ import annotations

import argparse
from pathlib import Path

from compiler.build.check import differences


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--quiet", "-q", action="store_true", help="print nothing, only set the exit code")


def run(args: argparse.Namespace) -> int:
    found = differences(Path(args.root))
    if not args.quiet:
        for line in found:
            print(line)
        if not found:
            print("overlays are in sync with environments/")
    return 1 if found else 0
