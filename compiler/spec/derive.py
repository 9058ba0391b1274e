"""Values computed from a spec (never typed in): cluster, hostname, URL, queue, account and secret names."""

from __future__ import annotations

from dataclasses import dataclass

from compiler.spec.model import ClusterSpec, GlobalCluster, LocalCluster

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


def secret_manager_name(spec: ClusterSpec, key: str) -> str:
    """The Secret Manager secret holding `key`: the spec's choice, else <cluster>-<key-with-dashes>."""
    chosen: str | None = getattr(spec.secrets, key)
    return chosen or f"{spec.name}-{key.replace('_', '-')}"


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
