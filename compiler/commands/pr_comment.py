"""Post a report as the one marked comment of a pull request: created on the first run, edited after that.

The comment starts with a hidden HTML marker (--marker) by which later runs find it, so every push updates
the same comment and a pull request never collects duplicates (extra marked comments are deleted). Only
comments written by the token's own account count (anyone can start a comment with the marker): GET /user names
it; GitHub Actions' GITHUB_TOKEN cannot read /user and comments as github-actions[bot]; for another GitHub App's
token pass its bot login with --author. A body over GitHub's 65,536-character limit is cut at a line and says so.

The token comes from $GITHUB_TOKEN (it needs pull-requests: write); the API from $GITHUB_API_URL
(set by GitHub Actions, also on GitHub Enterprise), else https://api.github.com.

Examples:
  python -m compiler diff --base origin/main --format markdown > diff.md
  python -m compiler pr-comment --repo CAVEconnectome/cave-gitops --pr 42 --body-file diff.md
  python -m compiler diff --format markdown | python -m compiler pr-comment --pr 42 --body-file -

Exit codes: 0 posted (or already up to date), 2 bad input or a GitHub error.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from compiler import github
from compiler.errors import UserError


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--repo",
        default=os.environ.get("GITHUB_REPOSITORY"),
        metavar="OWNER/NAME",
        help="repository of the pull request (default: $GITHUB_REPOSITORY)",
    )
    parser.add_argument("--pr", type=int, required=True, metavar="N", help="pull request number")
    parser.add_argument("--body-file", required=True, metavar="FILE", help="markdown to post ('-' reads stdin)")
    parser.add_argument(
        "--marker",
        default=github.MARKER,
        help=f"hidden HTML comment that identifies the comment (default: {github.MARKER})",
    )
    parser.add_argument(
        "--author",
        metavar="LOGIN",
        help="login whose marked comment is ours (default: the token's, from GET /user; "
             f"{github.ACTIONS_BOT} for a GitHub Actions token)",
    )


def _body(name: str) -> str:
    if name == "-":
        return sys.stdin.read()
    try:
        return Path(name).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as err:
        raise UserError(f"{name}: cannot read the comment body ({err})") from None


def run(args: argparse.Namespace) -> int:
    if not args.repo or args.repo.count("/") != 1:
        raise UserError(f"--repo {args.repo or '(unset)'}: expected OWNER/NAME (or set $GITHUB_REPOSITORY)")
    body = _body(args.body_file)
    posted = github.upsert_comment(github.connect(), args.repo, args.pr, body, args.marker, author=args.author)
    extra = f"; deleted {len(posted.deleted)} duplicate(s)" if posted.deleted else ""
    print(f"{posted.action} comment {posted.comment_id} on {args.repo}#{args.pr}: {posted.url}{extra}")
    return 0
