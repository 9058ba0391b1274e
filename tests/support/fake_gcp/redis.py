"""Fake Memorystore for Redis API (redis.googleapis.com v1): instances and google.longrunning operations.

Wire format of google-cloud-redis's REST transport: POST `/v1/projects/{p}/locations/{region}/instances?instanceId=ID`
with the Instance JSON as body, GET `.../instances/{id}`, GET `.../operations/{op}` answering a
google.longrunning.Operation (`done`, `metadata` and `response` as `Any` with `@type`, or `error`).
Bodies are parsed with the API's message types (unknown fields → 400; enum ints → names).
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from typing import Any

from tests.support.fake_gcp.common import LongRunning, found, normalised
from tests.support.fake_gcp.server import FakeServer, Request, Response, error

L = "/v1/projects/(?P<project>[^/]+)/locations/(?P<location>[^/]+)"
INSTANCE_TYPE = "type.googleapis.com/google.cloud.redis.v1.Instance"
METADATA_TYPE = "type.googleapis.com/google.cloud.redis.v1.OperationMetadata"


@dataclass
class FakeRedis(FakeServer):
    """State: `instances[(project, region, id)]` (Instance JSON as the API returns it); `lro` the operations."""

    instances: dict[tuple[str, str, str], dict[str, Any]] = field(default_factory=dict)
    lro: LongRunning = field(default_factory=LongRunning)
    _ids: itertools.count[int] = field(default_factory=lambda: itertools.count(1000))

    def __post_init__(self) -> None:
        self.route("GET", L + "/instances/(?P<instance>[^/]+)", self.get_instance)
        self.route("POST", L + "/instances", self.create_instance)
        self.route("GET", L + "/operations/(?P<op>[^/]+)",
                   lambda req: self.lro.get(f"projects/{req.match['project']}/locations/{req.match['location']}/"
                                            f"operations/{req.match['op']}"))

    def add_instance(self, project: str, region: str, instance_id: str, instance: dict[str, Any]) -> dict[str, Any]:
        """Store a READY instance (`instance` is Instance JSON, e.g. a create body)."""
        from google.cloud import redis_v1

        stored = normalised(redis_v1.Instance, instance)
        n = len(self.instances)
        stored.update(name=f"projects/{project}/locations/{region}/instances/{instance_id}", state="READY",
                      host=f"10.{80 + n}.0.3", port=6379, locationId=f"{region}-a", currentLocationId=f"{region}-a",
                      reservedIpRange=f"10.{80 + n}.0.0/29", createTime="2024-01-01T00:00:00Z")
        stored.setdefault("redisVersion", "REDIS_7_2")
        stored.setdefault("tier", "BASIC")
        stored.setdefault("connectMode", "DIRECT_PEERING")
        stored.setdefault("authorizedNetwork", f"projects/{project}/global/networks/default")
        self.instances[(project, region, instance_id)] = stored
        return stored

    def get_instance(self, req: Request) -> Response:
        key = (req.match["project"], req.match["location"], req.match["instance"])
        return found(self.instances.get(key), lambda: error(
            404, f"Resource 'projects/{key[0]}/locations/{key[1]}/instances/{key[2]}' was not found"))

    def create_instance(self, req: Request) -> Response:
        from google.cloud import redis_v1

        project, region = req.match["project"], req.match["location"]
        instance_id = req.arg("instanceId") or ""
        if not instance_id:
            return error(400, "Invalid instance id: must not be empty")
        try:
            body = normalised(redis_v1.Instance, req.body or {})
        except ValueError as exc:
            return error(400, f"Invalid JSON payload received. {exc}")
        if int(body.get("memorySizeGb", 0)) < 1:
            return error(400, "memory_size_gb must be at least 1")
        if body.get("tier") not in ("BASIC", "STANDARD_HA"):
            return error(400, "tier must be specified")
        if (project, region, instance_id) in self.instances:
            return error(409, f"Resource 'projects/{project}/locations/{region}/instances/{instance_id}' "
                              "already exists")
        name = f"projects/{project}/locations/{region}/operations/operation-{next(self._ids)}-fake"
        metadata = {"@type": METADATA_TYPE, "createTime": "2024-01-01T00:00:00Z", "verb": "create",
                    "target": f"projects/{project}/locations/{region}/instances/{instance_id}", "apiVersion": "v1"}
        return self.lro.start(name, metadata, lambda: {
            "@type": INSTANCE_TYPE, **self.add_instance(project, region, instance_id, body)})
