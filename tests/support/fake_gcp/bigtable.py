"""Fake Bigtable Admin API v2 (bigtableadmin.googleapis.com): instances, their clusters, operations.

Wire format of google-cloud-bigtable's admin REST transport: POST `/v2/projects/{p}/instances` with a
CreateInstanceRequest body (`instanceId`, `instance`, `clusters` map), GET `/v2/projects/{p}/instances/{i}`,
GET `/v2/projects/{p}/instances/{i}/clusters`, and google.longrunning operations at
`/v2/operations/projects/{p}/instances/{i}/locations/{zone}/operations/{n}`.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from typing import Any

from tests.support.fake_gcp.common import LongRunning, found, normalised
from tests.support.fake_gcp.server import FakeServer, Request, Response, error

P = "/v2/projects/(?P<project>[^/]+)"
INSTANCE_TYPE = "type.googleapis.com/google.bigtable.admin.v2.Instance"
METADATA_TYPE = "type.googleapis.com/google.bigtable.admin.v2.CreateInstanceMetadata"


@dataclass
class FakeBigtable(FakeServer):
    """State: `instances[(project, id)]` (Instance JSON) and `clusters[(project, id)]` (cluster id → Cluster JSON)."""

    instances: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict)
    clusters: dict[tuple[str, str], dict[str, dict[str, Any]]] = field(default_factory=dict)
    lro: LongRunning = field(default_factory=LongRunning)
    _ids: itertools.count[int] = field(default_factory=lambda: itertools.count(1000))

    def __post_init__(self) -> None:
        self.route("GET", P + "/instances/(?P<instance>[^/]+)", self.get_instance)
        self.route("GET", P + "/instances/(?P<instance>[^/]+)/clusters", self.list_clusters)
        self.route("POST", P + "/instances", self.create_instance)
        self.route("GET", "/v2/(?P<op>operations/.+)", lambda req: self.lro.get(req.match["op"]))

    def add_instance(self, project: str, instance_id: str, instance: dict[str, Any],
                     clusters: dict[str, dict[str, Any]]) -> dict[str, Any]:
        """Store a READY instance with its clusters (Instance / Cluster JSON, e.g. from a create body)."""
        from google.cloud import bigtable_admin_v2 as admin

        stored = normalised(admin.Instance, instance)
        stored.update(name=f"projects/{project}/instances/{instance_id}", state="READY",
                      createTime="2024-01-01T00:00:00Z")
        stored.setdefault("type", "PRODUCTION")
        self.instances[(project, instance_id)] = stored
        self.clusters[(project, instance_id)] = {}
        for cluster_id, cluster in clusters.items():
            c = normalised(admin.Cluster, cluster)
            c.update(name=f"projects/{project}/instances/{instance_id}/clusters/{cluster_id}", state="READY")
            c.setdefault("defaultStorageType", "SSD")
            self.clusters[(project, instance_id)][cluster_id] = c
        return stored

    def get_instance(self, req: Request) -> Response:
        key = (req.match["project"], req.match["instance"])
        return found(self.instances.get(key), lambda: error(404, f"Instance projects/{key[0]}/instances/{key[1]} not "
                                                                 "found."))

    def list_clusters(self, req: Request) -> Response:
        key = (req.match["project"], req.match["instance"])
        if key not in self.instances:
            return error(404, f"Instance projects/{key[0]}/instances/{key[1]} not found.")
        return 200, {"clusters": [self.clusters[key][c] for c in sorted(self.clusters[key])]}

    def create_instance(self, req: Request) -> Response:
        from google.cloud import bigtable_admin_v2 as admin

        project, body = req.match["project"], req.body or {}
        instance_id = str(body.get("instanceId", ""))
        if not 6 <= len(instance_id) <= 33:
            return error(400, "Instance ID must be between 6 and 33 characters.")
        try:
            instance = normalised(admin.Instance, body.get("instance", {}))
            clusters = {cid: normalised(admin.Cluster, c) for cid, c in dict(body.get("clusters", {})).items()}
        except ValueError as exc:
            return error(400, f"Invalid JSON payload received. {exc}")
        if not instance.get("displayName") or not clusters:
            return error(400, "Instance display name and at least one cluster are required.")
        for cid, c in clusters.items():
            if not 6 <= len(cid) <= 30:
                return error(400, f"Cluster ID {cid} must be between 6 and 30 characters.")
            if not c.get("location") or (int(c.get("serveNodes", 0)) < 1 and "clusterConfig" not in c):
                return error(400, f"Cluster {cid} needs a location and serve_nodes >= 1.")
        if (project, instance_id) in self.instances:
            return error(409, f"Instance projects/{project}/instances/{instance_id} already exists.")
        zone = next(iter(clusters.values()))["location"].rsplit("/", 1)[-1]
        name = f"operations/projects/{project}/instances/{instance_id}/locations/{zone}/operations/{next(self._ids)}"
        metadata = {"@type": METADATA_TYPE, "requestTime": "2024-01-01T00:00:00Z",
                    "originalRequest": {"parent": f"projects/{project}", "instanceId": instance_id}}
        return self.lro.start(name, metadata, lambda: {
            "@type": INSTANCE_TYPE, **self.add_instance(project, instance_id, instance, clusters)})
