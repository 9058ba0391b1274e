"""A local fake GitHub speaking the REST wire format PyGithub uses (GHES-style /api/v3), shared by the tests.

One repository takes pull requests, issue comments and labels; other (upstream) repositories serve releases,
tags and file contents at a ref. Queued failures answer the next matching requests with GitHub's rate-limit
and server-error responses. Absolute URLs in responses point back at this server (as GitHub's point at
api.github.com), pagination uses the Link header, and errors carry GitHub's JSON bodies and status codes.
"""

from __future__ import annotations

import base64
import hashlib
import json
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

from github import Github

from compiler import github

TOKEN = "ghs_test-token"
BOT = {"login": "github-actions[bot]", "id": 41898282, "type": "Bot"}
HUMAN = {"login": "reviewer", "id": 1001, "type": "User"}
STAMP = "2026-01-02T03:04:05Z"
SECONDARY = ("You have exceeded a secondary rate limit. Please wait a few minutes before you try again. If you "
             "reach out to GitHub Support for help, please include the request ID 0000:0000:0000000:0000000:00000000.")


@dataclass
class UpstreamRepo:
    """A public repository the bot reads: releases, tags, and files at a tag."""

    releases: list[dict[str, Any]] = field(default_factory=list)  # {tag, prerelease, draft}
    tags: list[str] = field(default_factory=list)
    files: dict[tuple[str, str], str] = field(default_factory=dict)  # (ref, path) → text
    raw_releases: bytes | None = None  # served as the release list instead (a broken proxy, a malformed answer)
    raw_contents: dict[tuple[str, str], str] = field(default_factory=dict)  # (ref, path) → `content` as served

    def release(self, tag: str, prerelease: bool = False, draft: bool = False, files: dict[str, str] | None = None,
                tagged: bool = True) -> None:
        self.releases.append({"tag": tag, "prerelease": prerelease, "draft": draft})
        if tagged:
            self.tags.append(tag)
        for path, text in (files or {}).items():
            self.files[(tag, path)] = text


@dataclass
class Failure:
    status: int
    headers: dict[str, str]
    message: str
    path: str = ""  # only requests whose path contains this


class FakeGitHub:
    """A small GitHub REST API on 127.0.0.1: pull requests, issues, comments and labels of `repo`, and the
    releases, tags and contents of the repositories in `upstream`."""

    def __init__(self, repo: str = "cave/gitops", prefix: str = "/api/v3") -> None:
        self.repo = repo
        self.prefix = prefix
        self.pulls: set[int] = set()
        self.issues: set[int] = set()
        self.pull_data: dict[int, dict[str, Any]] = {}  # pull requests opened through the API
        self.labels: dict[int, list[str]] = {}
        self.comments: dict[int, dict[str, Any]] = {}
        self.upstream: dict[str, UpstreamRepo] = {}
        self.failures: list[Failure] = []
        self.requests: list[tuple[str, str]] = []
        self.losses: list[tuple[str, str]] = []  # (method, path part): do the request, then drop the connection
        self.events: dict[int, list[dict[str, Any]]] = {}  # issue number → its issue events (closed, reopened)
        # Who the token is: None is an app installation token (GITHUB_TOKEN), which GET /user answers with 403 and
        # which comments as BOT; a user's token (a PAT) reads its own account from GET /user and comments as it.
        self.token_user: dict[str, Any] | None = None
        self._next_id = 5000
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05},
                                        daemon=True)

    @property
    def api_url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_port}{self.prefix}"

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

    def open_fork_pull(self, head: str, fork: str, title: str = "a contributor's change", base: str = "main") -> int:
        """A pull request a person opened from branch `head` of their fork `fork` (owner/name) of this repository."""
        with self._lock:
            number = max([*self.pulls, *self.issues, 0]) + 1
            self.pulls.add(number)
            self.pull_data[number] = {"number": number, "title": title, "body": "", "head": head, "base": base,
                                      "state": "open", "fork": fork, "user": HUMAN}
            return number

    def bodies(self, number: int) -> list[str]:
        return [c["body"] for c in sorted(self.comments.values(), key=lambda c: c["id"]) if c["number"] == number]

    def fail(self, status: int, headers: dict[str, str] | None = None, message: str = "", times: int = 1,
             path: str = "") -> None:
        """Answer the next `times` requests (whose path contains `path`) with this error."""
        text = message or {403: "API rate limit exceeded", 429: "You have exceeded a secondary rate limit"}.get(
            status, "Server Error")
        self.failures += [Failure(status, headers or {}, text, path) for _ in range(times)]

    def lose(self, method: str, path: str = "", times: int = 1) -> None:
        """The next `times` `method` requests whose path contains `path` are carried out, but the connection is
        dropped before the answer is sent (a response lost on the way back)."""
        self.losses += [(method, path)] * times

    def close(self, number: int, by: dict[str, Any] = HUMAN) -> None:
        """Someone closes the pull request in the web UI: state, `closed_by` and a `closed` issue event."""
        with self._lock:
            self._set_state(number, "closed", by)

    def reopen(self, number: int, by: dict[str, Any] = HUMAN) -> None:
        """Someone reopens the pull request in the web UI: state and a `reopened` issue event."""
        with self._lock:
            self._set_state(number, "open", by)

    def merge(self, number: int, sha: str, by: dict[str, Any] = HUMAN) -> None:
        """Someone merges the pull request (the test pushes the merge commit `sha` to the remote's base)."""
        with self._lock:
            self._set_state(number, "closed", by)
            self.pull_data[number].update(merged_at=STAMP, merge_commit_sha=sha)

    def _set_state(self, number: int, state: str, actor: dict[str, Any]) -> None:
        pull = self.pull_data[number]
        if pull["state"] == state:
            return
        pull["state"] = state
        pull["closed_by"] = actor if state == "closed" else None
        events = self.events.setdefault(number, [])
        events.append({"id": 880000 + len(events), "event": "closed" if state == "closed" else "reopened",
                       "actor": actor, "commit_id": None, "created_at": STAMP})

    def writes(self) -> list[tuple[str, str]]:
        return [r for r in self.requests if r[0] != "GET"]

    def open_pulls(self) -> list[dict[str, Any]]:
        return [p for _, p in sorted(self.pull_data.items()) if p["state"] == "open"]

    # ------------------------------------------------------------------ wire format

    def _repo_json(self, name: str | None = None) -> dict[str, Any]:
        name = name or self.repo
        owner, short = name.split("/")
        url = f"{self.api_url}/repos/{name}"
        return {
            "id": 1 + int(hashlib.sha1(name.encode()).hexdigest()[:6], 16), "node_id": "R_1", "name": short,
            "full_name": name, "private": False,
            "owner": {"login": owner, "id": 2, "type": "Organization", "url": f"{self.api_url}/users/{owner}"},
            "url": url, "html_url": f"https://github.example/{name}", "default_branch": "main",
            "issues_url": f"{url}/issues{{/number}}", "pulls_url": f"{url}/pulls{{/number}}",
            "issue_comment_url": f"{url}/issues/comments{{/number}}",
        }

    def _issue_json(self, number: int) -> dict[str, Any]:
        url = f"{self.api_url}/repos/{self.repo}/issues/{number}"
        pull = self.pull_data.get(number)
        out: dict[str, Any] = {
            "id": 100 + number, "node_id": f"I_{number}", "number": number, "url": url,
            "repository_url": f"{self.api_url}/repos/{self.repo}", "comments_url": f"{url}/comments",
            "html_url": f"https://github.example/{self.repo}/issues/{number}",
            "title": pull["title"] if pull else f"change {number}", "state": pull["state"] if pull else "open",
            "user": BOT if pull else HUMAN, "created_at": STAMP, "updated_at": STAMP,
            "closed_by": pull.get("closed_by") if pull else None,
            "labels": [self._label_json(n) for n in self.labels.get(number, [])],
            "comments": len([c for c in self.comments.values() if c["number"] == number]),
        }
        if number in self.pulls:
            pull_url = f"{self.api_url}/repos/{self.repo}/pulls/{number}"
            out["pull_request"] = {"url": pull_url, "html_url": f"https://github.example/{self.repo}/pull/{number}",
                                   "diff_url": f"{pull_url}.diff", "patch_url": f"{pull_url}.patch"}
        return out

    def _label_json(self, name: str) -> dict[str, Any]:
        return {"id": abs(hash(name)) % 10**6, "node_id": f"L_{name}", "name": name, "color": "ededed",
                "default": False, "description": None, "url": f"{self.api_url}/repos/{self.repo}/labels/{name}"}

    def _pull_json(self, p: dict[str, Any]) -> dict[str, Any]:
        n = p["number"]
        url = f"{self.api_url}/repos/{self.repo}/pulls/{n}"
        issue = f"{self.api_url}/repos/{self.repo}/issues/{n}"
        owner = self.repo.split("/")[0]
        return {
            "id": 9000 + n, "node_id": f"PR_{n}", "number": n, "state": p["state"], "title": p["title"],
            "body": p["body"], "url": url, "html_url": f"https://github.example/{self.repo}/pull/{n}",
            "issue_url": issue, "comments_url": f"{issue}/comments", "user": p.get("user", BOT), "draft": False,
            "merged": bool(p.get("merged_at")), "merged_at": p.get("merged_at"),
            "merge_commit_sha": p.get("merge_commit_sha"), "created_at": STAMP, "updated_at": STAMP,
            "labels": [self._label_json(name) for name in self.labels.get(n, [])],
            "head": {"ref": p["head"], "label": f"{(p.get('fork') or owner).split('/')[0]}:{p['head']}",
                     "sha": "0" * 40, "repo": self._repo_json(p.get("fork"))},
            "base": {"ref": p["base"], "label": f"{owner}:{p['base']}", "sha": "0" * 40, "repo": self._repo_json()},
        }

    def _comment_json(self, c: dict[str, Any]) -> dict[str, Any]:
        base = f"{self.api_url}/repos/{self.repo}/issues"
        return {
            "id": c["id"], "node_id": f"IC_{c['id']}", "url": f"{base}/comments/{c['id']}",
            "html_url": f"https://github.example/{self.repo}/pull/{c['number']}#issuecomment-{c['id']}",
            "issue_url": f"{base}/{c['number']}", "body": c["body"], "user": c["user"],
            "created_at": STAMP, "updated_at": STAMP, "author_association": "NONE",
        }

    def _release_json(self, name: str, r: dict[str, Any], index: int) -> dict[str, Any]:
        return {
            "id": 700 + index, "node_id": f"RE_{index}", "tag_name": r["tag"], "name": r["tag"],
            "draft": r["draft"], "prerelease": r["prerelease"], "body": "",
            "url": f"{self.api_url}/repos/{name}/releases/{700 + index}",
            "html_url": f"https://github.example/{name}/releases/tag/{r['tag']}",
            "created_at": STAMP, "published_at": STAMP, "author": BOT, "assets": [],
        }

    def _tag_json(self, name: str, tag: str) -> dict[str, Any]:
        sha = hashlib.sha1(f"{name}@{tag}".encode()).hexdigest()
        commit = {"sha": sha, "url": f"{self.api_url}/repos/{name}/commits/{sha}"}
        return {"name": tag, "node_id": f"T_{tag}", "commit": commit,
                "zipball_url": f"{self.api_url}/repos/{name}/zipball/{tag}",
                "tarball_url": f"{self.api_url}/repos/{name}/tarball/{tag}"}

    def _content_json(self, name: str, ref: str, path: str, text: str) -> dict[str, Any]:
        data = text.encode()
        return {"type": "file", "encoding": "base64", "content": base64.b64encode(data).decode(), "size": len(data),
                "name": path.rsplit("/", 1)[-1], "path": path, "sha": hashlib.sha1(data).hexdigest(),
                "url": f"{self.api_url}/repos/{name}/contents/{path}?ref={ref}",
                "html_url": f"https://github.example/{name}/blob/{ref}/{path}", "git_url": None,
                "download_url": None}

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:  # keep the test output clean
                pass

            def _send(self, status: int, payload: Any = None, headers: dict[str, str] | None = None) -> None:
                data = b"" if payload is None else json.dumps(payload).encode()
                if self._lost:
                    self.close_connection = True
                    return
                headers = {"X-RateLimit-Limit": "5000", "X-RateLimit-Remaining": "4999", **(headers or {})}
                self.send_response(status)
                self.send_header("Content-Type", "application/json; charset=utf-8")
                self.send_header("Content-Length", str(len(data)))
                for key, value in headers.items():
                    self.send_header(key, value)
                self.end_headers()
                self.wfile.write(data)

            def _error(self, status: int, message: str, headers: dict[str, str] | None = None, **extra: Any) -> None:
                self._send(status, {"message": message, "documentation_url": "https://docs.github.com/rest",
                                    "status": str(status), **extra}, headers)

            def _json_body(self) -> Any:
                length = int(self.headers.get("Content-Length") or 0)
                return json.loads(self.rfile.read(length) or b"{}")

            _lost = False  # set for a request whose answer is dropped (FakeGitHub.lose)

            def _route(self, method: str) -> None:
                url = urlsplit(self.path)
                with fake._lock:
                    fake.requests.append((method, url.path))
                    failure = next((f for f in fake.failures if f.path in url.path), None)
                    if failure is not None:
                        fake.failures.remove(failure)
                        return self._error(failure.status, failure.message, failure.headers)
                    lost = next((x for x in fake.losses if x[0] == method and x[1] in url.path), None)
                    if lost is not None:
                        fake.losses.remove(lost)
                        self._lost = True  # the request is carried out; the answer never arrives
                auth = self.headers.get("Authorization", "")
                if url.path == fake.prefix + "/user" and method == "GET":
                    if auth not in (f"token {TOKEN}", f"Bearer {TOKEN}"):
                        return self._error(401, "Bad credentials")
                    if fake.token_user is None:
                        return self._error(403, "Resource not accessible by integration")
                    login = fake.token_user["login"]
                    return self._send(200, {**fake.token_user, "url": f"{fake.api_url}/users/{login}"})
                if not url.path.startswith(fake.prefix + "/repos/"):
                    return self._error(404, "Not Found")
                parts = url.path[len(fake.prefix) + len("/repos/"):].split("/")
                name = "/".join(parts[:2])
                public = name in fake.upstream and method == "GET"
                if auth not in (f"token {TOKEN}", f"Bearer {TOKEN}") and not (public and not auth):
                    return self._error(401, "Bad credentials")
                with fake._lock:
                    if name in fake.upstream:
                        return self._upstream(method, name, fake.upstream[name], parts[2:], parse_qs(url.query))
                    if name != fake.repo:
                        return self._error(404, "Not Found")
                    return self._dispatch(method, parts[2:], parse_qs(url.query))

            def _upstream(self, method: str, name: str, up: UpstreamRepo, rest: list[str],
                          query: dict[str, list[str]]) -> None:
                if method != "GET":
                    return self._error(403, "Resource not accessible by integration")
                if not rest:
                    return self._send(200, fake._repo_json(name))
                if rest == ["releases"] and up.raw_releases is not None:
                    self.send_response(200)
                    self.send_header("Content-Type", "application/json; charset=utf-8")
                    self.send_header("Content-Length", str(len(up.raw_releases)))
                    self.end_headers()
                    self.wfile.write(up.raw_releases)
                    return None
                if rest == ["releases"]:
                    items = [fake._release_json(name, r, i) for i, r in enumerate(up.releases)]
                    return self._page(list(reversed(items)), query, f"/repos/{name}/releases")
                if rest == ["tags"]:
                    items = [fake._tag_json(name, t) for t in reversed(up.tags)]
                    return self._page(items, query, f"/repos/{name}/tags")
                if rest[:1] == ["contents"] and len(rest) > 1:
                    path = unquote("/".join(rest[1:]))
                    ref = query.get("ref", ["main"])[0]
                    if (ref, path) in up.raw_contents:  # a malformed answer: `content` is not base64
                        return self._send(200, {**fake._content_json(name, ref, path, ""),
                                                "content": up.raw_contents[(ref, path)]})
                    if (ref, path) not in up.files:
                        return self._error(404, "Not Found")
                    return self._send(200, fake._content_json(name, ref, path, up.files[(ref, path)]))
                return self._error(404, "Not Found")

            def _dispatch(self, method: str, rest: list[str], query: dict[str, list[str]]) -> None:
                if method == "GET" and not rest:
                    return self._send(200, fake._repo_json())
                if rest == ["pulls"]:
                    return self._pulls(method, query)
                if rest[:1] == ["pulls"] and len(rest) == 2 and rest[1].isdigit():
                    pull = fake.pull_data.get(int(rest[1]))
                    if pull is None:
                        return self._error(404, "Not Found")
                    if method == "PATCH":
                        data = self._json_body()
                        pull.update({k: data[k] for k in ("title", "body") if k in data})
                        if data.get("state") in ("open", "closed"):
                            fake._set_state(pull["number"], data["state"], BOT)  # the token's account
                    return self._send(200, fake._pull_json(pull))
                if rest[:1] == ["issues"] and len(rest) >= 2 and rest[1].isdigit():
                    number = int(rest[1])
                    if number not in fake.pulls | fake.issues:
                        return self._error(404, "Not Found")
                    if method == "GET" and len(rest) == 2:
                        return self._send(200, fake._issue_json(number))
                    if rest[2:] == ["events"] and method == "GET":
                        items = [{**e, "node_id": f"CE_{e['id']}", "commit_url": None,
                                  "url": f"{fake.api_url}/repos/{fake.repo}/issues/events/{e['id']}"}
                                 for e in fake.events.get(number, [])]
                        return self._page(items, query, f"/repos/{fake.repo}/issues/{number}/events")
                    if rest[2:] == ["labels"] and method == "POST":
                        data = self._json_body()
                        names = data.get("labels", []) if isinstance(data, dict) else data
                        have = fake.labels.setdefault(number, [])
                        have += [n for n in names if n not in have]
                        return self._send(200, [fake._label_json(n) for n in have])
                    if rest[2:] == ["comments"] and method == "GET":
                        items = [fake._comment_json(c) for c in sorted(fake.comments.values(), key=lambda c: c["id"])
                                 if c["number"] == number]
                        return self._page(items, query, f"/repos/{fake.repo}/issues/{number}/comments")
                    if rest[2:] == ["comments"] and method == "POST":
                        body = self._json_body().get("body", "")
                        if not self._body_ok(body):
                            return None
                        cid = fake._next_id = fake._next_id + 1
                        fake.comments[cid] = {"id": cid, "number": number, "body": body,
                                              "user": fake.token_user or BOT}
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

            def _pulls(self, method: str, query: dict[str, list[str]]) -> None:
                owner = fake.repo.split("/")[0]
                if method == "POST":
                    data = self._json_body()
                    if len(data.get("body") or "") > github.COMMENT_LIMIT:
                        return self._error(422, "Validation Failed", errors=[{"resource": "PullRequest",
                                                                              "code": "custom", "field": "body"}])
                    if any(p["head"] == data["head"] and not p.get("fork") for p in fake.open_pulls()):
                        return self._error(422, "Validation Failed", errors=[{
                            "resource": "PullRequest", "code": "custom",
                            "message": f"A pull request already exists for {owner}:{data['head']}."}])
                    number = max([*fake.pulls, *fake.issues, 0]) + 1
                    fake.pulls.add(number)
                    fake.pull_data[number] = {"number": number, "title": data["title"], "body": data.get("body"),
                                              "head": data["head"], "base": data["base"], "state": "open"}
                    return self._send(201, fake._pull_json(fake.pull_data[number]))
                state = query.get("state", ["open"])[0]
                head = query.get("head", [""])[0]
                base = query.get("base", [""])[0]
                items = [fake._pull_json(p) for _, p in sorted(fake.pull_data.items())
                         if state in ("all", p["state"])
                         and (not head or head == f"{(p.get('fork') or owner).split('/')[0]}:{p['head']}")
                         and (not base or base == p["base"])]
                return self._page(items, query, f"/repos/{fake.repo}/pulls")

            def _body_ok(self, body: str) -> bool:
                if len(body) > github.COMMENT_LIMIT:
                    self._error(422, "Validation Failed", errors=[{
                        "resource": "IssueComment", "code": "custom", "field": "body",
                        "message": f"body is too long (maximum is {github.COMMENT_LIMIT} characters)"}])
                    return False
                return True

            def _page(self, items: list[Any], query: dict[str, list[str]], path: str) -> None:
                per_page = min(int(query.get("per_page", ["30"])[0]), 100)
                page = int(query.get("page", ["1"])[0])
                last = max(1, -(-len(items) // per_page))
                chunk = items[(page - 1) * per_page: page * per_page]
                keep = "".join(f"&{k}={v[0]}" for k, v in sorted(query.items()) if k not in ("per_page", "page"))
                base = f"{fake.api_url}{path}"
                links = []
                if page < last:
                    links.append(f'<{base}?per_page={per_page}{keep}&page={page + 1}>; rel="next"')
                    links.append(f'<{base}?per_page={per_page}{keep}&page={last}>; rel="last"')
                if page > 1:
                    links.append(f'<{base}?per_page={per_page}{keep}&page=1>; rel="first"')
                    links.append(f'<{base}?per_page={per_page}{keep}&page={page - 1}>; rel="prev"')
                headers = {"Link": ", ".join(links)} if links else {}
                self._send(200, chunk, headers)

            def do_GET(self) -> None:
                self._route("GET")

            def do_POST(self) -> None:
                self._route("POST")

            def do_PATCH(self) -> None:
                self._route("PATCH")

            def do_DELETE(self) -> None:
                self._route("DELETE")

        return Handler


def client(fake: FakeGitHub) -> Github:
    """The pull-request comment's client for the fake, without PyGithub's retries and pauses between requests."""
    return github.client(fake.api_url, TOKEN, seconds_between_requests=0, seconds_between_writes=0)
