"""A fake of the Firestore Admin v1 database calls (REST/JSON, as `FirestoreAdminClient` with
`transport="rest"` sends them).

GET  /v1/projects/{project}/databases/{database}                      → Database or 404
POST /v1/projects/{project}/databases?databaseId={id}  body Database  → Operation (409 when it exists)
GET  /v1/projects/{project}/databases/{database}/operations/{op}      → Operation

A created database appears when its operation completes: immediately (`polls_until_done = 0`) or after that
many polls of the operation, so tests exercise the provider's polling.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Any

from tests.support.fake_gcp.server import FakeServer, Request, Response, error

DB = r"/v1/projects/(?P<project>[^/]+)/databases"
DATABASE_TYPE = "type.googleapis.com/google.firestore.admin.v1.Database"
TYPES = {0: "DATABASE_TYPE_UNSPECIFIED", 1: "FIRESTORE_NATIVE", 2: "DATASTORE_MODE"}  # the client may send ints
METADATA_TYPE = "type.googleapis.com/google.firestore.admin.v1.CreateDatabaseMetadata"


@dataclass
class FakeFirestore(FakeServer):
    databases: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict)  # (project, id) → Database
    operations: dict[str, dict[str, Any]] = field(default_factory=dict)  # name → Operation
    pending: dict[str, tuple[int, tuple[str, str], dict[str, Any]]] = field(default_factory=dict)
    polls_until_done: int = 1
    fail_operation: str = ""  # when set, operations finish with this error message instead

    def __post_init__(self) -> None:
        self.route("GET", DB + r"/(?P<database>[^/]+)", self.get_database)
        self.route("POST", DB, self.create_database)
        self.route("GET", DB + r"/(?P<database>[^/]+)/operations/(?P<op>[^/]+)", self.get_operation)

    def add_database(self, project: str, database_id: str = "(default)", location: str = "nam5",
                     type_: str = "DATASTORE_MODE") -> None:
        self.databases[(project, database_id)] = {
            "name": f"projects/{project}/databases/{database_id}", "uid": "0f1e2d3c-uid", "locationId": location,
            "type": type_, "concurrencyMode": "PESSIMISTIC" if type_ == "DATASTORE_MODE" else "OPTIMISTIC",
            "appEngineIntegrationMode": "DISABLED", "createTime": "2024-01-01T00:00:00Z", "etag": "etag-1"}

    def get_database(self, request: Request) -> Response:
        key = (request.match["project"], request.match["database"])
        if key not in self.databases:
            return error(404, f"Project '{key[0]}' or database '{key[1]}' does not exist.")
        return 200, copy.deepcopy(self.databases[key])

    def create_database(self, request: Request) -> Response:
        project = request.match["project"]
        database_id = request.arg("databaseId") or ""
        if not database_id:
            return error(400, "database_id is required")
        key = (project, database_id)
        if key in self.databases or any(k == key for _, k, _ in self.pending.values()):
            return error(409, f"Database '{database_id}' already exists for project {project}.")
        body = request.body or {}
        if not body.get("locationId"):
            return error(400, "location_id is required")
        name = f"projects/{project}/databases/{database_id}/operations/op-{len(self.operations) + 1}"
        operation: dict[str, Any] = {"name": name, "metadata": {"@type": METADATA_TYPE}, "done": False}
        self.operations[name] = operation
        self.pending[name] = (self.polls_until_done, key, body)
        if self.polls_until_done == 0:
            self._finish(name)
        return 200, copy.deepcopy(operation)

    def get_operation(self, request: Request) -> Response:
        name = request.path.removeprefix("/v1/")
        if name not in self.operations:
            return error(404, f"Operation {name} not found")
        if name in self.pending:
            polls, key, body = self.pending[name]
            if polls <= 1:
                self._finish(name)
            else:
                self.pending[name] = (polls - 1, key, body)
        return 200, copy.deepcopy(self.operations[name])

    def _finish(self, name: str) -> None:
        _, (project, database_id), body = self.pending.pop(name)
        operation = self.operations[name]
        operation["done"] = True
        if self.fail_operation:
            operation["error"] = {"code": 9, "message": self.fail_operation}
            return
        type_ = body.get("type", "FIRESTORE_NATIVE")
        self.add_database(project, database_id, body["locationId"], TYPES.get(type_, type_))
        operation["response"] = {"@type": DATABASE_TYPE, **self.databases[(project, database_id)]}
