"""Propose upstream releases of schema, annotation and materialize as version-bump pull requests.

Finds releases (or tags) of EMAnnotationSchemas, AnnotationEngine and MaterializationEngine on GitHub, picks
per cluster the newest one its spec's `bump:` policy allows (default: the latest stable release) whose images
exist in the cluster's docker_repository, and whose pinned EMAnnotationSchemas the global cluster runs; when
the global schema service is older, its bump joins the same pull request, which states the deploy order.
Each set of linked components gets one branch (cave-bot/<components>), one commit made with
`python -m compiler bump` and one pull request, updated when a newer release comes out. The pull request records
the commit the bot pushed; anything else on the branch (a person's commit, amend or rebase) is never overwritten
(the bot comments instead). Nothing is pushed when a lookup fails. Every run reconciles the open pull requests
(title, body, labels), so a run after a lost GitHub answer completes what is missing.

Policy in a spec (on emannotationschemas, annotationengine, materializationengine):
  bump: latest                      # default
  bump: pinned                      # never
  bump: "~4.23"                     # or ^4, ">=4.20,<5", 4.23.1
  bump: {allow: ^5, prereleases: true}
  bump: {stage: canary, soak: 24h}  # staged rollout (stages in order: gitops.yaml bump: {stages: [canary, main]})

Staged rollout: a new release is proposed for the first stage's clusters only; the next stage once the previous
one has had it on main for its `soak` and, when gitops.yaml sets argocd.api_url, Argo CD reports their
Applications Healthy and Synced at that commit or later (token: $ARGOCD_TOKEN). A Degraded Application stops
the rollout of that release, with a comment on the merged pull request. Clusters without a stage: at once.

Run inside a clone whose --remote is the repository the pull requests go to. The token comes from
$GITHUB_TOKEN (contents: write, pull-requests: write), the API from $GITHUB_API_URL (GitHub Enterprise
too). Upstream repositories are read from --upstream-api-url with $UPSTREAM_GITHUB_TOKEN (or $GITHUB_TOKEN
when both APIs are the same); registries from their public APIs, or --registry-url.

Examples:
  python -m compiler bot --dry-run
  python -m compiler bot --repo CAVEconnectome/cave-gitops
  python -m compiler bot --upstream materialize=my-org/MaterializationEngine --registry-url http://127.0.0.1:5000

Exit codes: 0 done (or nothing to do), 2 bad input or an upstream, registry, git or GitHub failure.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from compiler import github
from compiler.bot.plan import alias
from compiler.bot.run import BotRequest, run_bot
from compiler.bot.upstream import UPSTREAMS


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--repo", default=os.environ.get("GITHUB_REPOSITORY"), metavar="OWNER/NAME",
                        help="repository the pull requests go to (default: $GITHUB_REPOSITORY)")
    parser.add_argument("--base", metavar="BRANCH",
                        help="branch to bump and open pull requests against (default: gitops.yaml's "
                             "argocd.target_revision, else main)")
    parser.add_argument("--remote", default="origin", help="git remote of that repository (default: origin)")
    parser.add_argument("--upstream", action="append", default=[], metavar="COMPONENT=OWNER/NAME",
                        help="where a component is released (repeatable; default: "
                             + ", ".join(f"{alias(k)}={v}" for k, v in UPSTREAMS.items()) + ")")
    parser.add_argument("--upstream-api-url", default=os.environ.get("CAVE_BOT_UPSTREAM_API_URL"), metavar="URL",
                        help="GitHub API of the upstream repositories (default: $CAVE_BOT_UPSTREAM_API_URL, "
                             f"else {github.API_URL})")
    parser.add_argument("--registry-url", default=os.environ.get("CAVE_BOT_REGISTRY_URL"), metavar="URL",
                        help="registry API base replacing Docker Hub's / the registry host's "
                             "(default: $CAVE_BOT_REGISTRY_URL, else the public APIs)")
    parser.add_argument("--max-wait", type=float, default=60.0, metavar="S",
                        help="longest single wait on a rate limit or server error (default: 60)")
    parser.add_argument("--dry-run", action="store_true", help="print what would be proposed; write nothing")


def run(args: argparse.Namespace) -> int:
    return run_bot(Path(args.root), BotRequest(
        repo=args.repo, base=args.base, remote=args.remote, upstream=args.upstream,
        upstream_api_url=args.upstream_api_url, registry_url=args.registry_url, max_wait=args.max_wait,
        dry_run=args.dry_run))
