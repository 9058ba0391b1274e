"""The Bigtable instance PyChunkedGraph keeps its tables in (Bigtable Admin API v2, REST), in the data project.

Created as PyChunkedGraph needs it (docs/pitfalls.md#p48): SSD storage, manual scaling (serve_nodes, no autoscaling)
and exactly one cluster `<instance>-c1` in the deployment's zone, because replication breaks the atomic row
updates and strong consistency PyChunkedGraph relies on. `observe` reports the number of clusters, so an
instance someone replicated shows up as differing. Bootstrap never resizes or deletes it (it holds data).
"""

from __future__ import annotations

from functools import cached_property
from typing import Any

from compiler.bootstrap.gcp_common import (
    LABELS,
    create_or_exists,
    operation_result,
    read_or_none,
    resolved,
    rest_client,
    short_name,
)
from compiler.bootstrap.model import Context, ProviderError, Resource

API = "bigtableadmin"
POLL_SECONDS = 5.0  # default; CAVE_GITOPS_POLL_SECONDS overrides
TIMEOUT_SECONDS = 15 * 60


class BigtableProvider:
    """bigtable-instance (fields zone, storage_type, serve_nodes, clusters)."""

    kinds = frozenset({"bigtable-instance"})
    _api = cached_property(lambda self: rest_client("google.cloud.bigtable_admin_v2", "BigtableInstanceAdminClient",
                                                     API))

    def observe(self, resource: Resource, ctx: Context) -> dict[str, Any] | None:
        name = f"projects/{resource.project}/instances/{resource.name}"
        listed = read_or_none(resource, lambda: self._clusters(name))
        if listed is None:
            return None
        clusters = sorted(listed.clusters, key=lambda c: c.name)
        if not clusters:
            return {"zone": "", "storage_type": "", "serve_nodes": 0, "clusters": 0}
        first = clusters[0]
        return {"zone": short_name(first.location), "storage_type": first.default_storage_type.name,
                "serve_nodes": int(first.serve_nodes), "clusters": len(clusters)}

    def create(self, resource: Resource, ctx: Context) -> None:
        from google.cloud import bigtable_admin_v2 as admin

        fields = resolved(resource, ctx)
        if int(fields.get("clusters", 1)) != 1:
            raise ProviderError(f"{resource.key}: bootstrap creates exactly one cluster (replication off), "
                                f"not {fields['clusters']}")
        storage = str(fields["storage_type"])
        if storage not in ("SSD", "HDD"):
            raise ProviderError(f"{resource.key}: storage_type {storage!r} is not SSD or HDD")
        project = resource.project
        cluster = admin.Cluster(location=f"projects/{project}/locations/{fields['zone']}",
                                serve_nodes=int(fields["serve_nodes"]),
                                default_storage_type=getattr(admin.StorageType, storage))
        instance = admin.Instance(display_name=resource.name[:30], type_=admin.Instance.Type.PRODUCTION,
                                  labels=LABELS)
        create_or_exists(resource, lambda: operation_result(
            self._api.create_instance(parent=f"projects/{project}", instance_id=resource.name, instance=instance,
                                      clusters={f"{resource.name}-c1": cluster}),
            resource, ctx, "Bigtable instance creation", TIMEOUT_SECONDS, POLL_SECONDS))

    def _clusters(self, name: str) -> Any:
        """The instance's clusters (NotFound when there is no such instance)."""
        self._api.get_instance(name=name)
        return self._api.list_clusters(parent=name)
