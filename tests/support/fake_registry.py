"""A container registry on 127.0.0.1 speaking both APIs compiler/bot/images.py asks: Docker Hub's tag API
(`GET /v2/repositories/<org>/<image>/tags/<tag>`, JSON) and the OCI distribution API
(`HEAD /v2/<name>/manifests/<tag>`, with the anonymous bearer-token handshake public registries use)."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

TOKEN = "anonymous-pull"


class FakeRegistry:
    """`tags` holds `<name>:<tag>` with name as the API sees it: `caveconnectome/annotationengine` (Docker Hub)
    or `cave-demo-data/middle_auth_proxy` (OCI, the repository path after the host)."""

    def __init__(self) -> None:
        self.tags: set[str] = set()
        self.requests: list[str] = []  # "GET /v2/...", "HEAD /v2/..."
        registry = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:
                pass

            def _reply(self, status: int, body: bytes = b"", headers: dict[str, str] | None = None) -> None:
                self.send_response(status)
                for key, value in {"Content-Length": str(len(body)), **(headers or {})}.items():
                    self.send_header(key, value)
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(body)

            def do_GET(self) -> None:
                registry.requests.append(f"GET {self.path}")
                if self.path.startswith("/token?"):
                    return self._reply(200, json.dumps({"token": TOKEN}).encode(), {"Content-Type": "application/json"})
                parts = self.path.split("/")  # ['', 'v2', 'repositories', org, image, 'tags', tag]
                if len(parts) != 7 or parts[1:3] != ["v2", "repositories"] or parts[5] != "tags":
                    return self._reply(404, b'{"message": "not found"}')
                found = f"{parts[3]}/{parts[4]}:{parts[6]}" in registry.tags
                body = {"name": parts[6]} if found else {"message": "object not found"}
                return self._reply(200 if found else 404, json.dumps(body).encode(),
                                   {"Content-Type": "application/json"})

            def do_HEAD(self) -> None:
                registry.requests.append(f"HEAD {self.path}")
                if self.headers.get("Authorization", "") != f"Bearer {TOKEN}":
                    realm = f"{registry.url}/token"
                    return self._reply(401, headers={"WWW-Authenticate": f'Bearer realm="{realm}",service="fake"'})
                name, sep, tag = self.path.removeprefix("/v2/").rpartition("/manifests/")
                found = bool(sep) and f"{name}:{tag}" in registry.tags
                return self._reply(200 if found else 404, headers={
                    "Content-Type": "application/vnd.oci.image.index.v1+json"} if found else None)

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_port}"

    def push(self, name: str, *tags: str) -> None:
        self.tags |= {f"{name}:{tag}" for tag in tags}

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
