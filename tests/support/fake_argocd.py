"""A small fake Argo CD API server: `GET /api/v1/applications/<name>` as Argo CD's grpc-gateway answers it.

Applications carry the fields the bump bot's staged rollout reads (status.sync.status and .revision,
status.health.status, status.operationState.phase, .operation.sync.revision and .syncResult.revision) in Argo CD's
JSON shape (schemas/crds/argoproj.io/application_v1alpha1.json) and its combinations: status.sync.revision is the
revision compared against (the branch head, also while OutOfSync), the operation's revisions are what the last sync
applied (or is applying, while Running); an Application never synced has no operationState. Errors carry the
gateway's body (`{"error", "code", "message"}`, gRPC codes: 5 NotFound, 16 Unauthenticated). Requests need
`Authorization: Bearer <TOKEN>`; every request is recorded with the Authorization header it carried.
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import unquote, urlsplit

TOKEN = "argocd-test-token"
STAMP = "2026-01-02T03:04:05Z"


@dataclass
class App:
    sync: str = "Synced"  # Synced, OutOfSync, Unknown
    revision: str | None = None  # status.sync.revision: what Argo CD compared against (the branch head)
    health: str = "Healthy"  # Healthy, Progressing, Degraded, Suspended, Missing, Unknown
    applied: str | None = None  # the last sync operation's revision (None: never synced, no operationState)
    phase: str = "Succeeded"  # that operation's phase: Running, Succeeded, Failed, Error, Terminating


class FakeArgoCd:
    def __init__(self, namespace: str = "argocd", project: str = "cave") -> None:
        self.namespace = namespace
        self.project = project
        self.apps: dict[str, App] = {}
        self.requests: list[tuple[str, str, str]] = []  # (method, path, Authorization header)
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05},
                                        daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_port}"

    def start(self) -> FakeArgoCd:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def set(self, name: str, sync: str = "Synced", revision: str | None = None, health: str = "Healthy",
            applied: str | None = None, phase: str = "Succeeded") -> None:
        """An Application's state. `applied` defaults to `revision` when Synced (what Argo CD compared is what its
        last sync applied); OutOfSync leaves it as given (a new head compared, an older revision deployed)."""
        if applied is None and sync == "Synced":
            applied = revision
        with self._lock:
            self.apps[name] = App(sync, revision, health, applied, phase)

    def _app_json(self, name: str, app: App) -> dict[str, Any]:
        status: dict[str, Any] = {
            "sync": {"status": app.sync, "comparedTo": {"source": {"repoURL": "https://github.example/cave/gitops",
                                                                   "path": f"overlays/{name}",
                                                                   "targetRevision": "main"}}},
            "health": {"status": app.health},
            "reconciledAt": STAMP,
            "sourceType": "Kustomize",
        }
        if app.revision is not None:
            status["sync"]["revision"] = app.revision
        if app.applied is not None:
            done = app.phase not in ("Running", "Terminating")
            messages = {"Succeeded": "successfully synced (all tasks run)", "Running": "waiting for healthy state",
                        "Failed": "one or more objects failed to apply", "Error": "ComparisonError: rpc error",
                        "Terminating": "terminating"}
            status["operationState"] = {
                "phase": app.phase, "message": messages.get(app.phase, ""), "startedAt": STAMP,
                **({"finishedAt": STAMP} if done else {}),
                "operation": {"sync": {"revision": app.applied}, "initiatedBy": {"automated": True}},
                "syncResult": {"revision": app.applied, "resources": [],
                               "source": {"repoURL": "https://github.example/cave/gitops", "path": f"overlays/{name}",
                                          "targetRevision": "main"}},
            }
            status["history"] = [{"id": 1, "revision": app.applied, "deployedAt": STAMP,
                                  "deployStartedAt": STAMP}] if app.phase == "Succeeded" else []
        return {
            "metadata": {"name": name, "namespace": self.namespace, "uid": f"uid-{name}",
                         "resourceVersion": "1234", "creationTimestamp": STAMP},
            "spec": {"project": self.project, "destination": {"name": "in-cluster", "namespace": "default"},
                     "source": {"repoURL": "https://github.example/cave/gitops", "path": f"overlays/{name}",
                                "targetRevision": "main"}},
            "status": status,
        }

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:
                pass

            def _send(self, status: int, payload: Any) -> None:
                data = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def _error(self, status: int, code: int, message: str) -> None:
                self._send(status, {"error": message, "code": code, "message": message})

            def do_GET(self) -> None:
                path = urlsplit(self.path).path
                auth = self.headers.get("Authorization", "")
                with fake._lock:
                    fake.requests.append(("GET", path, auth))
                    if auth != f"Bearer {TOKEN}":
                        return self._error(401, 16, "invalid session: token signature is invalid")
                    prefix = "/api/v1/applications/"
                    if not path.startswith(prefix) or "/" in path[len(prefix):]:
                        return self._error(404, 5, "Not Found")
                    name = unquote(path[len(prefix):])
                    app = fake.apps.get(name)
                    if app is None:
                        return self._error(404, 5, f'applications.argoproj.io "{name}" not found')
                    return self._send(200, fake._app_json(name, app))

        return Handler
