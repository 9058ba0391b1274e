"""Show what would change in each cluster: rendered manifests of a git ref vs the working tree.

Each cluster's overlay inputs are hashed on both sides first; only clusters whose hashes differ are
rendered (in parallel, through the render cache), so a one-cluster change costs one cluster's render.
When only files of service bases (base/<service>/) changed, a cluster is rendered reduced: both sides
in one kustomize process, only the changed bases (plus the overlay's own files, generators, components
and the patches that can apply to them); objects of the other bases are identical on both sides and
counted as unchanged. Any precondition that could make this differ from a full render falls back to
the full render; set CAVE_GITOPS_FULL_RENDER=1 to always render in full.
Objects are matched by cluster, kind, namespace and name; generated ConfigMaps/Secrets are matched
without their kustomize hash suffix, so a config edit shows as a content change plus a note that the
pods using it roll. Secret values (Secret data, ExternalSecret templates) are never printed.

The report starts with a summary: the service versions the specs change per cluster (the `status` rows),
image changes, the Argo CD Applications of overlays/argocd/ added, removed or changed (chart versions, sources,
destinations), Argo CD sync-wave/hook changes, and a service × cluster matrix; then every added, removed (never
hidden) and changed object, field by field. A new cluster is summarised instead: its objects by kind, its images
and the services using them, its versions (JSON still lists every object).

The working tree's overlays must be what its specs compile to: a stale one (spec edited, build not run;
or a hand edit) is refused with exit 2 (`overlays/CLUSTER is stale: run python -m compiler build`). Overlays
committed at the base that differ from the specs committed there are compared as they are, with a warning
at the top of the report (and in `warnings` of the JSON).

Examples:
  python -m compiler diff                         # vs merge-base with origin/main (or HEAD)
  python -m compiler diff minnie --base v1.4.0    # one cluster, against a tag
  python -m compiler diff --format markdown > comment.md   # PR comment, < 65,000 characters
  python -m compiler diff --format json | jq '.summary'   # schema: see compiler/diff.py

Exit codes: 0 no change, 1 changes, 2 error (unknown cluster or ref, kustomize failure).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from compiler.background import Background
from compiler.build import overlays
from compiler.build.check import require_fresh
from compiler.diff.engine import diff_ref
from compiler.diff.report import GITHUB_COMMENT_LIMIT, format_result
from compiler.render import kustomize


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("clusters", nargs="*", metavar="CLUSTER", help="clusters to compare (default: all)")
    parser.add_argument(
        "--base",
        metavar="REF",
        help="git ref to compare with (default: merge-base of origin/main and HEAD, else HEAD)",
    )
    parser.add_argument(
        "--format",
        choices=("text", "markdown", "json"),
        default="text",
        help="output format (default: text)",
    )
    parser.add_argument(
        "--color",
        choices=("auto", "always", "never"),
        default="auto",
        help="colour text output (auto: when stdout is a terminal)",
    )
    parser.add_argument(
        "--max-chars",
        type=int,
        default=GITHUB_COMMENT_LIMIT,
        metavar="N",
        help="markdown: cut details to stay under N characters (default: 65000, a GitHub comment)",
    )
    parser.add_argument("--no-cache", action="store_true", help="render afresh instead of reading the cache")


def run(args: argparse.Namespace) -> int:
    root = Path(args.root)
    # Never diff overlays the working tree's specs no longer compile to (overlays/argocd/ included): checked
    # while kustomize renders, and refused before any result is shown. A killed build's leftovers are repaired
    # first, and clusters named are checked first (a spec without its overlay is "missing", not unknown).
    overlays.recover(root)
    if args.clusters:
        require_fresh(root, args.clusters, argocd=False, use_cache=not args.no_cache)

    def fresh() -> None:
        require_fresh(root, args.clusters or None, argocd=True, use_cache=not args.no_cache)

    check = Background(fresh)  # on the other core while this process plans, materialises and renders
    try:
        result = diff_ref(root, args.base, args.clusters, use_cache=not args.no_cache, meanwhile=check.wait)
    finally:
        check.cancel()
    color = args.color == "always" or (args.color == "auto" and sys.stdout.isatty())
    sys.stdout.write(format_result(result, args.format, color=color, max_chars=args.max_chars))
    for line in kustomize.find(root).notice():  # which kustomize, and a warning when not the pinned one
        print(line, file=sys.stderr)
    return 1 if result.changed else 0
