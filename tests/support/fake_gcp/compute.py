"""Fake Compute Engine REST API (networks, subnetworks, addresses and their operations).

Speaks the wire format of google-cloud-compute's REST transport: `/compute/v1/projects/{project}/...`
paths, camelCase JSON, full self-link URLs in resources, `compute#operation` objects (status PENDING,
RUNNING, DONE, with `error.errors[]` and `httpErrorStatusCode` on failure), 404 for missing and 409 for
existing resources.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from tests.support.fake_gcp.common import Operations, found
from tests.support.fake_gcp.server import FakeServer, Request, Response, error

BASE = "https://www.googleapis.com/compute/v1/"
P = "/compute/v1/projects/(?P<project>[^/]+)"


@dataclass
class FakeCompute(FakeServer, Operations):
    """State: `networks[(project, name)]`, `subnets[(project, region, name)]`, `addresses[(project, region, name)]`
    (resource JSON as Google returns it). `pending_polls`: how many operation GETs answer RUNNING before DONE;
    `operation_error`: the next operation finishes DONE with this error."""

    networks: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict)
    subnets: dict[tuple[str, str, str], dict[str, Any]] = field(default_factory=dict)
    addresses: dict[tuple[str, str, str], dict[str, Any]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.route("GET", P + "/global/networks/(?P<name>[^/]+)", self.get_network)
        self.route("POST", P + "/global/networks", self.insert_network)
        self.route("GET", P + "/regions/(?P<region>[^/]+)/subnetworks/(?P<name>[^/]+)", self.get_subnet)
        self.route("POST", P + "/regions/(?P<region>[^/]+)/subnetworks", self.insert_subnet)
        self.route("GET", P + "/regions/(?P<region>[^/]+)/addresses/(?P<name>[^/]+)", self.get_address)
        self.route("POST", P + "/regions/(?P<region>[^/]+)/addresses", self.insert_address)
        self.route("GET", P + "/global/operations/(?P<op>[^/]+)", self.get_operation)
        self.route("GET", P + "/regions/(?P<region>[^/]+)/operations/(?P<op>[^/]+)", self.get_operation)

    # ------------------------------------------------------------------ seeding (tests)

    def add_network(self, project: str, name: str, auto: bool = False) -> None:
        self.networks[(project, name)] = {
            "kind": "compute#network", "id": str(next(self._ids)), "name": name, "autoCreateSubnetworks": auto,
            "selfLink": f"{BASE}projects/{project}/global/networks/{name}", "subnetworks": [],
            "routingConfig": {"routingMode": "REGIONAL"}, "creationTimestamp": "2024-01-01T00:00:00.000-08:00"}

    def add_subnet(self, project: str, region: str, name: str, network: str, cidr: str) -> None:
        self.subnets[(project, region, name)] = {
            "kind": "compute#subnetwork", "id": str(next(self._ids)), "name": name, "ipCidrRange": cidr,
            "network": f"{BASE}projects/{project}/global/networks/{network}",
            "region": f"{BASE}projects/{project}/regions/{region}",
            "selfLink": f"{BASE}projects/{project}/regions/{region}/subnetworks/{name}",
            "gatewayAddress": cidr.split("/")[0].rsplit(".", 1)[0] + ".1", "stackType": "IPV4_ONLY"}

    def add_address(self, project: str, region: str, name: str, ip: str = "") -> None:
        ip = ip or f"34.1.{len(self.addresses) // 250}.{len(self.addresses) % 250 + 2}"
        self.addresses[(project, region, name)] = {
            "kind": "compute#address", "id": str(next(self._ids)), "name": name, "address": ip,
            "addressType": "EXTERNAL", "networkTier": "PREMIUM", "status": "RESERVED",
            "region": f"{BASE}projects/{project}/regions/{region}",
            "selfLink": f"{BASE}projects/{project}/regions/{region}/addresses/{name}"}

    # ------------------------------------------------------------------ operations

    def _operation(self, req: Request, kind: str, target: str, commit: Callable[[], None]) -> Response:
        project = req.match["project"]
        region = req.match.groupdict().get("region")
        name = self.new_name()
        scope = f"projects/{project}/regions/{region}" if region else f"projects/{project}/global"
        op: dict[str, Any] = {
            "kind": "compute#operation", "id": str(next(self._ids)), "name": name, "operationType": "insert",
            "targetLink": f"{BASE}{scope}/{kind}/{target}", "status": "RUNNING", "progress": 0,
            "user": "bootstrap@fake-project.iam.gserviceaccount.com", "insertTime": "2024-01-01T00:00:00.000-08:00",
            "selfLink": f"{BASE}{scope}/operations/{name}"}
        if region:
            op["region"] = f"{BASE}projects/{project}/regions/{region}"
        return self.start_operation(name, op, commit)

    def _complete(self, operation: dict[str, Any], error: str | None, response: Any) -> None:
        operation.update(status="DONE", progress=100, endTime="2024-01-01T00:00:05.000-08:00")
        if error is not None:
            operation["error"] = {"errors": [{"code": "QUOTA_EXCEEDED", "message": error}]}
            operation.update(httpErrorStatusCode=403, httpErrorMessage="FORBIDDEN")

    def get_operation(self, req: Request) -> Response:
        name = req.match["op"]
        return found(self.poll_operation(name),
                     lambda: self._missing(f"projects/{req.match['project']}/global/operations/{name}"))

    # ------------------------------------------------------------------ resources

    @staticmethod
    def _missing(path: str) -> Response:
        return error(404, f"The resource '{path}' was not found", "notFound")

    @staticmethod
    def _exists(path: str) -> Response:
        return error(409, f"The resource '{path}' already exists", "alreadyExists")

    def get_network(self, req: Request) -> Response:
        project, name = req.match["project"], req.match["name"]
        return found(self.networks.get((project, name)),
                     lambda: self._missing(f"projects/{project}/global/networks/{name}"))

    def insert_network(self, req: Request) -> Response:
        project, body = req.match["project"], req.body or {}
        name = body.get("name", "")
        if not name:
            return error(400, "Invalid value for field 'resource.name': ''.", "invalid")
        if (project, name) in self.networks:
            return self._exists(f"projects/{project}/global/networks/{name}")
        auto = bool(body.get("autoCreateSubnetworks", False))
        return self._operation(req, "networks", name, lambda: self.add_network(project, name, auto))

    def get_subnet(self, req: Request) -> Response:
        return self._get_regional(req, self.subnets, "subnetworks")

    def insert_subnet(self, req: Request) -> Response:
        project, region, body = req.match["project"], req.match["region"], req.body or {}
        name, cidr = body.get("name", ""), body.get("ipCidrRange", "")
        network = str(body.get("network", "")).rsplit("/", 1)[-1]
        if not name or not cidr:
            return error(400, "Invalid value for field 'resource.ipCidrRange': ''.", "invalid")
        if (project, network) not in self.networks:
            return self._missing(f"projects/{project}/global/networks/{network}")
        if (project, region, name) in self.subnets:
            return self._exists(f"projects/{project}/regions/{region}/subnetworks/{name}")
        return self._operation(req, "subnetworks", name, lambda: self.add_subnet(project, region, name, network, cidr))

    def get_address(self, req: Request) -> Response:
        return self._get_regional(req, self.addresses, "addresses")

    def _get_regional(self, req: Request, table: dict[tuple[str, str, str], dict[str, Any]], kind: str) -> Response:
        project, region, name = req.match["project"], req.match["region"], req.match["name"]
        return found(table.get((project, region, name)),
                     lambda: self._missing(f"projects/{project}/regions/{region}/{kind}/{name}"))

    def insert_address(self, req: Request) -> Response:
        project, region, body = req.match["project"], req.match["region"], req.body or {}
        name = body.get("name", "")
        if not name:
            return error(400, "Invalid value for field 'resource.name': ''.", "invalid")
        if body.get("addressType", "EXTERNAL") != "EXTERNAL":
            return error(400, "fake: only EXTERNAL addresses are modelled", "invalid")
        if (project, region, name) in self.addresses:
            return self._exists(f"projects/{project}/regions/{region}/addresses/{name}")
        ip = str(body.get("address", ""))
        return self._operation(req, "addresses", name, lambda: self.add_address(project, region, name, ip))
