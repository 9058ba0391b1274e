"""Values computed from a spec (never typed in): cluster, hostname, URL, queue, account and secret names."""

from __future__ import annotations

from dataclasses import dataclass

from compiler import catalog
from compiler.spec.model import ClusterSpec, GlobalCluster, LocalCluster, enabled_services
from compiler.spec.yamlio import Loc

ACME_SERVERS = {
    "production": "https://acme-v02.api.letsencrypt.org/directory",
    "staging": "https://acme-staging-v02.api.letsencrypt.org/directory",
}


@dataclass(frozen=True)
class Names:
    """Everything the templates and the compiler derive from one spec; templates see it as `names`."""

    env: str
    kind: str
    project: str
    cluster_name: str
    primary_hostname: str
    hostnames: tuple[str, ...]
    hostname_zones: tuple[str, ...]
    global_server: str
    global_server_url: str
    local_server_url: str
    auth_url: str
    sticky_auth_url: str
    info_url: str
    schema_url: str
    cloudsql_instance: str
    issuer_name: str
    acme_server: str
    certificate_secret: str
    # local clusters only (empty strings on a global cluster)
    data_project: str = ""
    bigtable_instance: str = ""
    limiter_uri: str = ""
    pcg_edits_exchange: str = ""
    pcg_low_priority_exchange: str = ""
    pcg_remesh_queue: str = ""
    pcg_low_priority_remesh_queue: str = ""
    l2cache_exchange: str = ""
    l2cache_update_queue: str = ""
    l2cache_trigger_queue: str = ""
    l2cache_trigger_low_priority_queue: str = ""
    skeleton_low_priority_exchange: str = ""
    skeleton_high_priority_exchange: str = ""
    skeleton_low_priority_queue: str = ""
    skeleton_high_priority_queue: str = ""
    skeleton_dead_letter_exchange: str = ""
    skeleton_dead_letter_queue: str = ""
    celery_producer_queue: str = "workflow"
    celery_consumer_queue: str = "process"
    celery_orchestration_queue: str = "orchestration"
    pcg_server_logs_ns: str = ""

    def gcp_service_account(self, role: str) -> str:
        """GCP service account e-mail of a role, kept as CAVEdeployment named them (daf-<role>-<env>)."""
        return f"daf-{role}-{self.env}@{self.project}.iam.gserviceaccount.com"


def default_secret_name(cluster: str, key: str) -> str:
    """The Secret Manager secret holding `key` where the spec does not name one: <cluster>-<key-with-dashes>."""
    return f"{cluster}-{key.replace('_', '-')}"


def secret_manager_name(spec: ClusterSpec, key: str) -> str:
    """The Secret Manager secret holding `key`: the spec's choice, else default_secret_name."""
    chosen: str | None = getattr(spec.secrets, key)
    return chosen or default_secret_name(spec.name, key)


def secret_keys(spec: ClusterSpec) -> list[str]:
    """Keys of the spec's `secrets:` the enabled services read (the Postgres password always: Cloud SQL's)."""
    services = [catalog.BY_NAME[name] for name in enabled_services(spec) if name in catalog.BY_NAME]
    return sorted({"postgres_password", *(key for s in services for key in s.secrets)})


@dataclass(frozen=True)
class Subscription:
    """A Pub/Sub subscription of the enabled services: its topic, ack deadline, filter and dead-letter topic."""

    name: str
    topic: str
    ack_deadline: int
    filter: str = ""
    dead_letter: str = ""


@dataclass(frozen=True)
class PubsubLayout:
    topics: tuple[str, ...]
    subscriptions: tuple[Subscription, ...]


def pubsub_layout(spec: LocalCluster, names: Names) -> PubsubLayout:
    """The Pub/Sub topics and subscriptions of the enabled services (bootstrap creates them; no two clusters
    may share one). The L2 cache trigger subscriptions exist whenever l2cache runs beside the PCG edits topic."""
    enabled = enabled_services(spec)
    topics: list[str] = []
    subs: list[Subscription] = []
    high, low = 'attributes.remesh_priority="true"', 'attributes.remesh_priority="false"'
    edits = "pychunkedgraph" in enabled or "meshing" in enabled
    if edits:
        topics += [names.pcg_edits_exchange, names.pcg_low_priority_exchange]
        subs += [Subscription(names.pcg_remesh_queue, names.pcg_edits_exchange, 600, high),
                 Subscription(names.pcg_low_priority_remesh_queue, names.pcg_edits_exchange, 600, low)]
    if "l2cache" in enabled:
        topics.append(names.l2cache_exchange)
        subs.append(Subscription(names.l2cache_update_queue, names.l2cache_exchange, 60))
        if edits:
            subs += [Subscription(names.l2cache_trigger_queue, names.pcg_edits_exchange, 600, high),
                     Subscription(names.l2cache_trigger_low_priority_queue, names.pcg_edits_exchange, 600, low)]
    if "skeletoncache" in enabled:
        dead = names.skeleton_dead_letter_exchange
        topics += [dead, names.skeleton_low_priority_exchange, names.skeleton_high_priority_exchange]
        subs += [Subscription(names.skeleton_dead_letter_queue, dead, 180),
                 Subscription(names.skeleton_low_priority_queue, names.skeleton_low_priority_exchange, 180,
                              dead_letter=dead),
                 Subscription(names.skeleton_high_priority_queue, names.skeleton_high_priority_exchange, 180,
                              dead_letter=dead)]
    return PubsubLayout(tuple(topics), tuple(subs))


# The spec fields naming buckets the cluster writes (bootstrap creates them), in plan order, and whether each is
# in the data project (else the cluster's project): the catalogue's bucket_field entries that are not
# requester-pays (tests/spec/test_derive.py checks the two agree).
OWNED_BUCKET_FIELDS: tuple[tuple[str, bool], ...] = (
    ("services.nglstate.bucket", False),
    ("data.pcg_bucket", True),
    ("services.skeletoncache.bucket", False),
    ("services.materializationengine.upload_bucket", False),
    ("services.materializationengine.dump_bucket", False),
)


@dataclass(frozen=True)
class SpecBucket:
    """A bucket the cluster writes, as the spec names it, and where bootstrap creates it."""

    bucket: str
    path: str  # the spec value: the bucket or bucket/prefix
    field: str  # its dotted spec path
    project: str
    location: str  # the region, upper-case

    @property
    def loc(self) -> Loc:
        return tuple(self.field.split("."))


def spec_buckets(spec: ClusterSpec) -> list[SpecBucket]:
    """Every bucket the cluster writes, one per spec field that names one (a bucket may be named twice)."""
    out: list[SpecBucket] = []
    for field, in_data_project in OWNED_BUCKET_FIELDS:
        value = catalog.field_value(spec, field)
        if isinstance(value, str) and (bucket := catalog.bucket_of(value)):
            where = spec.data if in_data_project and isinstance(spec, LocalCluster) else spec.gcp
            out.append(SpecBucket(bucket, value, field, where.project, where.region.upper()))
    return out


def network_name(spec: ClusterSpec) -> str:
    """The VPC bootstrap creates for the cluster (and its Memorystore instances are reached in)."""
    return spec.network.name or f"daf-{spec.name}-network"


def workload_pool(project: str) -> str:
    """The Workload Identity pool of a GKE cluster in `project`."""
    return f"{project}.svc.id.goog"


def workload_identity_member(project: str, namespace: str, ksa: str) -> str:
    """The IAM member a Kubernetes ServiceAccount acts as under Workload Identity (granted workloadIdentityUser)."""
    return f"serviceAccount:{workload_pool(project)}[{namespace}/{ksa}]"


def served_hostnames(spec: ClusterSpec) -> tuple[str, ...]:
    """The hostnames a cluster serves: `<name>.<dns.domain>` first, then `dns.extra_hostnames`."""
    return (f"{spec.name}.{spec.dns.domain}", *(h.hostname for h in spec.dns.extra_hostnames))


def derive(spec: ClusterSpec) -> Names:
    env = spec.name
    hostnames = served_hostnames(spec)
    primary = hostnames[0]
    zones = (spec.dns.zone, *(h.zone for h in spec.dns.extra_hostnames))
    gs = spec.global_server if isinstance(spec, LocalCluster) else primary
    common = dict(
        env=env,
        kind=spec.kind,
        project=spec.gcp.project,
        cluster_name=f"daf-{env}",
        primary_hostname=primary,
        hostnames=hostnames,
        hostname_zones=zones,
        global_server=gs,
        global_server_url=f"https://{gs}",
        local_server_url=f"https://{primary}",
        auth_url=f"{gs}/auth",
        sticky_auth_url=f"{gs}/sticky_auth",
        info_url=f"{gs}/info",
        schema_url=f"https://{gs}/schema",
        cloudsql_instance=f"{spec.gcp.project}:{spec.gcp.region}:{spec.cloud_sql.instance}",
        issuer_name=f"letsencrypt-{spec.tls.acme}",
        acme_server=ACME_SERVERS[spec.tls.acme],
        certificate_secret=f"{env}-cert",
    )
    if isinstance(spec, GlobalCluster):
        return Names(**common)  # type: ignore[arg-type]
    return Names(
        **common,  # type: ignore[arg-type]
        data_project=spec.data.project,
        bigtable_instance=spec.data.bigtable_instance,
        limiter_uri=f"redis://{spec.redis.pcg_host}:6379/0",
        pcg_edits_exchange=f"{env}_PCG_EDIT",
        pcg_low_priority_exchange=f"{env}_PCG_EDIT_LOW_PRIORITY",
        pcg_remesh_queue=f"{env}_PCG_HIGH_PRIORITY_REMESH",
        pcg_low_priority_remesh_queue=f"{env}_PCG_LOW_PRIORITY_REMESH",
        l2cache_exchange=f"{env}_L2CACHE",
        l2cache_update_queue=f"{env}_L2CACHE_WORKER",
        l2cache_trigger_queue=f"{env}_L2CACHE_HIGH_PRIORITY_TRIGGER",
        l2cache_trigger_low_priority_queue=f"{env}_L2CACHE_LOW_PRIORITY_TRIGGER",
        skeleton_low_priority_exchange=f"{env}_SKELETON_CACHE_LOW_PRIORITY",
        skeleton_high_priority_exchange=f"{env}_SKELETON_CACHE_HIGH_PRIORITY",
        skeleton_low_priority_queue=f"{env}_SKELETON_CACHE_WORKER_LOW_PRIORITY",
        skeleton_high_priority_queue=f"{env}_SKELETON_CACHE_WORKER_HIGH_PRIORITY",
        skeleton_dead_letter_exchange=f"{env}_SKELETON_CACHE_DEAD_LETTER",
        skeleton_dead_letter_queue=f"{env}_SKELETON_CACHE_WORKER_DEAD_LETTER",
        pcg_server_logs_ns=f"pcg_server_logs_{env}",
    )
