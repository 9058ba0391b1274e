"""Fake Cloud SQL Admin API v1 (instances, databases, users, operations) in its REST/JSON wire format.

Inserts answer with a `sql#operation` in status PENDING that reports DONE on the first operations.get
(or DONE at once with `polls=0`). A PostgreSQL instance starts with the `postgres` database and user, as
Cloud SQL's do. Passwords are kept (tests check them) but never returned, as Google does.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from typing import Any

from tests.support.fake_gcp.server import FakeServer, Request, Response, error

P = r"/v1/projects/(?P<project>[^/]+)"
NOW = "2024-01-01T00:00:00.000Z"


@dataclass
class SqlAdminFake(FakeServer):
    instances: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict)
    databases: dict[tuple[str, str], dict[str, dict[str, Any]]] = field(default_factory=dict)
    users: dict[tuple[str, str], dict[str, dict[str, Any]]] = field(default_factory=dict)
    passwords: dict[tuple[str, str, str], str] = field(default_factory=dict)  # (project, instance, user) → password
    operations: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict)
    polls: int = 1  # operations.get calls that still answer RUNNING before DONE (0: inserts answer DONE)
    missing_instance_status: int = 404  # Cloud SQL sometimes answers 403 notAuthorized for a missing instance
    _pending: dict[tuple[str, str], int] = field(default_factory=dict)
    _operation_errors: list[tuple[str, str]] = field(default_factory=list)
    _ids: itertools.count[int] = field(default_factory=lambda: itertools.count(1))

    def __post_init__(self) -> None:
        self.route("GET", P + "/instances", self.list_instances)
        self.route("POST", P + "/instances", self.insert_instance)
        self.route("GET", P + r"/instances/(?P<instance>[^/]+)", self.get_instance)
        self.route("GET", P + r"/instances/(?P<instance>[^/]+)/databases", self.list_databases)
        self.route("POST", P + r"/instances/(?P<instance>[^/]+)/databases", self.insert_database)
        self.route("GET", P + r"/instances/(?P<instance>[^/]+)/databases/(?P<database>[^/]+)", self.get_database)
        self.route("GET", P + r"/instances/(?P<instance>[^/]+)/users", self.list_users)
        self.route("POST", P + r"/instances/(?P<instance>[^/]+)/users", self.insert_user)
        self.route("GET", P + r"/operations/(?P<operation>[^/]+)", self.get_operation)

    # ------------------------------------------------------------------ helpers for tests

    def fail_next_operation(self, code: str, message: str) -> None:
        """The next insert is accepted but its operation ends DONE with this error (nothing is created)."""
        self._operation_errors.append((code, message))

    def add_instance(self, project: str, name: str, region: str = "us-east1", database_version: str = "POSTGRES_13",
                     tier: str = "db-custom-4-16384") -> None:
        """An instance that already exists (e.g. made by hand)."""
        self._store_instance(project, {"name": name, "region": region, "databaseVersion": database_version,
                                       "settings": {"tier": tier}}, "RUNNABLE")

    # ------------------------------------------------------------------ routes

    def _missing(self, instance: str) -> Response:
        if self.missing_instance_status == 403:
            return error(403, "The client is not authorized to make this request.", "notAuthorized")
        return error(404, "The Cloud SQL instance does not exist.", "instanceDoesNotExist")

    def list_instances(self, req: Request) -> Response:
        project = req.match["project"]
        items = [i for (p, _), i in sorted(self.instances.items()) if p == project]
        return 200, {"kind": "sql#instancesList", "items": items} if items else {"kind": "sql#instancesList"}

    def get_instance(self, req: Request) -> Response:
        key = (req.match["project"], req.match["instance"])
        if key not in self.instances:
            return self._missing(key[1])
        return 200, self.instances[key]

    def insert_instance(self, req: Request) -> Response:
        project, body = req.match["project"], req.body or {}
        for required in ("name", "region", "databaseVersion"):
            if not body.get(required):
                return error(400, f"Invalid request: instance {required} is required.", "invalid")
        if not body.get("settings", {}).get("tier"):
            return error(400, "Invalid request: Invalid Tier (). Only custom or shared-core instance Billing Tier "
                              "type allowed for PostgreSQL Database Version.", "invalid")
        if not body.get("rootPassword"):
            return error(400, "Invalid request: rootPassword is required for PostgreSQL instances.", "invalid")
        if (project, body["name"]) in self.instances:
            return error(409, "The Cloud SQL instance already exists. When you delete an instance, you cannot "
                              "reuse the name of the deleted instance until one week from the deletion date.",
                         "instanceAlreadyExists")
        return self._operation(project, body["name"], "CREATE",
                               lambda: self._store_instance(project, body, "PENDING_CREATE"))

    def _store_instance(self, project: str, body: dict[str, Any], state: str) -> None:
        name = body["name"]
        settings = {"kind": "sql#settings", "settingsVersion": "1", "pricingPlan": "PER_USE",
                    "availabilityType": "ZONAL", "dataDiskType": "PD_SSD", "dataDiskSizeGb": "10",
                    **body.get("settings", {})}
        instance = {
            "kind": "sql#instance", "state": state, "databaseVersion": body["databaseVersion"],
            "settings": settings, "etag": "e1", "project": project, "name": name, "region": body["region"],
            "gceZone": body["region"] + "-b", "backendType": "SECOND_GEN", "instanceType": "CLOUD_SQL_INSTANCE",
            "connectionName": f"{project}:{body['region']}:{name}",
            "serviceAccountEmailAddress": f"p123-{name}@gcp-sa-cloud-sql.iam.gserviceaccount.com",
            "selfLink": f"https://sqladmin.googleapis.com/v1/projects/{project}/instances/{name}",
            "ipAddresses": [{"type": "PRIMARY", "ipAddress": "203.0.113.7"}],
            "createTime": NOW,
        }
        self.instances[(project, name)] = instance
        self.databases[(project, name)] = {"postgres": self._database(project, name, "postgres")}
        self.users[(project, name)] = {"postgres": self._user(project, name, "postgres")}
        if "rootPassword" in body:
            self.passwords[(project, name, "postgres")] = body["rootPassword"]

    @staticmethod
    def _database(project: str, instance: str, name: str) -> dict[str, Any]:
        return {"kind": "sql#database", "charset": "UTF8", "collation": "en_US.UTF8", "etag": "e1", "name": name,
                "instance": instance, "project": project,
                "selfLink": f"https://sqladmin.googleapis.com/v1/projects/{project}/instances/{instance}"
                            f"/databases/{name}"}

    @staticmethod
    def _user(project: str, instance: str, name: str) -> dict[str, Any]:
        return {"kind": "sql#user", "etag": "e1", "name": name, "host": "", "instance": instance,
                "project": project, "type": "BUILT_IN"}

    def _list(self, req: Request, kind: str, table: dict[tuple[str, str], dict[str, dict[str, Any]]]) -> Response:
        key = (req.match["project"], req.match["instance"])
        if key not in self.instances:
            return self._missing(key[1])
        return 200, {"kind": kind, "items": [item for _, item in sorted(table[key].items())]}

    def _insert_error(self, req: Request, what: str) -> Response | None:
        """What Cloud SQL answers an insert of a database or user on a missing instance or without a name."""
        if (req.match["project"], req.match["instance"]) not in self.instances:
            return self._missing(req.match["instance"])
        if not (req.body or {}).get("name"):
            return error(400, f"Invalid request: {what} name is required.", "invalid")
        return None

    def list_databases(self, req: Request) -> Response:
        return self._list(req, "sql#databasesList", self.databases)

    def get_database(self, req: Request) -> Response:
        key = (req.match["project"], req.match["instance"])
        if key not in self.instances:
            return self._missing(key[1])
        database = self.databases[key].get(req.match["database"])
        if database is None:
            return error(404, "Not Found", "notFound")
        return 200, database

    def insert_database(self, req: Request) -> Response:
        invalid = self._insert_error(req, "database")
        if invalid:
            return invalid
        project, instance, name = req.match["project"], req.match["instance"], req.body["name"]
        key = (project, instance)
        if name in self.databases[key]:
            return error(400, f'Invalid request: failed to create database {name}. Detail: pq: database "{name}" '
                              "already exists.", "invalid")
        return self._operation(project, instance, "CREATE_DATABASE",
                               lambda: self.databases[key].__setitem__(name, self._database(project, instance, name)))

    def list_users(self, req: Request) -> Response:
        return self._list(req, "sql#usersList", self.users)

    def insert_user(self, req: Request) -> Response:
        invalid = self._insert_error(req, "user")
        if invalid:
            return invalid
        project, instance, body = req.match["project"], req.match["instance"], req.body
        key, name = (project, instance), body["name"]

        def apply() -> None:
            self.users[key][name] = self._user(project, instance, name)
            self.passwords[(project, instance, name)] = body.get("password", "")

        if name in self.users[key]:  # Cloud SQL reports this in the operation, as a SQL error
            self._operation_errors.insert(0, ("ERROR_RDBMS", f'pq: role "{name}" already exists'))
        return self._operation(project, instance, "CREATE_USER", apply)

    def _operation(self, project: str, target: str, kind: str, apply: Any) -> Response:
        name = f"op-{next(self._ids):04d}"
        operation: dict[str, Any] = {
            "kind": "sql#operation", "name": name, "operationType": kind, "status": "PENDING",
            "targetId": target, "targetProject": project, "insertTime": NOW,
            "user": "bootstrap@fake-project.iam.gserviceaccount.com",
            "targetLink": f"https://sqladmin.googleapis.com/v1/projects/{project}/instances/{target}",
            "selfLink": f"https://sqladmin.googleapis.com/v1/projects/{project}/operations/{name}",
        }
        if self._operation_errors:
            code, message = self._operation_errors.pop(0)
            operation["error"] = {"kind": "sql#operationErrors",
                                  "errors": [{"kind": "sql#operationError", "code": code, "message": message}]}
        else:
            apply()
        self.operations[(project, name)] = operation
        self._pending[(project, name)] = self.polls
        if self.polls == 0:
            self._finish(project, name)
        return 200, {k: v for k, v in operation.items() if k != "error" or self.polls == 0}

    def _finish(self, project: str, name: str) -> None:
        operation = self.operations[(project, name)]
        operation["status"] = "DONE"
        operation["endTime"] = NOW
        target = (project, operation["targetId"])
        if operation["operationType"] == "CREATE" and target in self.instances:
            self.instances[target]["state"] = "RUNNABLE"

    def get_operation(self, req: Request) -> Response:
        key = (req.match["project"], req.match["operation"])
        if key not in self.operations:
            return error(404, f"The Cloud SQL operation {key[1]} does not exist.", "operationDoesNotExist")
        if self._pending[key] > 1:
            self._pending[key] -= 1
            self.operations[key]["status"] = "RUNNING"
        elif self.operations[key]["status"] != "DONE":
            self._finish(*key)
        return 200, self.operations[key]
