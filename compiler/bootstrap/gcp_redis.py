"""Memorystore for Redis instances (google-cloud-redis CloudRedisClient, REST).

An instance is peered to the cluster's VPC (DIRECT_PEERING), so pods reach it on its private `host`; that
host is chosen by Google, so it is an output the spec holds (`redis.host` ...), compared on every plan.
Creation is a google.longrunning operation; bootstrap never resizes or deletes an instance (it holds data).
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

API = "redis"
POLL_SECONDS = 10.0  # default; CAVE_GITOPS_POLL_SECONDS overrides
TIMEOUT_SECONDS = 30 * 60  # a basic instance takes about 5 minutes, standard HA longer


class RedisProvider:
    """redis (fields region, memory_size_gb, tier, network, redis_configs; output host)."""

    kinds = frozenset({"redis"})
    _api = cached_property(lambda self: rest_client("google.cloud.redis_v1", "CloudRedisClient", API))

    def observe(self, resource: Resource, ctx: Context) -> dict[str, Any] | None:
        region = str(resource.fields["region"])
        instance = read_or_none(resource, lambda: self._api.get_instance(
            name=f"projects/{resource.project}/locations/{region}/instances/{resource.name}"))
        if instance is None:
            return None
        return {"region": instance.name.split("/")[3], "memory_size_gb": int(instance.memory_size_gb),
                "tier": instance.tier.name, "network": short_name(instance.authorized_network),
                "redis_configs": dict(sorted(instance.redis_configs.items())), "host": instance.host or None}

    def create(self, resource: Resource, ctx: Context) -> None:
        from google.cloud import redis_v1

        fields = resolved(resource, ctx)
        tier = str(fields["tier"])
        if tier not in redis_v1.Instance.Tier.__members__ or tier == "TIER_UNSPECIFIED":
            raise ProviderError(f"{resource.key}: tier {tier!r} is not BASIC or STANDARD_HA")
        instance = redis_v1.Instance(
            tier=getattr(redis_v1.Instance.Tier, tier), memory_size_gb=int(fields["memory_size_gb"]),
            authorized_network=f"projects/{resource.project}/global/networks/{fields['network']}",
            connect_mode=redis_v1.Instance.ConnectMode.DIRECT_PEERING,
            redis_configs={str(k): str(v) for k, v in dict(fields.get("redis_configs") or {}).items()},
            labels=LABELS,
        )
        parent = f"projects/{resource.project}/locations/{fields['region']}"
        create_or_exists(resource, lambda: operation_result(
            self._api.create_instance(parent=parent, instance_id=resource.name, instance=instance),
            resource, ctx, "Memorystore instance creation", TIMEOUT_SECONDS, POLL_SECONDS))
