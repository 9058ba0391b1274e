"""The PR comment against a local fake GitHub that speaks the REST wire format PyGithub uses (GHES-style /api/v3)."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from github import Auth, Github

from compiler import github
from compiler.errors import UserError
from compiler.main import main

TOKEN = "ghs_test-token"
BOT = {"login": "github-actions[bot]", "id": 41898282, "type": "Bot"}
HUMAN = {"login": "reviewer", "id": 1001, "type": "User"}
STAMP = "2026-01-02T03:04:05Z"


class FakeGitHub:
    """A small GitHub REST API on 127.0.0.1: one repository, its issues and pull requests, issue comments.

    Absolute URLs in responses point back at this server (as GitHub's point at api.github.com), pagination
    uses the Link header, and errors carry GitHub's JSON bodies and status codes.
    """

    def __init__(self, repo: str = "cave/gitops", prefix: str = "/api/v3") -> None:
        self.repo = repo
        self.prefix = prefix
        self.pulls: set[int] = set()
        self.issues: set[int] = set()
        self.comments: dict[int, dict[str, Any]] = {}
        self.requests: list[tuple[str, str]] = []
        self._next_id = 5000
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05},
                                        daemon=True)

    @property
    def api_url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}{self.prefix}"

    def start(self) -> FakeGitHub:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def add_comment(self, number: int, body: str, user: dict[str, Any] = BOT) -> int:
        with self._lock:
            self._next_id += 1
            cid = self._next_id
            self.comments[cid] = {"id": cid, "number": number, "body": body, "user": user}
            return cid

    def bodies(self, number: int) -> list[str]:
        return [c["body"] for c in sorted(self.comments.values(), key=lambda c: c["id"]) if c["number"] == number]

    # ------------------------------------------------------------------ wire format

    def _repo_json(self) -> dict[str, Any]:
        owner, name = self.repo.split("/")
        url = f"{self.api_url}/repos/{self.repo}"
        return {
            "id": 1, "node_id": "R_1", "name": name, "full_name": self.repo, "private": False,
            "owner": {"login": owner, "id": 2, "type": "Organization", "url": f"{self.api_url}/users/{owner}"},
            "url": url, "html_url": f"https://github.example/{self.repo}", "default_branch": "main",
            "issues_url": f"{url}/issues{{/number}}", "pulls_url": f"{url}/pulls{{/number}}",
            "issue_comment_url": f"{url}/issues/comments{{/number}}",
        }

    def _issue_json(self, number: int) -> dict[str, Any]:
        url = f"{self.api_url}/repos/{self.repo}/issues/{number}"
        out: dict[str, Any] = {
            "id": 100 + number, "node_id": f"I_{number}", "number": number, "url": url,
            "repository_url": f"{self.api_url}/repos/{self.repo}", "comments_url": f"{url}/comments",
            "html_url": f"https://github.example/{self.repo}/issues/{number}", "title": f"change {number}",
            "state": "open", "user": HUMAN, "created_at": STAMP, "updated_at": STAMP,
            "comments": len([c for c in self.comments.values() if c["number"] == number]),
        }
        if number in self.pulls:
            pull = f"{self.api_url}/repos/{self.repo}/pulls/{number}"
            out["pull_request"] = {"url": pull, "html_url": f"https://github.example/{self.repo}/pull/{number}",
                                   "diff_url": f"{pull}.diff", "patch_url": f"{pull}.patch"}
        return out

    def _comment_json(self, c: dict[str, Any]) -> dict[str, Any]:
        base = f"{self.api_url}/repos/{self.repo}/issues"
        return {
            "id": c["id"], "node_id": f"IC_{c['id']}", "url": f"{base}/comments/{c['id']}",
            "html_url": f"https://github.example/{self.repo}/pull/{c['number']}#issuecomment-{c['id']}",
            "issue_url": f"{base}/{c['number']}", "body": c["body"], "user": c["user"],
            "created_at": STAMP, "updated_at": STAMP, "author_association": "NONE",
        }

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:  # keep the test output clean
                pass

            def _send(self, status: int, payload: Any = None, headers: dict[str, str] | None = None) -> None:
                data = b"" if payload is None else json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json; charset=utf-8")
                self.send_header("Content-Length", str(len(data)))
                self.send_header("X-RateLimit-Limit", "5000")
                self.send_header("X-RateLimit-Remaining", "4999")
                for key, value in (headers or {}).items():
                    self.send_header(key, value)
                self.end_headers()
                self.wfile.write(data)

            def _error(self, status: int, message: str, **extra: Any) -> None:
                self._send(status, {"message": message, "documentation_url": "https://docs.github.com/rest",
                                    "status": str(status), **extra})

            def _json_body(self) -> Any:
                length = int(self.headers.get("Content-Length") or 0)
                return json.loads(self.rfile.read(length) or b"{}")

            def _route(self, method: str) -> None:
                url = urlsplit(self.path)
                fake.requests.append((method, url.path))
                auth = self.headers.get("Authorization", "")
                if auth not in (f"token {TOKEN}", f"Bearer {TOKEN}"):
                    return self._error(401, "Bad credentials")
                if not url.path.startswith(fake.prefix + "/repos/"):
                    return self._error(404, "Not Found")
                parts = url.path[len(fake.prefix) + len("/repos/"):].split("/")
                if "/".join(parts[:2]) != fake.repo:
                    return self._error(404, "Not Found")
                rest = parts[2:]
                with fake._lock:
                    return self._dispatch(method, rest, parse_qs(url.query))

            def _dispatch(self, method: str, rest: list[str], query: dict[str, list[str]]) -> None:
                if method == "GET" and not rest:
                    return self._send(200, fake._repo_json())
                if rest[:1] == ["issues"] and len(rest) >= 2 and rest[1].isdigit():
                    number = int(rest[1])
                    if number not in fake.pulls | fake.issues:
                        return self._error(404, "Not Found")
                    if method == "GET" and len(rest) == 2:
                        return self._send(200, fake._issue_json(number))
                    if rest[2:] == ["comments"] and method == "GET":
                        return self._list_comments(number, query)
                    if rest[2:] == ["comments"] and method == "POST":
                        body = self._json_body().get("body", "")
                        if not self._body_ok(body):
                            return None
                        cid = fake._next_id = fake._next_id + 1
                        fake.comments[cid] = {"id": cid, "number": number, "body": body, "user": BOT}
                        return self._send(201, fake._comment_json(fake.comments[cid]))
                if rest[:2] == ["issues", "comments"] and len(rest) == 3 and rest[2].isdigit():
                    comment = fake.comments.get(int(rest[2]))
                    if comment is None:
                        return self._error(404, "Not Found")
                    if method == "GET":
                        return self._send(200, fake._comment_json(comment))
                    if method == "PATCH":
                        body = self._json_body().get("body", "")
                        if not self._body_ok(body):
                            return None
                        comment["body"] = body
                        return self._send(200, fake._comment_json(comment))
                    if method == "DELETE":
                        del fake.comments[comment["id"]]
                        return self._send(204)
                return self._error(404, "Not Found")

            def _body_ok(self, body: str) -> bool:
                if len(body) > github.COMMENT_LIMIT:
                    self._error(422, "Validation Failed", errors=[{
                        "resource": "IssueComment", "code": "custom", "field": "body",
                        "message": f"body is too long (maximum is {github.COMMENT_LIMIT} characters)"}])
                    return False
                return True

            def _list_comments(self, number: int, query: dict[str, list[str]]) -> None:
                per_page = min(int(query.get("per_page", ["30"])[0]), 100)
                page = int(query.get("page", ["1"])[0])
                items = [c for c in sorted(fake.comments.values(), key=lambda c: c["id"]) if c["number"] == number]
                last = max(1, -(-len(items) // per_page))
                chunk = items[(page - 1) * per_page: page * per_page]
                base = f"{fake.api_url}/repos/{fake.repo}/issues/{number}/comments"
                links = []
                if page < last:
                    links.append(f'<{base}?per_page={per_page}&page={page + 1}>; rel="next"')
                    links.append(f'<{base}?per_page={per_page}&page={last}>; rel="last"')
                if page > 1:
                    links.append(f'<{base}?per_page={per_page}&page=1>; rel="first"')
                    links.append(f'<{base}?per_page={per_page}&page={page - 1}>; rel="prev"')
                headers = {"Link": ", ".join(links)} if links else {}
                self._send(200, [fake._comment_json(c) for c in chunk], headers)

            def do_GET(self) -> None:
                self._route("GET")

            def do_POST(self) -> None:
                self._route("POST")

            def do_PATCH(self) -> None:
                self._route("PATCH")

            def do_DELETE(self) -> None:
                self._route("DELETE")

        return Handler


@pytest.fixture
def fake() -> Iterator[FakeGitHub]:
    server = FakeGitHub().start()
    server.pulls.add(7)
    server.issues.add(8)
    yield server
    server.stop()


def client(fake: FakeGitHub) -> Github:
    """Like github.connect(), without the pause PyGithub makes between writes."""
    return Github(auth=Auth.Token(TOKEN), base_url=fake.api_url, per_page=github.PER_PAGE,
                  seconds_between_requests=0, seconds_between_writes=0, retry=None)


def marked(fake: FakeGitHub, number: int = 7) -> list[str]:
    return [b for b in fake.bodies(number) if b.startswith(github.MARKER)]


def test_first_push_creates_second_updates(fake: FakeGitHub) -> None:
    fake.add_comment(7, "LGTM", HUMAN)
    first = github.upsert_comment(client(fake), fake.repo, 7, "## Rendered diff\n\nminnie: 1 change\n")
    assert first.action == "created"
    assert marked(fake) == [f"{github.MARKER}\n## Rendered diff\n\nminnie: 1 change\n"]

    second = github.upsert_comment(client(fake), fake.repo, 7, "## Rendered diff\n\nminnie: 2 changes\n")
    assert (second.action, second.comment_id) == ("updated", first.comment_id)
    assert marked(fake) == [f"{github.MARKER}\n## Rendered diff\n\nminnie: 2 changes\n"]
    assert fake.bodies(7)[0] == "LGTM"
    assert ("PATCH", f"/api/v3/repos/cave/gitops/issues/comments/{first.comment_id}") in fake.requests

    writes = len([r for r in fake.requests if r[0] != "GET"])
    third = github.upsert_comment(client(fake), fake.repo, 7, "## Rendered diff\n\nminnie: 2 changes\n")
    assert third.action == "unchanged"
    assert len([r for r in fake.requests if r[0] != "GET"]) == writes


def test_finds_its_comment_across_pages_and_removes_duplicates(fake: FakeGitHub) -> None:
    for i in range(230):
        fake.add_comment(7, f"review note {i}", HUMAN)
    older = fake.add_comment(7, f"{github.MARKER}\nold report")
    fake.add_comment(7, f"{github.MARKER}\nduplicate from a race")
    fake.add_comment(7, f"quoting: {github.MARKER} is not at the start", HUMAN)
    posted = github.upsert_comment(client(fake), fake.repo, 7, "new report")
    assert posted.comment_id == older and posted.action == "updated" and len(posted.deleted) == 1
    assert marked(fake) == [f"{github.MARKER}\nnew report"]
    assert len(fake.bodies(7)) == 232  # 230 notes, the quote, the kept report: only the duplicate went
    assert fake.requests.count(("GET", "/api/v3/repos/cave/gitops/issues/7/comments")) == 3  # 233 at 100 a page


def test_body_over_the_limit_is_cut_and_still_posts(fake: FakeGitHub) -> None:
    lines = ["## Rendered diff", "<details><summary>minnie</summary>", "", "```diff"]
    lines += [f"+  line {i}: " + "x" * 80 for i in range(2000)]
    lines += ["```", "</details>", "the end"]
    body = "\n".join(lines)
    assert len(body) > github.COMMENT_LIMIT
    github.upsert_comment(client(fake), fake.repo, 7, body)
    (posted,) = marked(fake)
    assert len(posted) <= github.COMMENT_LIMIT
    assert "the end" not in posted and "over GitHub's 65,536-character comment limit" in posted
    assert posted.count("```") % 2 == 0
    assert posted.count("<details>") == posted.count("</details>")


def test_fit_keeps_short_bodies_and_cuts_at_a_line() -> None:
    assert github.fit("short") == f"{github.MARKER}\nshort"
    cut = github.fit("\n".join(f"row {i:05d}" for i in range(20000)), limit=5000)
    assert len(cut) <= 5000
    kept = cut.split("\n\n**Cut here**")[0].splitlines()[1:]
    assert all(len(row) == 9 for row in kept)


def test_errors_are_one_line_with_a_hint(fake: FakeGitHub) -> None:
    with pytest.raises(UserError, match=r"cave/gitops#8 is an issue, not a pull request"):
        github.upsert_comment(client(fake), fake.repo, 8, "x")
    with pytest.raises(UserError, match=r"GitHub: reading cave/gitops#99: 404 Not Found \(check --repo and --pr"):
        github.upsert_comment(client(fake), fake.repo, 99, "x")
    bad = Github(auth=Auth.Token("wrong"), base_url=fake.api_url, seconds_between_requests=0, retry=None)
    with pytest.raises(UserError, match=r"401 Bad credentials \(the token is invalid or expired\)"):
        github.upsert_comment(bad, fake.repo, 7, "x")
    with pytest.raises(UserError, match="not one hidden HTML comment"):
        github.upsert_comment(client(fake), fake.repo, 7, "x", marker="cave-diff")


def test_command_uses_token_and_api_url_from_the_environment(
    fake: FakeGitHub, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    body = tmp_path / "diff.md"
    body.write_text("## Rendered diff\n\nno changes\n")
    monkeypatch.setenv("GITHUB_API_URL", fake.api_url)
    monkeypatch.setenv("GITHUB_REPOSITORY", fake.repo)
    monkeypatch.delenv("GITHUB_TOKEN", raising=False)
    assert main(["pr-comment", "--pr", "7", "--body-file", str(body)]) == 2
    assert "GITHUB_TOKEN is not set" in capsys.readouterr().err

    monkeypatch.setenv("GITHUB_TOKEN", TOKEN)
    assert main(["pr-comment", "--pr", "7", "--body-file", str(body)]) == 0
    assert capsys.readouterr().out.startswith("created comment ")
    body.write_text("## Rendered diff\n\n1 change\n")
    assert main(["pr-comment", "--repo", fake.repo, "--pr", "7", "--body-file", str(body)]) == 0
    assert capsys.readouterr().out.startswith("updated comment ")
    assert marked(fake) == [f"{github.MARKER}\n## Rendered diff\n\n1 change\n"]

    assert main(["pr-comment", "--repo", "nope", "--pr", "7", "--body-file", str(body)]) == 2
    assert "expected OWNER/NAME" in capsys.readouterr().err
