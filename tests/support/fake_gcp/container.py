"""Fake GKE API (container.googleapis.com v1): clusters, node pools and their operations.

Speaks google-cloud-container's REST wire format: `/v1/projects/{p}/locations/{l}/clusters[/{c}[/nodePools/{n}]]`,
`CreateClusterRequest`/`CreateNodePoolRequest` JSON bodies (`{"cluster": {...}}`, `{"nodePool": {...}}`), GKE
`Operation` objects (status PENDING/RUNNING/DONE, `error` on failure) read with GET `.../operations/{op}`.
Request bodies are parsed with the API's own message types, so unknown fields are rejected with 400 as
Google does, and enums (names or the ints GAPIC clients send) are stored and answered as names.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from tests.support.fake_gcp.common import Operations, found, normalised
from tests.support.fake_gcp.server import FakeServer, Request, Response, error

L = "/v1/projects/(?P<project>[^/]+)/locations/(?P<location>[^/]+)"
# Node-pool kernel parameters GKE accepts in linuxNodeConfig.sysctls (the LinuxNodeConfig docstring of
# google-cloud-container 2.67; some need newer GKE versions). Anything else is refused with 400, as GKE does:
# net.ipv4.ip_local_port_range, for one, is not there (pods set it: it is a namespaced, safe sysctl).
NODE_SYSCTLS = frozenset({
    "net.core.busy_poll", "net.core.busy_read", "net.core.netdev_max_backlog", "net.core.rmem_max",
    "net.core.rmem_default", "net.core.wmem_default", "net.core.wmem_max", "net.core.optmem_max",
    "net.core.somaxconn", "net.ipv4.tcp_rmem", "net.ipv4.tcp_wmem", "net.ipv4.tcp_tw_reuse",
    "net.ipv4.tcp_mtu_probing", "net.ipv4.tcp_max_orphans", "net.ipv4.tcp_max_tw_buckets", "net.ipv4.tcp_syn_retries",
    "net.ipv4.tcp_ecn", "net.ipv4.tcp_congestion_control", "net.netfilter.nf_conntrack_max",
    "net.netfilter.nf_conntrack_buckets", "net.netfilter.nf_conntrack_tcp_timeout_close_wait",
    "net.netfilter.nf_conntrack_tcp_timeout_time_wait", "net.netfilter.nf_conntrack_tcp_timeout_established",
    "net.netfilter.nf_conntrack_acct", "kernel.shmmni", "kernel.shmmax", "kernel.shmall", "fs.aio-max-nr",
    "fs.file-max", "fs.inotify.max_user_instances", "fs.inotify.max_user_watches", "fs.nr_open",
    "vm.max_map_count", "vm.overcommit_memory", "vm.overcommit_ratio", "vm.swappiness",
})
BASE = "https://container.googleapis.com/v1/"


@dataclass
class FakeContainer(FakeServer, Operations):
    """State: `clusters[(project, location, name)]` (cluster JSON incl. its `nodePools`), `operations[name]`.
    `pending_polls`: how many operation GETs answer RUNNING before DONE; `operation_error`: the next operation
    ends DONE with this error."""

    clusters: dict[tuple[str, str, str], dict[str, Any]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.route("GET", L + "/clusters/(?P<cluster>[^/]+)", self.get_cluster)
        self.route("POST", L + "/clusters", self.create_cluster)
        self.route("GET", L + "/clusters/(?P<cluster>[^/]+)/nodePools/(?P<pool>[^/]+)", self.get_node_pool)
        self.route("POST", L + "/clusters/(?P<cluster>[^/]+)/nodePools", self.create_node_pool)
        self.route("GET", L + "/operations/(?P<op>[^/]+)", self.get_operation)

    # ------------------------------------------------------------------ seeding (tests)

    def add_cluster(self, project: str, location: str, cluster: dict[str, Any]) -> dict[str, Any]:
        """Store a cluster as GKE reports a running one (`cluster` is Cluster JSON, e.g. a create body)."""
        from google.cloud import container_v1

        stored = normalised(container_v1.Cluster, cluster)
        name = stored["name"]
        link = f"{BASE}projects/{project}/locations/{location}/clusters/{name}"
        stored.update(location=location, status="RUNNING", selfLink=link, endpoint="34.0.0.10",
                      currentMasterVersion=stored.get("initialClusterVersion", "1.31.5-gke.1000"),
                      zone=location, createTime="2024-01-01T00:00:00+00:00")
        stored.setdefault("network", "default")
        stored.setdefault("subnetwork", "default")
        stored.setdefault("releaseChannel", {"channel": "REGULAR"})
        stored["nodePools"] = [self._pool(link, pool) for pool in stored.get("nodePools", [])]
        self.clusters[(project, location, name)] = stored
        return stored

    @staticmethod
    def _pool(cluster_link: str, pool: dict[str, Any]) -> dict[str, Any]:
        pool = dict(pool)
        pool.update(status="RUNNING", selfLink=f"{cluster_link}/nodePools/{pool['name']}", version="1.31.5-gke.1000")
        pool.setdefault("config", {}).setdefault("diskSizeGb", 100)
        pool["config"].setdefault("machineType", "e2-medium")
        return pool

    # ------------------------------------------------------------------ operations

    def _operation(self, req: Request, kind: str, target: str, commit: Callable[[], object]) -> Response:
        project, location = req.match["project"], req.match["location"]
        name = self.new_name()
        op: dict[str, Any] = {
            "name": name, "zone": location, "location": location, "operationType": kind, "status": "RUNNING",
            "selfLink": f"{BASE}projects/{project}/locations/{location}/operations/{name}",
            "targetLink": f"{BASE}projects/{project}/locations/{location}/{target}",
            "startTime": "2024-01-01T00:00:00Z"}
        return self.start_operation(name, op, commit)

    def _complete(self, operation: dict[str, Any], error: str | None, response: Any) -> None:
        operation.update(status="DONE", endTime="2024-01-01T00:05:00Z")
        if error is not None:
            operation.update(error={"code": 9, "message": error}, statusMessage=error)

    def get_operation(self, req: Request) -> Response:
        name = req.match["op"]
        return found(self.poll_operation(name), lambda: error(404, f"Operation \"{name}\" not found."))

    # ------------------------------------------------------------------ clusters and pools

    def get_cluster(self, req: Request) -> Response:
        key = (req.match["project"], req.match["location"], req.match["cluster"])
        return found(self.clusters.get(key), lambda: self._no_cluster(key))

    @staticmethod
    def _no_cluster(key: tuple[str, str, str]) -> Response:
        return error(404, f"Not found: projects/{key[0]}/locations/{key[1]}/clusters/{key[2]}.")

    def create_cluster(self, req: Request) -> Response:
        from google.cloud import container_v1

        project, location = req.match["project"], req.match["location"]
        try:
            cluster = normalised(container_v1.Cluster, (req.body or {}).get("cluster", {}))
        except ValueError as exc:
            return error(400, f"Invalid JSON payload received. {exc}")
        name = cluster.get("name", "")
        if not name:
            return error(400, "Cluster.name must be specified.")
        if not cluster.get("nodePools") and not cluster.get("initialNodeCount"):
            return error(400, "Cluster.initial_node_count must be greater than zero.")
        pool = cluster.get("workloadIdentityConfig", {}).get("workloadPool")
        if pool and pool != f"{project}.svc.id.goog":
            return error(400, f"Workload pool must be \"{project}.svc.id.goog\".")
        if (refused := self._bad_sysctls(cluster.get("nodePools", []))) is not None:
            return refused
        if (project, location, name) in self.clusters:
            return error(409, f"Already exists: projects/{project}/locations/{location}/clusters/{name}.")
        return self._operation(req, "CREATE_CLUSTER", f"clusters/{name}",
                               lambda: self.add_cluster(project, location, cluster))

    @staticmethod
    def _bad_sysctls(pools: list[dict[str, Any]]) -> Response | None:
        """400 for a node pool asking for a kernel parameter GKE does not support on nodes."""
        for pool in pools:
            for name in pool.get("config", {}).get("linuxNodeConfig", {}).get("sysctls", {}):
                if name not in NODE_SYSCTLS:
                    return error(400, f"Unsupported kernel parameter {name} in node pool \"{pool.get('name')}\".")
        return None

    def _find_pool(self, cluster: dict[str, Any], name: str) -> dict[str, Any] | None:
        return next((p for p in cluster.get("nodePools", []) if p.get("name") == name), None)

    def get_node_pool(self, req: Request) -> Response:
        key = (req.match["project"], req.match["location"], req.match["cluster"])
        cluster = self.clusters.get(key)
        pool = self._find_pool(cluster, req.match["pool"]) if cluster else None
        if pool is None:
            return error(404, f"Not found: projects/{key[0]}/locations/{key[1]}/clusters/{key[2]}/nodePools/"
                              f"{req.match['pool']}.")
        return 200, pool

    def create_node_pool(self, req: Request) -> Response:
        from google.cloud import container_v1

        key = (req.match["project"], req.match["location"], req.match["cluster"])
        cluster = self.clusters.get(key)
        if cluster is None:
            return self._no_cluster(key)
        try:
            pool = normalised(container_v1.NodePool, (req.body or {}).get("nodePool", {}))
        except ValueError as exc:
            return error(400, f"Invalid JSON payload received. {exc}")
        if not pool.get("name"):
            return error(400, "NodePool.name must be specified.")
        if (refused := self._bad_sysctls([pool])) is not None:
            return refused
        if self._find_pool(cluster, pool["name"]) is not None:
            return error(409, f"Already exists: projects/{key[0]}/locations/{key[1]}/clusters/{key[2]}/nodePools/"
                              f"{pool['name']}.")
        link = cluster["selfLink"]
        return self._operation(req, "CREATE_NODE_POOL", f"clusters/{key[2]}/nodePools/{pool['name']}",
                               lambda: cluster["nodePools"].append(self._pool(link, pool)))
