"""GitHub, through PyGithub: the one pull-request comment that carries the rendered diff.

The comment is found again by a hidden HTML marker on its first line: the first run creates it, later runs
edit it in place, so a pull request never collects one comment per push. A body over GitHub's limit is cut
at a line, with any open code block or <details> closed, and says so.
"""

from __future__ import annotations

import http.client
import os
import re
import socket
import ssl
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
# Who a GitHub Actions GITHUB_TOKEN (an app installation token) comments as; such a token cannot read GET /user.
ACTIONS_BOT = "github-actions[bot]"
PER_PAGE = 100


@dataclass(frozen=True)
class Posted:
    """What upsert_comment did: created, updated or unchanged; and duplicate marked comments it deleted."""

    action: str
    comment_id: int
    url: str
    deleted: tuple[int, ...] = ()


@dataclass(frozen=True)
class Hints:
    """What to check after a failed request, in the words of one caller (what its token needs differs)."""

    forbidden: str  # 403
    not_found: str  # 404
    rejected: str  # 422

    def __call__(self, status: int) -> str:
        if status == 401:
            return "the token is invalid or expired"
        by_status = {403: self.forbidden, 404: self.not_found, 422: self.rejected}
        return by_status.get(status, "GitHub API error; retry later")


COMMENT_HINTS = Hints(
    forbidden="the token may not write pull-request comments: the job needs `permissions: pull-requests: write`, "
              "and a pull request from a fork gets a read-only token",
    not_found="check --repo and --pr, and that the token can see the repository",
    rejected="GitHub rejected the comment body",
)
BOT_HINTS = Hints(
    forbidden="the token lacks a permission: the bump workflow needs contents: write and pull-requests: write",
    not_found="check the repository name and that the token can see it",
    rejected="GitHub rejected the request",
)


def client(api_url: str, token: str | None, *, pygithub_retries: bool = False, seconds_between_requests: float = 0.25,
           seconds_between_writes: float = 1.0) -> Github:
    """The one way a GitHub client is made: the API at `api_url` (GitHub Enterprise too), authenticated with
    `token` (anonymous without one), 100 items a page. PyGithub's own retries are off, since `call()` retries with
    bounded waits, unless `pygithub_retries` (the pull-request comment, whose calls do not go through `call()`)."""
    return Github(auth=Auth.Token(token) if token else None, base_url=api_url.rstrip("/"), per_page=PER_PAGE,
                  retry=Github.default_retry if pygithub_retries else None,
                  seconds_between_requests=seconds_between_requests, seconds_between_writes=seconds_between_writes)


def connect(token: str | None = None, api_url: str | None = None) -> Github:
    """The pull-request comment's client: $GITHUB_API_URL (GitHub Enterprise too), authenticated with $GITHUB_TOKEN."""
    token = token if token is not None else os.environ.get("GITHUB_TOKEN", "")
    if not token:
        raise UserError("GITHUB_TOKEN is not set (export a token that may write pull-request comments; "
                        "in a workflow: env: GITHUB_TOKEN: ${{ github.token }})")
    return client(api_url or os.environ.get("GITHUB_API_URL") or API_URL, token, pygithub_retries=True)


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
    fence = ""  # the open fence (a fence is closed only by a run of its character at least as long: CommonMark)
    depth = 0
    for line in text.split("\n"):
        stripped = line.strip()
        run = re.match(r"`{3,}|~{3,}", stripped)
        if fence and run and run.group()[0] == fence[0] and len(run.group()) >= len(fence) \
                and not stripped[run.end():].strip():
            fence = ""
        elif not fence and run:
            fence = run.group()
        elif not fence:
            depth += stripped.count("<details") - stripped.count("</details>")
    if fence:
        out += "\n" + fence
    return out + "\n</details>" * max(depth, 0)


def token_login(gh: Github) -> str:
    """The login the token comments as: GET /user. An app installation token, like the GITHUB_TOKEN of GitHub
    Actions, may not read /user (403 "Resource not accessible by integration") and comments as ACTIONS_BOT (a
    token of another GitHub App: pass its bot login as `author`)."""
    try:
        return str(gh.get_user().login)
    except GithubException as err:
        if err.status == 403:
            return ACTIONS_BOT
        raise


def upsert_comment(gh: Github, repo: str, number: int, body: str, marker: str = MARKER,
                   author: str | None = None) -> Posted:
    """Create the pull request's marked comment, or edit it in place; never leave two of them.

    Only comments written by `author` (default: the token's own login, `token_login`) count as ours: anyone can
    start a comment with the marker, and such a comment is never edited or deleted."""
    text = fit(body, check_marker(marker))
    doing = "asking GitHub who the token is (GET /user)"
    try:
        login = author or token_login(gh)
        doing = f"reading {repo}#{number}"
        issue = gh.get_repo(repo).get_issue(number)
        if issue.pull_request is None:
            raise UserError(f"{repo}#{number} is an issue, not a pull request (pass the pull request's number)")
        mine = [c for c in issue.get_comments()
                if (c.body or "").startswith(marker) and c.user is not None and c.user.login == login]
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
        raise _failed(doing, err, COMMENT_HINTS(err.status)) from None


def _failed(doing: str, err: GithubException, hint: str) -> UserError:
    """`GitHub: <doing>: <status> <GitHub's message and details> (<hint>)`, one line."""
    data = err.data if isinstance(err.data, dict) else {}
    details = [str(e.get("message") or e.get("code")) for e in data.get("errors", []) if isinstance(e, dict)]
    message = "; ".join([str(data.get("message") or err.message or "error"), *details])
    return UserError(f"GitHub: {doing}: {err.status} {message} ({hint})")


# --------------------------------------------------------------------------- the bump bot's calls


@dataclass(frozen=True)
class Retry:
    """Bounded waits: GitHub rate limits (403/429 with retry-after or x-ratelimit-reset) and 5xx or network
    errors are retried `attempts` times in all, each wait capped at `max_wait` seconds; `sleep` is injectable."""

    attempts: int = 4
    max_wait: float = 60.0
    sleep: Callable[[float], None] = time.sleep
    clock: Callable[[], float] = time.time

    def wait(self, status: int, headers: dict[str, str], attempt: int, message: str = "") -> float | None:
        """Seconds to wait before trying again, or None when the failure is not worth retrying. A secondary rate
        limit (403 or 429 whose message says so) without retry-after waits a minute, doubling each attempt."""
        h = {k.lower(): v for k, v in headers.items()}
        if rate_limited(status, h, message):
            if _number(h.get("retry-after")) is not None:
                seconds = _number(h.get("retry-after")) or 0.0
            elif h.get("x-ratelimit-remaining") == "0" and (reset := _number(h.get("x-ratelimit-reset"))) is not None:
                seconds = reset - self.clock() + 1
            else:
                seconds = 60.0 * 2**attempt  # GitHub asks for at least a minute, then exponentially longer
        elif status >= 500 or status == 0:
            seconds = float(2**attempt)
        else:
            return None
        return min(max(seconds, 0.0), self.max_wait)


def rate_limited(status: int, headers: dict[str, str], message: str = "") -> bool:
    """Whether a 403/429 is a (primary or secondary) rate limit rather than a refusal."""
    h = {k.lower(): v for k, v in headers.items()}
    return status == 429 or (status == 403 and ("retry-after" in h or h.get("x-ratelimit-remaining") == "0"
                                                or "rate limit" in message.lower()))


def _number(text: str | None) -> float | None:
    try:
        return float(text) if text is not None else None
    except ValueError:
        return None


def call(fn: Callable[[], T], doing: str, retry: Retry | None = None) -> T:
    """fn(), retried on rate limits, 5xx and network errors; a failure becomes a one-line UserError."""
    retry = retry or Retry()
    for attempt in range(retry.attempts):
        try:
            return fn()
        except GithubException as err:
            headers = dict(err.headers or {})
            message = str(err.data.get("message") or "") if isinstance(err.data, dict) else ""
            wait = retry.wait(err.status, headers, attempt, message)
            if wait is None or attempt == retry.attempts - 1:
                if rate_limited(err.status, headers, message):
                    hint = (f"a rate limit, not a missing permission: still limited after {attempt + 1} tries with "
                            f"waits of at most {retry.max_wait:g} s; run again later, or raise --max-wait")
                elif wait is None:
                    hint = BOT_HINTS(err.status)
                else:
                    hint = f"failed {retry.attempts} times; run again later"
                raise _failed(doing, err, hint) from None
        except OSError as err:  # requests' ConnectionError and Timeout are OSErrors
            wait = min(float(2**attempt), retry.max_wait)
            if attempt == retry.attempts - 1:
                raise UserError(f"GitHub: {doing}: cannot reach the API: {reason(err)} "
                                "(check GITHUB_API_URL / --upstream-api-url and the network)") from None
        retry.sleep(wait)
    raise AssertionError("unreachable")


def _chain(err: BaseException) -> list[BaseException]:
    """The exception and what caused it, outermost first (requests → urllib3 → socket/ssl)."""
    out: list[BaseException] = []
    current: BaseException | None = err
    while current is not None and all(current is not e for e in out):
        out.append(current)
        nested = getattr(current, "reason", None)
        args = [a for a in current.args if isinstance(a, BaseException)]
        current = (current.__cause__ or (nested if isinstance(nested, BaseException) else None)
                   or (args[0] if args else None) or current.__context__)
    return out


def reason(err: BaseException) -> str:
    """Why a connection failed, in words that keep the cause: `connection refused (host:port): [Errno 111] ...`,
    `DNS lookup failed`, `TLS error`, `timed out`, `connection closed without a response`."""
    chain = _chain(err)
    names = {type(e).__name__ for e in chain}
    if any(isinstance(e, socket.gaierror) for e in chain) or "NameResolutionError" in names:
        kind = "DNS lookup failed"
    elif any(isinstance(e, ssl.SSLError) for e in chain) or "SSLError" in names:
        kind = "TLS error"
    elif any(isinstance(e, ConnectionRefusedError) for e in chain):
        kind = "connection refused"
    elif any(isinstance(e, TimeoutError) for e in chain) or names & {"ReadTimeout", "ConnectTimeout", "Timeout"}:
        kind = "timed out"
    elif any(isinstance(e, (ConnectionResetError, http.client.RemoteDisconnected)) for e in chain):
        kind = "connection closed without a response"
    else:
        kind = type(chain[-1]).__name__
    where = re.search(r"host='([^']+)', port=(\d+)", " ".join(str(e) for e in chain))
    at = f" ({where.group(1)}:{where.group(2)})" if where else ""
    detail = " ".join(str(chain[-1]).split())
    detail = detail if len(detail) <= 200 else detail[:197] + "..."
    return f"{kind}{at}: {detail}" if detail else f"{kind}{at}"
