"""Argo CD's API, read by the bump bot's staged rollout: an Application's sync status, last sync operation (its
phase and the revision it applied) and health.

`GET <api_url>/api/v1/applications/<name>` with `Authorization: Bearer <token>` (an Argo CD account or project
token with `applications, get`; the bot reads it from $ARGOCD_TOKEN and never prints it). Rate limits, 5xx and
network errors are retried like GitHub's (compiler.github.Retry).
"""

from __future__ import annotations

import json
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass, field
from typing import Any

from compiler.errors import UserError
from compiler.github import Retry, reason

TIMEOUT_S = 20.0
TOKEN_ENV = "ARGOCD_TOKEN"


@dataclass(frozen=True)
class AppState:
    """What Argo CD reports for an Application (the Application CRD's status):

    - `sync`: status.sync.status (Synced, OutOfSync, Unknown), the comparison of the cluster with `compared`;
    - `compared`: status.sync.revision, the revision Argo CD compared against (the target branch's head: main's
      newest commit even while OutOfSync, so it says nothing about what is deployed);
    - `phase`: status.operationState.phase of the last sync operation (Running, Succeeded, Failed, Error,
      Terminating; None when Argo CD never synced it);
    - `applied`: the revision that operation synced (status.operationState.syncResult.revision, else the
      operation's own operation.sync.revision): what the cluster runs once the phase is Succeeded;
    - `health`: status.health.status (Healthy, Progressing, Degraded, Suspended, Missing, Unknown)."""

    name: str
    sync: str
    compared: str | None
    phase: str | None
    applied: str | None
    health: str

    @property
    def finished(self) -> bool:
        """The last sync operation ended (it is not Running or Terminating)."""
        return self.phase in ("Succeeded", "Failed", "Error")

    @property
    def failed(self) -> bool:
        return self.phase in ("Failed", "Error")


@dataclass
class ArgoCd:
    url: str
    token: str = field(repr=False)
    retry: Retry = field(default_factory=Retry)

    def application(self, name: str) -> AppState | None:
        """The Application's state; None when Argo CD has no Application of that name."""
        if not self.token:
            raise UserError(f"{TOKEN_ENV} is not set: gitops.yaml's argocd.api_url ({self.url}) makes the bot read "
                            "Application health before proposing the next stage (an Argo CD token allowed "
                            "`applications, get`)")
        url = f"{self.url}/api/v1/applications/{urllib.parse.quote(name, safe='')}"
        doing = f"Argo CD: reading Application {name}"
        for attempt in range(self.retry.attempts):
            request = urllib.request.Request(url, headers={"Accept": "application/json", "User-Agent": "cave-gitops",
                                                           "Authorization": f"Bearer {self.token}"})
            try:
                with urllib.request.urlopen(request, timeout=TIMEOUT_S) as response:
                    data = json.loads(response.read())
                return _state(name, data, doing)
            except urllib.error.HTTPError as err:
                headers = {k.lower(): v for k, v in err.headers.items()}
                status, text = err.code, err.read()[:300].decode("utf-8", "replace")
                err.close()
                if status == 404:
                    return None
                if status in (401, 403):
                    raise UserError(f"{doing}: HTTP {status} ({_message(text)}); check {TOKEN_ENV} (a token "
                                    "allowed `applications, get` in the project) and argocd.api_url") from None
                wait = self.retry.wait(status, headers, attempt)
                if wait is None or attempt == self.retry.attempts - 1:
                    raise UserError(f"{doing}: HTTP {status} from {self.url} ({_message(text)})") from None
            except ValueError as err:
                raise UserError(f"{doing}: the answer is not JSON ({err}); is argocd.api_url ({self.url}) "
                                "Argo CD's API server?") from None
            except OSError as err:
                wait = min(float(2**attempt), self.retry.max_wait)
                if attempt == self.retry.attempts - 1:
                    raise UserError(f"{doing}: cannot reach {self.url}: {reason(err)} (check argocd.api_url and "
                                    "the network)") from None
            self.retry.sleep(wait)
        raise UserError(f"{doing}: no answer from {self.url} (run again later)")


def _message(text: str) -> str:
    try:
        data = json.loads(text)
    except ValueError:
        return " ".join(text.split())[:200] or "no message"
    message = data.get("message") or data.get("error") if isinstance(data, dict) else None
    return str(message)[:200] if message else "no message"


def _dict(value: object) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _state(name: str, data: object, doing: str) -> AppState:
    status = _dict(data).get("status")
    if not isinstance(status, dict):
        raise UserError(f"{doing}: the answer has no status (is argocd.api_url Argo CD's API server?)")
    sync, health = _dict(status.get("sync")), _dict(status.get("health"))
    operation = _dict(status.get("operationState"))
    compared = sync.get("revision")
    applied = _dict(operation.get("syncResult")).get("revision") or _dict(
        _dict(operation.get("operation")).get("sync")).get("revision")
    phase = operation.get("phase")
    return AppState(name, str(sync.get("status") or "Unknown"), compared if isinstance(compared, str) else None,
                    phase if isinstance(phase, str) and phase else None,
                    applied if isinstance(applied, str) and applied else None, str(health.get("status") or "Unknown"))
