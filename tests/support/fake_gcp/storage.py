"""Fake Cloud Storage JSON API v1: buckets (create, get) and bucket IAM policies (get, set with etag check).

Bucket names are global: `foreign` holds names another project owns (GET answers 403, create 409), as on
Google. Locations come back upper case. A new bucket's policy holds the legacy project-role bindings.
"""

from __future__ import annotations

import base64
import copy
from dataclasses import dataclass, field
from typing import Any

from tests.support.fake_gcp.server import FakeServer, Request, Response, error

B = r"/storage/v1/b/(?P<bucket>[^/]+)"
NOW = "2024-01-01T00:00:00.000Z"
CALLER = "bootstrap@fake-project.iam.gserviceaccount.com"


@dataclass
class StorageFake(FakeServer):
    buckets: dict[str, dict[str, Any]] = field(default_factory=dict)
    policies: dict[str, dict[str, Any]] = field(default_factory=dict)
    foreign: set[str] = field(default_factory=set)
    requester_pays: set[str] = field(default_factory=set)  # buckets whose requests must name a userProject
    _etags: int = 0

    def __post_init__(self) -> None:
        self.route("POST", r"/storage/v1/b", self.insert_bucket)
        self.route("GET", B, self.get_bucket)
        self.route("GET", B + "/iam", self.get_policy)
        self.route("PUT", B + "/iam", self.set_policy)

    # ------------------------------------------------------------------ helpers for tests

    def add_bucket(self, project: str, name: str, location: str = "US-EAST1", uniform: bool = True) -> None:
        self._store(project, {"name": name, "location": location,
                              "iamConfiguration": {"uniformBucketLevelAccess": {"enabled": uniform}}})

    def members(self, bucket: str, role: str) -> list[str]:
        return sorted(m for b in self.policies[bucket]["bindings"] if b["role"] == role and "condition" not in b
                      for m in b["members"])

    # ------------------------------------------------------------------ routes

    def _etag(self) -> str:
        self._etags += 1
        return base64.b64encode(self._etags.to_bytes(2, "big")).decode()

    def _store(self, project: str, body: dict[str, Any]) -> dict[str, Any]:
        name = body["name"]
        ubla = bool(body.get("iamConfiguration", {}).get("uniformBucketLevelAccess", {}).get("enabled"))
        access: dict[str, Any] = {"enabled": ubla, **({"lockedTime": "2024-04-01T00:00:00.000Z"} if ubla else {})}
        bucket = {
            "kind": "storage#bucket", "selfLink": f"https://www.googleapis.com/storage/v1/b/{name}", "id": name,
            "name": name, "projectNumber": "100000000000", "metageneration": "1",
            "location": str(body.get("location", "US")).upper(), "locationType": "region",
            "storageClass": body.get("storageClass", "STANDARD"), "etag": "CAE=", "timeCreated": NOW, "updated": NOW,
            "iamConfiguration": {"bucketPolicyOnly": access, "uniformBucketLevelAccess": access,
                                 "publicAccessPrevention": "inherited"},
            "rpo": "DEFAULT",
            **({"labels": body["labels"]} if body.get("labels") else {}),
        }
        self.buckets[name] = bucket
        self.policies[name] = {
            "kind": "storage#policy", "resourceId": f"projects/_/buckets/{name}", "version": 1, "etag": self._etag(),
            "bindings": [
                {"role": "roles/storage.legacyBucketOwner",
                 "members": [f"projectEditor:{project}", f"projectOwner:{project}"]},
                {"role": "roles/storage.legacyBucketReader", "members": [f"projectViewer:{project}"]},
            ],
        }
        return bucket

    def _missing(self, name: str, req: Request | None = None) -> Response | None:
        if name in self.requester_pays and req is not None and not req.arg("userProject"):
            return error(400, "Bucket is a requester pays bucket but no user project provided.", "required")
        if name in self.foreign:
            return error(403, f"{CALLER} does not have storage.buckets.get access to the Google Cloud Storage "
                              f"bucket. Permission 'storage.buckets.get' denied on resource (or it may not exist).",
                         "forbidden")
        if name not in self.buckets:
            return error(404, "The specified bucket does not exist.", "notFound")
        return None

    def insert_bucket(self, req: Request) -> Response:
        project, body = req.arg("project"), req.body or {}
        if not project:
            return error(400, "Required parameter: project", "required")
        name = body.get("name", "")
        if not name:
            return error(400, "Required", "required")
        if name in self.foreign:
            return error(409, "The requested bucket name is not available. The bucket namespace is shared by all "
                              "users of the system. Please select a different name and try again.", "conflict")
        if name in self.buckets:
            return error(409, "Your previous request to create the named bucket succeeded and you already own it.",
                         "conflict")
        return 200, self._store(project, body)

    def get_bucket(self, req: Request) -> Response:
        name = req.match["bucket"]
        return self._missing(name) or (200, self.buckets[name])

    def get_policy(self, req: Request) -> Response:
        name = req.match["bucket"]
        missing = self._missing(name, req)
        if missing:
            return missing
        policy = copy.deepcopy(self.policies[name])
        if any("condition" in b for b in policy["bindings"]):
            if (req.arg("optionsRequestedPolicyVersion") or "1") != "3":
                return error(400, "Bucket has conditional IAM bindings: request policy version 3.", "invalid")
            policy["version"] = 3
        return 200, policy

    def set_policy(self, req: Request) -> Response:
        name, body = req.match["bucket"], req.body or {}
        missing = self._missing(name, req)
        if missing:
            return missing
        current = self.policies[name]
        if body.get("etag") and body["etag"] != current["etag"]:
            return error(412, "Precondition Failed", "conditionNotMet")
        if any("condition" in b for b in body.get("bindings", [])) and body.get("version") != 3:
            return error(400, "IAM policies with conditions require version 3.", "invalid")
        self.policies[name] = {"kind": "storage#policy", "resourceId": f"projects/_/buckets/{name}",
                               "version": body.get("version", 1), "etag": self._etag(),
                               "bindings": [{**b, "members": sorted(b["members"])} for b in body.get("bindings", [])]}
        return 200, self.policies[name]
