"""Compute Engine resources of a cluster: its VPC network, subnet and regional static IP.

Uses google-cloud-compute (REST). Inserts return Compute `Operation`s. We call `insert_unary` and poll the
operation with our own Global/RegionOperationsClient: the ExtendedOperation future of `insert` builds its
operations client without our `client_options`, so it would poll Google instead of the configured endpoint.
"""

from __future__ import annotations

from typing import Any

from compiler.bootstrap.gcp_common import (
    create_or_exists,
    one_line,
    read_or_none,
    resolved,
    rest_client,
    short_name,
    wait_until,
)
from compiler.bootstrap.model import Context, ProviderError, Resource

API = "compute"
POLL_SECONDS = 3.0  # default; CAVE_GITOPS_POLL_SECONDS overrides
TIMEOUT_SECONDS = 10 * 60
CLIENTS = {"network": "NetworksClient", "subnet": "SubnetworksClient", "address": "AddressesClient",
           "global-operations": "GlobalOperationsClient", "region-operations": "RegionOperationsClient"}


class ComputeProvider:
    """network, subnet and address (a regional EXTERNAL IP the ingress load balancer uses)."""

    kinds = frozenset({"network", "subnet", "address"})

    def __init__(self) -> None:
        self._clients: dict[str, Any] = {}

    # ------------------------------------------------------------------ clients

    def _client(self, kind: str) -> Any:
        """The google-cloud-compute client for `kind`, built on first use."""
        if kind not in self._clients:
            self._clients[kind] = rest_client("google.cloud.compute_v1", CLIENTS[kind], API)
        return self._clients[kind]

    # ------------------------------------------------------------------ observe

    def observe(self, resource: Resource, ctx: Context) -> dict[str, Any] | None:
        return read_or_none(resource, lambda: self._observe(resource))

    def _observe(self, resource: Resource) -> dict[str, Any]:
        if resource.kind == "network":
            net = self._client("network").get(project=resource.project, network=resource.name)
            return {"auto_create_subnetworks": bool(net.auto_create_subnetworks)}
        if resource.kind == "subnet":
            sub = self._client("subnet").get(project=resource.project, region=str(resource.fields["region"]),
                                             subnetwork=resource.name)
            return {"region": short_name(sub.region), "network": short_name(sub.network),
                    "ip_cidr_range": sub.ip_cidr_range}
        if resource.kind == "address":
            addr = self._client("address").get(project=resource.project, region=str(resource.fields["region"]),
                                               address=resource.name)
            return {"region": short_name(addr.region), "address": addr.address or None}
        raise ProviderError(f"{resource.key}: kind not handled by the compute provider")

    # ------------------------------------------------------------------ create

    def create(self, resource: Resource, ctx: Context) -> None:
        create_or_exists(resource, lambda: self._create(resource, ctx))  # never updates an existing resource

    def _create(self, resource: Resource, ctx: Context) -> None:
        from google.cloud import compute_v1

        fields = resolved(resource, ctx)
        project = resource.project
        if resource.kind == "network":
            network = compute_v1.Network(name=resource.name,
                                         auto_create_subnetworks=bool(fields["auto_create_subnetworks"]))
            operation = self._client("network").insert_unary(project=project, network_resource=network)
        elif resource.kind == "subnet":
            subnet = compute_v1.Subnetwork(
                name=resource.name, ip_cidr_range=str(fields["ip_cidr_range"]),
                network=f"projects/{project}/global/networks/{fields['network']}")
            operation = self._client("subnet").insert_unary(project=project, region=str(fields["region"]),
                                                            subnetwork_resource=subnet)
        elif resource.kind == "address":
            address = compute_v1.Address(name=resource.name, address_type="EXTERNAL")
            operation = self._client("address").insert_unary(project=project, region=str(fields["region"]),
                                                             address_resource=address)
        else:
            raise ProviderError(f"{resource.key}: kind not handled by the compute provider")
        self._wait(operation, resource, ctx, fields.get("region"))

    def _wait(self, operation: Any, resource: Resource, ctx: Context, region: str | None) -> None:
        """Poll a Compute operation until DONE; raise its error (409 inside the operation counts as existing)."""
        current = [operation]

        def done() -> bool:
            if current[0].status == current[0].Status.DONE:
                return True
            name = current[0].name
            if region:
                current[0] = self._client("region-operations").get(project=resource.project, region=region,
                                                                    operation=name)
            else:
                current[0] = self._client("global-operations").get(project=resource.project, operation=name)
            return bool(current[0].status == current[0].Status.DONE)

        wait_until(done, resource, ctx, f"{resource.kind} creation", TIMEOUT_SECONDS, POLL_SECONDS)
        finished = current[0]
        errors = list(finished.error.errors) if finished.error else []
        if errors and all(e.code in ("RESOURCE_ALREADY_EXISTS", "ALREADY_EXISTS") for e in errors):
            return
        if errors or finished.http_error_status_code:
            message = "; ".join(one_line(e.message) for e in errors) or finished.http_error_message
            raise ProviderError(f"{resource.key}: create failed: {message}")
