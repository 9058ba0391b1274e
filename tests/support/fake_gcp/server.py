"""A tiny HTTP server framework for fake Google REST APIs (one server per API family).

Each fake registers routes (method + regex over the path) whose handlers get a `Request` and return
`(status, json_body)`. The server
- answers OAuth2 token refreshes on POST /token (a service-account key file's `token_uri`, see
  `write_credentials`) and rejects API calls without a bearer token or self-signed JWT (401, as Google does);
- records every API call (`calls`, `writes()`), so tests can assert that a plan made no write call;
- can fail the next matching calls with a Google JSON error (`fail(...)`).
Errors use Google's JSON error body: {"error": {"code", "message", "status", "errors": [...]}}.
"""

from __future__ import annotations

import base64
import json
import re
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

TOKEN = "fake-access-token"
STATUS_NAMES = {400: "INVALID_ARGUMENT", 401: "UNAUTHENTICATED", 403: "PERMISSION_DENIED", 404: "NOT_FOUND",
                409: "ALREADY_EXISTS", 412: "FAILED_PRECONDITION", 429: "RESOURCE_EXHAUSTED", 500: "INTERNAL",
                503: "UNAVAILABLE"}
WRITE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
READ_VERBS = (":getIamPolicy", ":testIamPermissions")


@dataclass
class Request:
    method: str
    path: str  # unquoted
    query: dict[str, list[str]]
    body: Any  # parsed JSON (or raw bytes if not JSON), None if empty
    headers: dict[str, str]
    match: re.Match[str]

    def arg(self, name: str, default: str | None = None) -> str | None:
        values = self.query.get(name)
        return values[0] if values else default


Response = tuple[int, Any]
Handler = Callable[[Request], Response]


def authorized(header: str) -> bool:
    """A bearer token from /token, or a self-signed JWT (what google-auth sends service-account calls of the
    GAPIC clients) whose issuer is a service account."""
    scheme, _, token = header.partition(" ")
    if scheme != "Bearer" or not token:
        return False
    if token == TOKEN:
        return True
    parts = token.split(".")
    if len(parts) != 3:
        return False
    try:
        claims = json.loads(base64.urlsafe_b64decode(parts[1] + "=" * (-len(parts[1]) % 4)))
    except ValueError:
        return False
    return str(claims.get("iss", "")).endswith(".iam.gserviceaccount.com")


def error(status: int, message: str, reason: str = "") -> Response:
    """Google's JSON error body."""
    return status, {"error": {"code": status, "message": message, "status": STATUS_NAMES.get(status, "UNKNOWN"),
                              "errors": [{"message": message, "domain": "global",
                                          "reason": reason or STATUS_NAMES.get(status, "unknown").lower()}]}}


@dataclass
class Failure:
    method: str
    pattern: re.Pattern[str]
    status: int
    message: str
    times: int


@dataclass
class Call:
    method: str
    path: str
    body: Any


@dataclass
class FakeServer:
    """Base class: subclasses register routes in `__post_init__` with `self.route(...)`."""

    routes: list[tuple[str, re.Pattern[str], Handler]] = field(default_factory=list)
    calls: list[Call] = field(default_factory=list)
    failures: list[Failure] = field(default_factory=list)
    lock: threading.RLock = field(default_factory=threading.RLock)
    _server: ThreadingHTTPServer | None = None
    _thread: threading.Thread | None = None

    def route(self, method: str, pattern: str, handler: Handler) -> None:
        self.routes.append((method, re.compile(pattern + r"\Z"), handler))

    def fail(self, method: str, pattern: str, status: int = 500, message: str = "backend error",
             times: int = 1) -> None:
        """Answer the next `times` calls matching `method` and the path regex `pattern` with an error."""
        with self.lock:
            self.failures.append(Failure(method, re.compile(pattern), status, message, times))

    def writes(self) -> list[Call]:
        """Calls that change state (a POST to a read verb such as `:getIamPolicy` is a read)."""
        return [c for c in self.calls if c.method in WRITE_METHODS and not c.path.endswith(READ_VERBS)]

    # ------------------------------------------------------------------ serving

    @property
    def url(self) -> str:
        assert self._server is not None, "server not started"
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def start(self) -> FakeServer:
        fake = self

        class RequestHandler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:
                pass

            def _handle(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length) if length else b""
                status, body = fake.dispatch(self.command, self.path, raw, dict(self.headers.items()))
                data = b"" if body is None else json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json; charset=UTF-8")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _handle

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), RequestHandler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05},
                                        daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self) -> FakeServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def dispatch(self, method: str, target: str, raw: bytes, headers: dict[str, str]) -> Response:
        parts = urlsplit(target)
        path = unquote(parts.path)
        if method == "POST" and path == "/token":
            return 200, {"access_token": TOKEN, "expires_in": 3600, "token_type": "Bearer"}
        lowered = {k.lower(): v for k, v in headers.items()}
        if not authorized(lowered.get("authorization", "")):
            return error(401, "Request is missing required authentication credential.")
        body: Any = None
        if raw:
            try:
                body = json.loads(raw)
            except ValueError:
                body = raw
        with self.lock:
            self.calls.append(Call(method, path, body))
            for failure in self.failures:
                if failure.method == method and failure.pattern.search(path) and failure.times > 0:
                    failure.times -= 1
                    return error(failure.status, failure.message)
        for route_method, pattern, handler in self.routes:
            if route_method != method:
                continue
            m = pattern.match(path)
            if m:
                with self.lock:
                    return handler(Request(method, path, parse_qs(parts.query), body, lowered, m))
        return error(404, f"fake: no route for {method} {path}")


def write_credentials(directory: Path, token_url: str) -> Path:
    """A service-account ADC file (fresh RSA key) whose token requests go to `token_url` (a FakeServer's
    /token): google-auth signs a JWT and exchanges it there, exactly as it does with Google."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                            serialization.NoEncryption()).decode()
    path = directory / "adc.json"
    path.write_text(json.dumps({
        "type": "service_account", "project_id": "fake-project", "private_key_id": "fake-key-id",
        "private_key": pem, "client_email": "bootstrap@fake-project.iam.gserviceaccount.com",
        "client_id": "1234567890", "token_uri": token_url,
    }))
    return path
