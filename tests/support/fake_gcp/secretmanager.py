"""Fake Secret Manager API v1 (secrets, versions, access) in the REST/JSON format the GAPIC REST transport uses.

Payloads are base64 in `data` with a CRC32C in `dataCrc32c` (an int64, so a JSON string); a checksum that
does not match is rejected as Google does. Resource names in answers carry the project number, as Google's do.
Enums come back as numbers when the client asks for `$alt=json;enum-encoding=int` (the GAPIC clients do).
"""

from __future__ import annotations

import base64
from dataclasses import dataclass, field
from typing import Any

import google_crc32c

from tests.support.fake_gcp.server import FakeServer, Request, Response, error

P = r"/v1/projects/(?P<project>[^/]+)"
S = P + r"/secrets/(?P<secret>[^/:]+)"
NOW = "2024-01-01T00:00:00.000000Z"
STATES = {"ENABLED": 1, "DISABLED": 2, "DESTROYED": 3}


@dataclass
class SecretManagerFake(FakeServer):
    project_numbers: dict[str, str] = field(default_factory=dict)
    secrets: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict)  # (project id, secret id) → Secret
    versions: dict[tuple[str, str], list[dict[str, Any]]] = field(default_factory=dict)  # with "_data" (bytes)

    def __post_init__(self) -> None:
        self.route("POST", P + "/secrets", self.create_secret)
        self.route("GET", S, self.get_secret)
        self.route("POST", S + ":addVersion", self.add_version_route)
        self.route("GET", S + "/versions", self.list_versions)
        self.route("GET", S + r"/versions/(?P<version>[^/:]+)", self.get_version)
        self.route("GET", S + r"/versions/(?P<version>[^/:]+):access", self.access)

    # ------------------------------------------------------------------ helpers for tests

    def number(self, project: str) -> str:
        return self.project_numbers.setdefault(project, str(100000000000 + len(self.project_numbers)))

    def add_secret(self, project: str, secret_id: str, replication: str = "automatic") -> None:
        rep: dict[str, Any] = ({"automatic": {}} if replication == "automatic"
                               else {"userManaged": {"replicas": [{"location": "us-east1"}]}})
        self._store_secret(project, secret_id, {"replication": rep})

    def add_version(self, project: str, secret_id: str, value: bytes, state: str = "ENABLED") -> None:
        self._store_version(project, secret_id, value, state)

    def value(self, project: str, secret_id: str) -> bytes | None:
        """The latest enabled value (what the tests check was stored)."""
        enabled = [v for v in self.versions.get((project, secret_id), []) if v["state"] == "ENABLED"]
        return enabled[-1]["_data"] if enabled else None

    # ------------------------------------------------------------------ routes

    def _key(self, req: Request) -> tuple[str, str]:
        """(project id, secret id) whether the path uses the project id or its number."""
        project = req.match["project"]
        for pid, number in self.project_numbers.items():
            if number == project:
                project = pid
        return project, req.match["secret"]

    def _name(self, project: str, secret_id: str) -> str:
        return f"projects/{self.number(project)}/secrets/{secret_id}"

    @staticmethod
    def _enums(req: Request, message: dict[str, Any]) -> dict[str, Any]:
        if "enum-encoding=int" in (req.arg("$alt") or "") and "state" in message:
            return {**message, "state": STATES[message["state"]]}
        return message

    @staticmethod
    def _public(version: dict[str, Any]) -> dict[str, Any]:
        return {k: v for k, v in version.items() if not k.startswith("_")}

    def _store_secret(self, project: str, secret_id: str, body: dict[str, Any]) -> dict[str, Any]:
        secret = {"name": self._name(project, secret_id), "replication": body["replication"], "createTime": NOW,
                  "etag": '"1"', **({"labels": body["labels"]} if body.get("labels") else {})}
        self.secrets[(project, secret_id)] = secret
        self.versions[(project, secret_id)] = []
        return secret

    def _store_version(self, project: str, secret_id: str, data: bytes, state: str,
                       checksum: bool = False) -> dict[str, Any]:
        versions = self.versions[(project, secret_id)]
        version = {"name": f"{self._name(project, secret_id)}/versions/{len(versions) + 1}", "createTime": NOW,
                   "state": state, "replicationStatus": {"automatic": {}}, "etag": '"1"',
                   "clientSpecifiedPayloadChecksum": checksum, "_data": data}
        versions.append(version)
        return version

    def create_secret(self, req: Request) -> Response:
        project, secret_id, body = req.match["project"], req.arg("secretId") or "", req.body or {}
        if not secret_id:
            return error(400, "Secret ID is required.")
        if "replication" not in body or not ({"automatic", "userManaged"} & set(body["replication"])):
            return error(400, "Secret.replication is required.")
        if (project, secret_id) in self.secrets:
            return error(409, f"Secret [{self._name(project, secret_id)}] already exists.")
        return 200, self._store_secret(project, secret_id, body)

    def get_secret(self, req: Request) -> Response:
        key = self._key(req)
        if key not in self.secrets:
            return error(404, f"Secret [{self._name(*key)}] not found.")
        return 200, self.secrets[key]

    def add_version_route(self, req: Request) -> Response:
        key = self._key(req)
        if key not in self.secrets:
            return error(404, f"Secret [{self._name(*key)}] not found.")
        payload = (req.body or {}).get("payload", {})
        data = base64.b64decode(payload.get("data", ""))
        if "dataCrc32c" in payload and int(payload["dataCrc32c"]) != google_crc32c.value(data):
            return error(400, "Checksum mismatch: the data_crc32c field does not match the payload.")
        version = self._store_version(*key, data, "ENABLED", checksum="dataCrc32c" in payload)
        return 200, self._enums(req, self._public(version))

    def list_versions(self, req: Request) -> Response:
        key = self._key(req)
        if key not in self.secrets:
            return error(404, f"Secret [{self._name(*key)}] not found.")
        versions = list(reversed(self.versions[key]))  # newest first, as Google lists them
        wanted = (req.arg("filter") or "").removeprefix("state:").upper()
        if wanted:
            versions = [v for v in versions if v["state"] == wanted]
        body: dict[str, Any] = {"totalSize": len(versions)}
        if versions:
            body["versions"] = [self._enums(req, self._public(v)) for v in versions]
        return 200, body

    def _version(self, req: Request) -> dict[str, Any] | Response:
        key = self._key(req)
        versions = self.versions.get(key, [])
        wanted = req.match["version"]
        if wanted == "latest":
            found = [v for v in versions if v["state"] != "DESTROYED"][-1:]
        else:
            found = [v for v in versions if v["name"].rsplit("/", 1)[1] == wanted]
        if key not in self.secrets or not found:
            return error(404, f"Secret Version [{self._name(*key)}/versions/{wanted}] not found or has no versions.")
        return found[0]

    def get_version(self, req: Request) -> Response:
        version = self._version(req)
        if isinstance(version, tuple):
            return version
        return 200, self._enums(req, self._public(version))

    def access(self, req: Request) -> Response:
        version = self._version(req)
        if isinstance(version, tuple):
            return version
        if version["state"] != "ENABLED":
            status, body = error(400, f"Secret Version [{version['name']}] is in {version['state']} state.")
            body["error"]["status"] = "FAILED_PRECONDITION"
            return status, body
        data = version["_data"]
        return 200, {"name": version["name"], "payload": {"data": base64.b64encode(data).decode(),
                                                          "dataCrc32c": str(google_crc32c.value(data))}}
