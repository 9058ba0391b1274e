"""A fake of the Cloud Resource Manager v3 project IAM policy calls (REST/JSON, as `ProjectsClient` with
`transport="rest"` sends them).

GET  /v3/projects/{project}               the project (its name carries the project number)
POST /v3/projects/{project}:getIamPolicy  body {"options": {"requestedPolicyVersion": 3}}
POST /v3/projects/{project}:setIamPolicy  body {"policy": {"version", "etag", "bindings": [...]}}

Policies carry etags (base64, as in the JSON wire format); a write with a stale etag answers 409 ABORTED, as
Google does. `race_next_set` makes another writer change the policy between the next read and write.
getIamPolicy is a POST that does not write, so `writes()` leaves it out.
"""

from __future__ import annotations

import base64
import copy
from dataclasses import dataclass, field
from typing import Any

from tests.support.fake_gcp.server import Call, FakeServer, Request, Response, error

PROJECT = r"/v3/projects/(?P<project>[^/:]+)"


@dataclass
class FakeResourceManager(FakeServer):
    policies: dict[str, dict[str, Any]] = field(default_factory=dict)  # project id → policy JSON
    etag_counter: int = 0
    race_next_set: bool = False

    def __post_init__(self) -> None:
        self.route("GET", PROJECT, self.get_project)
        self.route("POST", PROJECT + ":getIamPolicy", self.get_policy)
        self.route("POST", PROJECT + ":setIamPolicy", self.set_policy)

    def writes(self) -> list[Call]:
        return [c for c in super().writes() if not c.path.endswith(":getIamPolicy")]

    def add_project(self, project: str, bindings: list[dict[str, Any]] | None = None) -> None:
        self.policies[project] = {"version": 1, "etag": self._etag(), "bindings": copy.deepcopy(bindings or [])}

    def number(self, project: str) -> str:
        """The project number Google would have given `project` (stable per fake)."""
        return str(400000000000 + sorted(self.policies).index(project))

    def get_project(self, request: Request) -> Response:
        project = request.match["project"]
        if project not in self.policies:
            return error(403, f"The caller does not have permission on projects/{project} (or it may not exist).")
        return 200, {"name": f"projects/{self.number(project)}", "projectId": project, "state": "ACTIVE",
                     "displayName": project}

    def _etag(self) -> str:
        self.etag_counter += 1
        return base64.b64encode(f"etag-{self.etag_counter}".encode()).decode()

    def get_policy(self, request: Request) -> Response:
        project = request.match["project"]
        if project not in self.policies:
            return error(403, f"The caller does not have permission on projects/{project} (or it may not exist).")
        policy = copy.deepcopy(self.policies[project])
        if self.race_next_set:
            self.race_next_set = False
            current = self.policies[project]
            current["bindings"].append({"role": "roles/viewer", "members": ["user:someone@example.com"]})
            current["etag"] = self._etag()
        return 200, policy

    def set_policy(self, request: Request) -> Response:
        project = request.match["project"]
        if project not in self.policies:
            return error(403, f"The caller does not have permission on projects/{project} (or it may not exist).")
        policy = copy.deepcopy((request.body or {}).get("policy") or {})
        etag = policy.get("etag")
        if etag and etag != self.policies[project]["etag"]:
            return 409, {"error": {"code": 409, "status": "ABORTED", "message": "There were concurrent policy "
                                   "changes. Please retry the whole read-modify-write with exponential backoff."}}
        policy["etag"] = self._etag()
        policy.setdefault("version", 1)
        policy.setdefault("bindings", [])
        self.policies[project] = policy
        return 200, copy.deepcopy(policy)
