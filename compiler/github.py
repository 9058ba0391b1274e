"""GitHub, through PyGithub: the one pull-request comment that carries the rendered diff.

The comment is found again by a hidden HTML marker on its first line: the first run creates it, later runs
edit it in place, so a pull request never collects one comment per push. A body over GitHub's limit is cut
at a line, with any open code block or <details> closed, and says so.
"""

from __future__ import annotations

import os
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

from github import Auth, Github, GithubException

from compiler.errors import UserError

T = TypeVar("T")
API_URL = "https://api.github.com"
COMMENT_LIMIT = 65_536  # characters GitHub accepts in an issue or pull-request comment body
MARKER = "<!-- cave-gitops:diff -->"
PER_PAGE = 100


@dataclass(frozen=True)
class Posted:
    """What upsert_comment did: created, updated or unchanged; and duplicate marked comments it deleted."""

    action: str
    comment_id: int
    url: str
    deleted: tuple[int, ...] = ()


def connect(token: str | None = None, api_url: str | None = None) -> Github:
    """A client for $GITHUB_API_URL (GitHub Enterprise too) authenticated with $GITHUB_TOKEN."""
    token = token if token is not None else os.environ.get("GITHUB_TOKEN", "")
    if not token:
        raise UserError("GITHUB_TOKEN is not set (export a token that may write pull-request comments; "
                        "in a workflow: env: GITHUB_TOKEN: ${{ github.token }})")
    base = (api_url or os.environ.get("GITHUB_API_URL") or API_URL).rstrip("/")
    return Github(auth=Auth.Token(token), base_url=base, per_page=PER_PAGE)


def check_marker(marker: str) -> str:
    if not re.fullmatch(r"<!--[^\n]*?-->", marker) or marker.count("-->") != 1:
        raise UserError(f"marker {marker!r} is not one hidden HTML comment (like {MARKER})")
    return marker


def fit(body: str, marker: str = MARKER, limit: int = COMMENT_LIMIT) -> str:
    """The comment text: marker line, then the body, cut at a line to stay within `limit` characters."""
    text = f"{marker}\n{body}"
    if len(text) <= limit:
        return text
    note = (f"\n\n**Cut here**: the full report has {len(text):,} characters, over GitHub's {limit:,}-character "
            "comment limit. Run `python -m compiler diff` locally, or read the job summary, for all of it.\n")
    budget = limit - len(note)
    while True:
        head = text[:budget]
        if "\n" in head[len(marker):]:
            head = head[: head.rindex("\n")]
        closers = _closers(head)
        if len(head) + len(closers) + len(note) <= limit:
            return head + closers + note
        budget -= len(closers) + 1


def _closers(text: str) -> str:
    """What closes the code fence and <details> blocks left open at the end of `text`."""
    out = ""
    fence_open = False
    depth = 0
    for line in text.split("\n"):
        stripped = line.strip()
        if stripped.startswith("```"):
            fence_open = not fence_open
        elif not fence_open:
            depth += stripped.count("<details") - stripped.count("</details>")
    if fence_open:
        out += "\n```"
    return out + "\n</details>" * max(depth, 0)


def upsert_comment(gh: Github, repo: str, number: int, body: str, marker: str = MARKER) -> Posted:
    """Create the pull request's marked comment, or edit it in place; never leave two of them."""
    text = fit(body, check_marker(marker))
    doing = f"reading {repo}#{number}"
    try:
        issue = gh.get_repo(repo).get_issue(number)
        if issue.pull_request is None:
            raise UserError(f"{repo}#{number} is an issue, not a pull request (pass the pull request's number)")
        mine = [c for c in issue.get_comments() if (c.body or "").startswith(marker)]
        if not mine:
            doing = f"commenting on {repo}#{number}"
            created = issue.create_comment(text)
            return Posted("created", created.id, created.html_url)
        keep, *extra = mine
        doing = f"updating comment {keep.id} on {repo}#{number}"
        action = "unchanged"
        if keep.body != text:
            keep.edit(text)
            action = "updated"
        for duplicate in extra:
            doing = f"deleting duplicate comment {duplicate.id} on {repo}#{number}"
            duplicate.delete()
        return Posted(action, keep.id, keep.html_url, tuple(c.id for c in extra))
    except GithubException as err:
        raise UserError(f"GitHub: {doing}: {err.status} {_message(err)} ({_hint(err.status)})") from None


def _message(err: GithubException) -> str:
    data = err.data if isinstance(err.data, dict) else {}
    details = [str(e.get("message") or e.get("code")) for e in data.get("errors", []) if isinstance(e, dict)]
    return "; ".join([str(data.get("message") or err.message or "error"), *details])


def _hint(status: int) -> str:
    if status == 401:
        return "the token is invalid or expired"
    if status == 403:
        return ("the token may not write pull-request comments: the job needs `permissions: pull-requests: write`, "
                "and a pull request from a fork gets a read-only token")
    if status == 404:
        return "check --repo and --pr, and that the token can see the repository"
    if status == 422:
        return "GitHub rejected the comment body"
    return "GitHub API error; retry later"


# --------------------------------------------------------------------------- the bump bot's calls


@dataclass(frozen=True)
class Retry:
    """Bounded waits: GitHub rate limits (403/429 with retry-after or x-ratelimit-reset) and 5xx or network
    errors are retried `attempts` times in all, each wait capped at `max_wait` seconds; `sleep` is injectable."""

    attempts: int = 4
    max_wait: float = 60.0
    sleep: Callable[[float], None] = time.sleep
    clock: Callable[[], float] = time.time

    def wait(self, status: int, headers: dict[str, str], attempt: int) -> float | None:
        """Seconds to wait before trying again, or None when the failure is not worth retrying."""
        h = {k.lower(): v for k, v in headers.items()}
        if status == 429 or (status == 403 and ("retry-after" in h or h.get("x-ratelimit-remaining") == "0")):
            if _number(h.get("retry-after")) is not None:
                seconds = _number(h.get("retry-after")) or 0.0
            elif (reset := _number(h.get("x-ratelimit-reset"))) is not None:
                seconds = reset - self.clock() + 1
            else:
                seconds = 60.0  # a secondary rate limit without headers: GitHub asks for at least a minute
        elif status >= 500 or status == 0:
            seconds = float(2**attempt)
        else:
            return None
        return min(max(seconds, 0.0), self.max_wait)


def _number(text: str | None) -> float | None:
    try:
        return float(text) if text is not None else None
    except ValueError:
        return None


def client(api_url: str, token: str | None, *, seconds_between_requests: float = 0.25,
           seconds_between_writes: float = 1.0) -> Github:
    """A client without PyGithub's own retries (call() retries, with bounded waits); anonymous without a token."""
    return Github(auth=Auth.Token(token) if token else None, base_url=api_url.rstrip("/"), per_page=PER_PAGE,
                  retry=None, seconds_between_requests=seconds_between_requests,
                  seconds_between_writes=seconds_between_writes)


def call(fn: Callable[[], T], doing: str, retry: Retry | None = None) -> T:
    """fn(), retried on rate limits, 5xx and network errors; a failure becomes a one-line UserError."""
    retry = retry or Retry()
    for attempt in range(retry.attempts):
        try:
            return fn()
        except GithubException as err:
            wait = retry.wait(err.status, dict(err.headers or {}), attempt)
            if wait is None or attempt == retry.attempts - 1:
                hint = _bot_hint(err.status) if wait is None else f"failed {retry.attempts} times; run again later"
                raise UserError(f"GitHub: {doing}: {err.status} {_message(err)} ({hint})") from None
        except OSError as err:  # requests' ConnectionError and Timeout are OSErrors
            wait = min(float(2**attempt), retry.max_wait)
            if attempt == retry.attempts - 1:
                raise UserError(f"GitHub: {doing}: cannot reach the API: {_reason(err)} "
                                "(check GITHUB_API_URL / --upstream-api-url and the network)") from None
        retry.sleep(wait)
    raise AssertionError("unreachable")


def _reason(err: BaseException) -> str:
    text = " ".join(str(err).split())
    return text if len(text) <= 200 else text[:197] + "..."


def _bot_hint(status: int) -> str:
    if status == 401:
        return "the token is invalid or expired"
    if status == 403:
        return "the token lacks a permission: the bump workflow needs contents: write and pull-requests: write"
    if status == 404:
        return "check the repository name and that the token can see it"
    if status == 422:
        return "GitHub rejected the request"
    return "GitHub API error; retry later"
