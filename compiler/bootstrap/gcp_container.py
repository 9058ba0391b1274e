"""The GKE cluster and its node pools (google-cloud-container ClusterManagerClient, REST).

A new cluster is created with all the spec's node pools at once (no throw-away default pool to delete,
as CAVEdeployment's launch_cluster.sh did), with Workload Identity, VPC-native (alias IP) networking and
shielded nodes; pools added to the spec later are created one by one. GKE operations are polled with
get_operation. Existing clusters and pools are never changed.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from functools import cached_property
from typing import Any

from google.api_core import exceptions as google_exceptions

from compiler.bootstrap.gcp_common import (
    LABELS,
    create_or_exists,
    one_line,
    poll_seconds,
    read_or_none,
    resolved,
    rest_client,
    short_name,
    wait_until,
)
from compiler.bootstrap.model import Context, ProviderError, Resource

API = "container"
POLL_SECONDS = 10.0  # default; CAVE_GITOPS_POLL_SECONDS overrides
TIMEOUT_SECONDS = 40 * 60  # a cluster with several pools takes 5-15 minutes
SCOPES = ["https://www.googleapis.com/auth/cloud-platform"]  # access is governed by IAM (Workload Identity)
# Kubernetes taint effects (as in the spec's "k=v:NoSchedule") ↔ GKE's NodeTaint.Effect names.
EFFECTS = {"NoSchedule": "NO_SCHEDULE", "PreferNoSchedule": "PREFER_NO_SCHEDULE", "NoExecute": "NO_EXECUTE"}
KUBE_EFFECTS = {v: k for k, v in EFFECTS.items()}


def parse_taint(taint: str) -> tuple[str, str, str]:
    """"pool=mesh-pool:NoSchedule" → ("pool", "mesh-pool", "NO_SCHEDULE")."""
    key_value, _, effect = taint.rpartition(":")
    key, _, value = key_value.partition("=")
    if not key or effect not in EFFECTS:
        raise ValueError(f"taint {taint!r} is not key=value:{'|'.join(EFFECTS)}")
    return key, value, EFFECTS[effect]


def format_taint(key: str, value: str, effect: str) -> str:
    return f"{key}={value}:{KUBE_EFFECTS.get(effect, effect)}"


class ContainerProvider:
    """gke-cluster and node-pool."""

    kinds = frozenset({"gke-cluster", "node-pool"})
    _api = cached_property(lambda self: rest_client("google.cloud.container_v1", "ClusterManagerClient", API))

    # ------------------------------------------------------------------ observe

    def observe(self, resource: Resource, ctx: Context) -> dict[str, Any] | None:
        return read_or_none(resource, lambda: self._observe(resource))

    def _observe(self, resource: Resource) -> dict[str, Any]:
        location = str(resource.fields["location"])
        if resource.kind == "gke-cluster":
            cluster = self._api.get_cluster(name=f"projects/{resource.project}/locations/{location}/clusters/"
                                                 f"{resource.name}")
            return {"location": cluster.location, "network": short_name(cluster.network),
                    "subnetwork": short_name(cluster.subnetwork),
                    "workload_pool": cluster.workload_identity_config.workload_pool,
                    "release_channel": cluster.release_channel.channel.name}
        cluster_name = str(resource.fields["cluster"])
        pool = self._api.get_node_pool(name=f"projects/{resource.project}/locations/{location}/clusters/"
                                            f"{cluster_name}/nodePools/{resource.name}")
        return {"cluster": cluster_name, "location": location, **self._pool_fields(pool)}

    @staticmethod
    def _pool_fields(pool: Any) -> dict[str, Any]:
        """The node-pool fields GKE reports, in the spec's terms (a pool without autoscaling: min = max = size)."""
        if pool.autoscaling.enabled:
            low, high = pool.autoscaling.min_node_count, pool.autoscaling.max_node_count
        else:
            low = high = pool.initial_node_count
        return {"machine_type": pool.config.machine_type, "disk_size_gb": pool.config.disk_size_gb,
                "min_nodes": low, "max_nodes": high, "preemptible": bool(pool.config.preemptible),
                "taints": sorted(format_taint(t.key, t.value, t.effect.name) for t in pool.config.taints),
                "sysctls": dict(sorted(pool.config.linux_node_config.sysctls.items()))}

    # ------------------------------------------------------------------ create

    def create(self, resource: Resource, ctx: Context) -> None:
        try:
            create_or_exists(resource, lambda: self._create(resource, ctx))  # never updates a cluster or pool
        except ValueError as exc:  # a bad input (release channel, taint, no node pools)
            raise ProviderError(f"{resource.key}: {exc}") from None

    def _create(self, resource: Resource, ctx: Context) -> None:
        fields = resolved(resource, ctx)
        parent = f"projects/{resource.project}/locations/{fields['location']}"
        if resource.kind == "gke-cluster":
            cluster = self._cluster(resource, fields, ctx)
            operation = self._api.create_cluster(parent=parent, cluster=cluster)
            what = f"cluster creation with {len(cluster.node_pools)} node pools"
        else:
            operation = self._create_node_pool(resource, ctx, f"{parent}/clusters/{fields['cluster']}",
                                               self._node_pool(resource.name, fields))
            what = "node pool creation"
        self._wait(operation, resource, ctx, str(fields["location"]), what)

    def _create_node_pool(self, resource: Resource, ctx: Context, parent: str, pool: Any) -> Any:
        """create_node_pool, retried while the cluster runs another operation (GKE allows one at a time and
        answers 400 "Cluster is running incompatible operation", e.g. during an auto-upgrade)."""
        deadline = time.monotonic() + TIMEOUT_SECONDS
        poll = poll_seconds(POLL_SECONDS)
        while True:
            try:
                return self._api.create_node_pool(parent=parent, node_pool=pool)
            except google_exceptions.BadRequest as exc:
                if "incompatible operation" not in str(exc.message) or time.monotonic() > deadline:
                    raise
                ctx.progress(f"{resource.key}: waiting for the cluster's running operation to finish")
                time.sleep(poll)

    def _cluster(self, resource: Resource, fields: Mapping[str, Any], ctx: Context) -> Any:
        from google.cloud import container_v1 as gke

        pools = [ctx.resolve(pool) for pool in resource.params.get("node_pools", [])]
        if not pools:
            raise ValueError("no node pools given (params.node_pools); a cluster needs at least one")
        channel = str(fields["release_channel"])
        if channel not in gke.ReleaseChannel.Channel.__members__ or channel == "UNSPECIFIED":
            raise ValueError(f"release channel {channel!r} is not one of RAPID, REGULAR, STABLE, EXTENDED")
        cluster = gke.Cluster(
            name=resource.name, network=str(fields["network"]), subnetwork=str(fields["subnetwork"]),
            node_pools=[self._node_pool(str(pool["name"]), pool) for pool in pools],
            workload_identity_config=gke.WorkloadIdentityConfig(workload_pool=str(fields["workload_pool"])),
            ip_allocation_policy=gke.IPAllocationPolicy(use_ip_aliases=True),
            shielded_nodes=gke.ShieldedNodes(enabled=True),
            release_channel=gke.ReleaseChannel(channel=getattr(gke.ReleaseChannel.Channel, channel)),
            resource_labels=LABELS,
        )
        version = resource.params.get("kubernetes_version")
        if version:
            cluster.initial_cluster_version = str(ctx.resolve(version))
        return cluster

    @staticmethod
    def _node_pool(name: str, fields: Mapping[str, Any]) -> Any:
        """A node pool: autoscaled min..max, shielded (secure boot, integrity monitoring), GKE metadata server
        (Workload Identity), auto-repair and auto-upgrade (required by release channels), and the kernel
        parameters of `sysctls` (GKE node system configuration; GKE refuses names it does not support)."""
        from google.cloud import container_v1 as gke

        low, high = int(fields["min_nodes"]), int(fields["max_nodes"])
        taints = [gke.NodeTaint(key=k, value=v, effect=getattr(gke.NodeTaint.Effect, e))
                  for k, v, e in (parse_taint(str(t)) for t in fields.get("taints", []))]
        sysctls = {str(k): str(v) for k, v in dict(fields.get("sysctls") or {}).items()}
        return gke.NodePool(
            name=name,
            initial_node_count=max(low, 1),
            autoscaling=gke.NodePoolAutoscaling(enabled=True, min_node_count=low, max_node_count=high),
            management=gke.NodeManagement(auto_repair=True, auto_upgrade=True),
            config=gke.NodeConfig(
                machine_type=str(fields["machine_type"]), disk_size_gb=int(fields["disk_size_gb"]),
                preemptible=bool(fields["preemptible"]), taints=taints, oauth_scopes=SCOPES,
                shielded_instance_config=gke.ShieldedInstanceConfig(enable_secure_boot=True,
                                                                    enable_integrity_monitoring=True),
                workload_metadata_config=gke.WorkloadMetadataConfig(mode=gke.WorkloadMetadataConfig.Mode.GKE_METADATA),
                resource_labels=LABELS,
                linux_node_config=gke.LinuxNodeConfig(sysctls=sysctls) if sysctls else None,
            ),
        )

    def _wait(self, operation: Any, resource: Resource, ctx: Context, location: str, what: str) -> None:
        """Poll the GKE operation until DONE; raise the error it ended with."""
        name = f"projects/{resource.project}/locations/{location}/operations/{operation.name}"
        current = [operation]

        def done() -> bool:
            if current[0].status != current[0].Status.DONE:
                current[0] = self._api.get_operation(name=name)
            return bool(current[0].status == current[0].Status.DONE)

        wait_until(done, resource, ctx, what, TIMEOUT_SECONDS, POLL_SECONDS)
        finished = current[0]
        if finished.error.code or finished.error.message:
            message = finished.error.message or finished.status_message
            raise ProviderError(f"{resource.key}: create failed: {one_line(message)}")
