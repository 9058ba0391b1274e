"""Fake Service Usage API (serviceusage.googleapis.com v1): which Google APIs a project has enabled.

Wire format of google-cloud-service-usage's REST transport:
GET  /v1/projects/{p}/services?filter=state:ENABLED&pageSize=N&pageToken=T
     → {"services": [Service], "nextPageToken": T} (Service: name projects/{number}/services/{api}, parent,
       config.name, config.title, state); only the filters state:ENABLED and state:DISABLED are accepted
POST /v1/projects/{p}/services:batchEnable  body {"serviceIds": [...]} (1 to 20)
     → google.longrunning.Operation named operations/{id}, metadata OperationMetadata
GET  /v1/operations/{id} → the Operation; when done, `response` is a BatchEnableServicesResponse
     (`services`, `failures`) as an Any with @type, or `error`
As Google does, services are named with the project number, an unknown project is 403 and an unknown service
name is 403 "Not found or permission denied for service(s)". Pages hold at most `page_limit` services, so the
client's pager is exercised.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass, field
from typing import Any

from tests.support.fake_gcp.common import LongRunning
from tests.support.fake_gcp.server import FakeServer, Request, Response, error

P = "/v1/projects/(?P<project>[^/]+)"
RESPONSE_TYPE = "type.googleapis.com/google.api.serviceusage.v1.BatchEnableServicesResponse"
METADATA_TYPE = "type.googleapis.com/google.api.serviceusage.v1.OperationMetadata"
# The services this fake knows (Google knows hundreds); a project starts with none of them enabled.
TITLES = {
    "bigtable.googleapis.com": "Cloud Bigtable API", "bigtableadmin.googleapis.com": "Cloud Bigtable Admin API",
    "cloudresourcemanager.googleapis.com": "Cloud Resource Manager API",
    "compute.googleapis.com": "Compute Engine API", "container.googleapis.com": "Kubernetes Engine API",
    "datastore.googleapis.com": "Cloud Datastore API", "dns.googleapis.com": "Cloud DNS API",
    "firestore.googleapis.com": "Cloud Firestore API", "iam.googleapis.com": "Identity and Access Management API",
    "iamcredentials.googleapis.com": "IAM Service Account Credentials API",
    "logging.googleapis.com": "Cloud Logging API", "monitoring.googleapis.com": "Cloud Monitoring API",
    "pubsub.googleapis.com": "Cloud Pub/Sub API", "redis.googleapis.com": "Google Cloud Memorystore for Redis API",
    "secretmanager.googleapis.com": "Secret Manager API", "serviceusage.googleapis.com": "Service Usage API",
    "sqladmin.googleapis.com": "Cloud SQL Admin API", "storage.googleapis.com": "Cloud Storage API",
}
FILTERS = {"state:ENABLED": True, "state:DISABLED": False}


@dataclass
class FakeServiceUsage(FakeServer):
    """State: `enabled[project id]` (the enabled services); a project not there does not exist (403)."""

    enabled: dict[str, set[str]] = field(default_factory=dict)
    lro: LongRunning = field(default_factory=LongRunning)
    page_limit: int = 4
    refuse: dict[str, str] = field(default_factory=dict)  # service → the failure batchEnable reports for it
    list_queries: list[dict[str, list[str]]] = field(default_factory=list)  # query of each services.list

    def __post_init__(self) -> None:
        self.route("GET", P + "/services", self.list_services)
        self.route("POST", P + "/services:batchEnable", self.batch_enable)
        self.route("GET", "/v1/operations/(?P<op>[^/]+)", lambda req: self.lro.get(f"operations/{req.match['op']}"))

    def add_project(self, project: str, enabled: set[str] | None = None) -> None:
        """A project with these services enabled (None: every service the fake knows)."""
        self.enabled[project] = set(TITLES) if enabled is None else set(enabled)

    @staticmethod
    def number(project: str) -> str:
        return str(100000000000 + zlib.crc32(project.encode()) % 899999999999)

    def _service(self, project: str, name: str) -> dict[str, Any]:
        parent = f"projects/{self.number(project)}"
        state = "ENABLED" if name in self.enabled[project] else "DISABLED"
        return {"name": f"{parent}/services/{name}", "parent": parent, "state": state,
                "config": {"name": name, "title": TITLES[name]}}

    def _denied(self, project: str) -> Response:
        return error(403, f"Permission denied to list services for consumer container [projects/{project}]",
                     "forbidden")

    def list_services(self, req: Request) -> Response:
        project = req.match["project"]
        self.list_queries.append(req.query)
        if project not in self.enabled:
            return self._denied(project)
        wanted = req.arg("filter")
        if wanted is not None and wanted not in FILTERS:
            return error(400, f"Invalid filter: {wanted!r}; only state:ENABLED and state:DISABLED are supported")
        names = [n for n in sorted(TITLES) if wanted is None or (n in self.enabled[project]) == FILTERS[wanted]]
        size = min(int(req.arg("pageSize") or 50), self.page_limit)
        start = int(req.arg("pageToken") or 0)
        page: dict[str, Any] = {"services": [self._service(project, n) for n in names[start:start + size]]}
        if start + size < len(names):
            page["nextPageToken"] = str(start + size)
        return 200, page

    def batch_enable(self, req: Request) -> Response:
        project = req.match["project"]
        if project not in self.enabled:
            return self._denied(project)
        ids = list((req.body or {}).get("serviceIds") or [])
        if not 1 <= len(ids) <= 20:
            return error(400, "Request must contain between 1 and 20 service ids")
        unknown = [n for n in ids if n not in TITLES]
        if unknown:
            return error(403, f"Not found or permission denied for service(s): {', '.join(unknown)}.")
        name = f"operations/acat.p2-{self.number(project)}-{self.lro.new_name()}"
        metadata = {"@type": METADATA_TYPE, "resourceNames": [f"services/{n}/projectSettings/{self.number(project)}"
                                                              for n in ids]}

        def commit() -> dict[str, Any]:
            failures = [{"serviceId": n, "errorMessage": self.refuse[n]} for n in ids if n in self.refuse]
            if not failures:
                self.enabled[project] |= set(ids)
            return {"@type": RESPONSE_TYPE, "services": [self._service(project, n) for n in ids],
                    "failures": failures}

        return self.lro.start(name, metadata, commit)
