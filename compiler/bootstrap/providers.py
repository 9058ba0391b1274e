"""Which provider (Google API family) handles each resource kind; imported only when first needed."""

from __future__ import annotations

import importlib
from functools import cache

from compiler.bootstrap.model import Provider

PROVIDERS: dict[str, tuple[str, str]] = {
    "api": ("gcp_serviceusage", "ServiceUsageProvider"),
    "network": ("gcp_compute", "ComputeProvider"),
    "subnet": ("gcp_compute", "ComputeProvider"),
    "address": ("gcp_compute", "ComputeProvider"),
    "gke-cluster": ("gcp_container", "ContainerProvider"),
    "node-pool": ("gcp_container", "ContainerProvider"),
    "redis": ("gcp_redis", "RedisProvider"),
    "bigtable-instance": ("gcp_bigtable", "BigtableProvider"),
    "sql-instance": ("gcp_sql", "SqlProvider"),
    "sql-database": ("gcp_sql", "SqlProvider"),
    "sql-user": ("gcp_sql", "SqlProvider"),
    "bucket": ("gcp_storage", "StorageProvider"),
    "bucket-iam-binding": ("gcp_storage", "StorageProvider"),
    "dns-record": ("gcp_dns", "DnsProvider"),
    "dns-zone": ("gcp_dns", "DnsProvider"),
    "secret": ("gcp_secrets", "SecretsProvider"),
    "project": ("gcp_iam", "IamProvider"),
    "service-account": ("gcp_iam", "IamProvider"),
    "project-iam-binding": ("gcp_iam", "IamProvider"),
    "sa-iam-binding": ("gcp_iam", "IamProvider"),
    "pubsub-topic": ("gcp_pubsub", "PubsubProvider"),
    "pubsub-subscription": ("gcp_pubsub", "PubsubProvider"),
    "datastore-database": ("gcp_firestore", "FirestoreProvider"),
}


@cache
def _instance(module: str, cls: str) -> Provider:
    provider: Provider = getattr(importlib.import_module(f"compiler.bootstrap.{module}"), cls)()
    return provider


def provider_for(kind: str) -> Provider:
    """The (shared) provider instance for `kind`."""
    module, cls = PROVIDERS[kind]
    return _instance(module, cls)


def reset() -> None:
    """Forget provider instances (and their clients), e.g. after endpoints or credentials changed."""
    _instance.cache_clear()
