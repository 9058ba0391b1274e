"""Every one-off cloud resource a cluster needs, derived from its spec (CAVEdeployment's, pitfalls fixed).

What changes from CAVEdeployment's scripts, on purpose:
- No service-account keys (docs/pitfalls.md#p51): pods use Workload Identity, so each GCP service account gets a
  roles/iam.workloadIdentityUser binding for its Kubernetes ServiceAccount instead of a key file.
- Every Memorystore instance is named after the cluster (`pcg-cache` collided, docs/pitfalls.md#p53); the
  celery broker uses `noeviction`, so queued tasks are never evicted, the PCG cache `allkeys-lru`.
- Cloud SQL: the spec's engine version (never the end-of-life POSTGRES_9_6); the root password comes from Secret Manager
  and is never on a command line. Pods reach it through the Cloud SQL proxy: roles/cloudsql.client, not admin.
- Pub/Sub: the skeleton dead-letter topic and queue have real names, and the Pub/Sub service agent gets the
  publisher and subscriber roles dead-letter forwarding needs; the L2 cache trigger subscriptions exist
  whenever l2cache is enabled (not only when it was at launch time).
- Roles come from the catalogue (catalog.Service.google: API, role, project or bucket), not from a table here.
  The materialization GSA gets roles/cloudsql.admin, the narrowest predefined role with
  cloudsql.instances.import (CSV import/export through the Admin API). The Cloud SQL instance's own service
  account reads the upload bucket (objectViewer) and writes the dump bucket (objectCreator), instead of
  setup_materialization_bucket.sh's objectAdmin; its account is read from the instance, not from a describe.
- The proxy reads requester-pays buckets of other projects: objectViewer on each bucket (never created here)
  and roles/serviceusage.serviceUsageConsumer on the cluster's project, which those reads are billed to.
- Bigtable: SSD, manual scaling, exactly one cluster (no replication: docs/pitfalls.md#p48).
- Secret Manager holds every secret; values that are ours to choose are generated, the others are listed.

Resources come out in dependency order (each after everything in its `depends`).

One module of about 500 lines on purpose: it is one function of a spec (`desired`), section by section
(infrastructure, secrets, databases, Pub/Sub, DNS, Datastore, identities, then the APIs they need and the order),
and the sections share the derived names, the grants and the project bindings computed once in `desired`; the
fleet rules (validate/fleet/identity.py) read the same grants from here, and the runbook the same resources.
Split per section, every part would import the others' helpers back.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Literal

from compiler import catalog
from compiler.bootstrap.model import Ref, Resource
from compiler.spec.derive import (
    Names,
    SpecBucket,
    derive,
    network_name,
    pubsub_layout,
    secret_keys,
    secret_manager_name,
    spec_buckets,
    workload_identity_member,
    workload_pool,
)
from compiler.spec.model import (
    ClusterSpec,
    GlobalCluster,
    LocalCluster,
    Nglstate,
    NodePool,
    enabled_services,
    zone_owner,
    zone_project,
)

DNS_TTL = 300
# Kernel parameters of every node pool (GKE node system configuration, NodeConfig.linux_node_config.sysctls).
# CAVEdeployment's privileged `sysctl-buddy` sidecars set net.core.somaxconn=32768 in a loop (the uWSGI
# `listen` queues need it); GKE sets it on the node instead. Their other setting, net.ipv4.ip_local_port_range,
# is not a node-pool sysctl GKE accepts: it is namespaced and "safe", so the pods set it themselves
# (base/components/port-range). GKE takes values as strings.
NODE_SYSCTLS: dict[str, str] = {"net.core.somaxconn": "32768"}
DNS_ADMIN = "roles/dns.admin"


@dataclass(frozen=True)
class AddonRole:
    """A project role of an add-on's GCP service account, and where it is granted: the cluster's project, or
    each project holding a zone of the cluster's hostnames (`dns-projects`, see dns_projects)."""

    role: str
    on: Literal["project", "dns-projects"] = "project"
    why: str = ""  # the note of a binding outside the cluster's project ({project} names it)


# Project roles of GCP service accounts (daf-<role>-<env>) beyond what the catalogue's `google` entries of
# their services grant (the services' roles live there, catalog.GoogleApi): the add-ons'. Least privilege.
PROJECT_ROLES: dict[str, tuple[AddonRole, ...]] = {
    # cert-manager writes its DNS-01 TXT records into the zones of the hostnames. A zone owned by another
    # cluster is in its project: this cluster plans that cross-project grant (the owner's spec does not know
    # its users), so its operator needs setIamPolicy on the owner's DNS project.
    catalog.DNS_ROLE: (AddonRole(DNS_ADMIN, on="dns-projects",
                                 why="cert-manager solves DNS-01 in the zones of {project}"),),
    catalog.SECRETS_ROLE: (AddonRole("roles/secretmanager.secretAccessor"),),
    # the custom-metrics Stackdriver adapter reads Cloud Monitoring
    catalog.METRICS_ROLE: (AddonRole("roles/monitoring.viewer"),),
}
DATABASES = {"global": ("authentication", "infoservice"), "local": ("annotation", "materialization")}

# The Google API each kind of resource is created and read through: it must be enabled in the resource's project
# before bootstrap can touch the resource (a new project has them disabled). `project` is read before any API.
KIND_APIS: dict[str, str] = {
    "network": "compute.googleapis.com", "subnet": "compute.googleapis.com", "address": "compute.googleapis.com",
    "gke-cluster": "container.googleapis.com", "node-pool": "container.googleapis.com",
    "sql-instance": "sqladmin.googleapis.com", "sql-database": "sqladmin.googleapis.com",
    "sql-user": "sqladmin.googleapis.com", "redis": "redis.googleapis.com",
    "bigtable-instance": "bigtableadmin.googleapis.com", "pubsub-topic": "pubsub.googleapis.com",
    "pubsub-subscription": "pubsub.googleapis.com",
    "dns-zone": "dns.googleapis.com", "dns-record": "dns.googleapis.com",
    "service-account": "iam.googleapis.com", "sa-iam-binding": "iam.googleapis.com",
    "project-iam-binding": "cloudresourcemanager.googleapis.com", "secret": "secretmanager.googleapis.com",
    "bucket": "storage.googleapis.com", "bucket-iam-binding": "storage.googleapis.com",
    "datastore-database": "firestore.googleapis.com",
}
# The API a role's holder calls (pods through Workload Identity, the add-ons, the Cloud SQL instance's account):
# enabled in the project the role is granted on (a bucket's: the bucket's project). The catalogue's GoogleApi
# entries and the add-on roles all become IAM bindings, so the plan's bindings name every API the pods use.
ROLE_APIS: dict[str, str] = {
    "roles/bigtable.": "bigtable.googleapis.com", "roles/pubsub.": "pubsub.googleapis.com",
    "roles/storage.": "storage.googleapis.com", "roles/datastore.": "datastore.googleapis.com",
    "roles/cloudsql.": "sqladmin.googleapis.com",  # the Cloud SQL Auth proxy and CSV import/export
    "roles/monitoring.": "monitoring.googleapis.com", "roles/serviceusage.": "serviceusage.googleapis.com",
    "roles/secretmanager.": "secretmanager.googleapis.com", "roles/dns.": "dns.googleapis.com",
    # GKE's metadata server exchanges a Workload Identity token for the GCP service account's through it
    "roles/iam.workloadIdentityUser": "iamcredentials.googleapis.com",
}


def redis_names(spec: ClusterSpec) -> dict[str, str]:
    """Memorystore instance id → the spec path of the host it serves."""
    if isinstance(spec, GlobalCluster):
        return {f"daf-redis-{spec.name}": "redis.host"}
    return {f"daf-pcg-cache-{spec.name}": "redis.pcg_host", f"daf-celery-redis-{spec.name}": "redis.celery_host"}


def _infrastructure(spec: ClusterSpec, names: Names) -> list[Resource]:
    p, region, zone = spec.gcp.project, spec.gcp.region, spec.gcp.zone
    net, sub = network_name(spec), f"{network_name(spec)}-sub"
    pools = [
        {"name": pool.name, **_pool_fields(names.cluster_name, zone, pool)} for pool in spec.node_pools
    ]
    out = [
        Resource("project", p, p, note="must exist with billing; bootstrap reads its number, never creates it"),
        Resource("network", net, p, {"auto_create_subnetworks": False}, depends=(f"project/{p}",)),
        Resource("subnet", sub, p, {"region": region, "network": net, "ip_cidr_range": str(spec.network.subnet_cidr)},
                 depends=(f"network/{net}",)),
        Resource("address", names.cluster_name, p, {"region": region},
                 outputs={"address": str(spec.static_ip) if spec.static_ip else None},
                 spec_paths={"address": "static_ip"},
                 note="ingress-nginx serves on it; the DNS records point at it"),
        Resource("gke-cluster", names.cluster_name, p,
                 {"location": zone, "network": net, "subnetwork": sub, "workload_pool": workload_pool(p),
                  "release_channel": spec.release_channel},
                 params={"node_pools": pools, "kubernetes_version": spec.kubernetes_version},
                 depends=(f"subnet/{sub}",), note="created with its node pools, Workload Identity on"),
    ]
    for pool in pools:
        fields = {k: v for k, v in pool.items() if k != "name"}
        out.append(Resource("node-pool", str(pool["name"]), p, fields, depends=(f"gke-cluster/{names.cluster_name}",)))
    return out


def _pool_fields(cluster: str, zone: str, pool: NodePool) -> dict[str, object]:
    return {
        "cluster": cluster, "location": zone, "machine_type": pool.machine_type, "disk_size_gb": pool.disk_gb,
        "min_nodes": pool.min_nodes, "max_nodes": pool.max_nodes, "preemptible": pool.preemptible,
        "taints": pool.taints,
        "sysctls": dict(NODE_SYSCTLS),
    }


def _secrets(spec: ClusterSpec) -> list[Resource]:
    out = []
    for key in secret_keys(spec):
        name = secret_manager_name(spec, key)
        source = catalog.SECRET_SOURCES.get(key)
        hint = "" if source is None else (
            f"add {source}: gcloud secrets versions add {name} --project {spec.gcp.project} --data-file=FILE"
        )
        out.append(Resource("secret", name, spec.gcp.project, {"replication": "automatic"},
                            params={"value": "generate" if source is None else "operator", "hint": hint},
                            note=f"secrets.{key}" + (" (random, generated)" if source is None else "")))
    return out


def _databases(spec: ClusterSpec) -> list[Resource]:
    p, sql = spec.gcp.project, spec.cloud_sql
    password = f"secret/{secret_manager_name(spec, 'postgres_password')}"
    instance = Resource("sql-instance", sql.instance, p,
                        {"region": spec.gcp.region, "database_version": sql.database_version, "tier": sql.tier},
                        params={"root_password_secret": secret_manager_name(spec, "postgres_password")},
                        depends=(password,))
    out = [instance]
    out += [Resource("sql-database", db, p, {"instance": sql.instance}, depends=(instance.key,))
            for db in DATABASES[spec.kind]]
    out.append(Resource("sql-user", "postgres", p, {"instance": sql.instance},
                        params={"password_secret": secret_manager_name(spec, "postgres_password")},
                        depends=(instance.key, password)))
    if not spec.redis.in_cluster:
        net = f"network/{network_name(spec)}"
        for rid, path in redis_names(spec).items():
            if isinstance(spec, GlobalCluster):
                size, configs = spec.redis.memory_gb, {}
            elif "pcg-cache" in rid:
                size, configs = spec.redis.pcg_memory_gb, {"maxmemory-policy": "allkeys-lru"}
            else:
                size, configs = spec.redis.celery_memory_gb, {"maxmemory-policy": "noeviction"}
            host = spec.redis.host if isinstance(spec, GlobalCluster) else (
                spec.redis.pcg_host if "pcg-cache" in rid else spec.redis.celery_host)
            out.append(Resource("redis", rid, p, {"region": spec.gcp.region, "memory_size_gb": size, "tier": "BASIC",
                                                  "network": network_name(spec), "redis_configs": configs},
                                outputs={"host": host}, spec_paths={"host": path}, depends=(net,)))
    if isinstance(spec, LocalCluster):
        data = spec.data
        out.append(Resource("bigtable-instance", data.bigtable_instance, data.project,
                            {"zone": data.bigtable_zone or spec.gcp.zone, "storage_type": "SSD",
                             "serve_nodes": data.bigtable_nodes, "clusters": 1},
                            note="PyChunkedGraph tables; one cluster: replication breaks atomic row updates"))
    return out


def _pubsub(spec: LocalCluster, names: Names) -> list[Resource]:
    p = spec.gcp.project
    layout = pubsub_layout(spec, names)
    subs: list[Resource] = []
    for sub in layout.subscriptions:
        dead = sub.dead_letter
        fields = {"topic": sub.topic, "ack_deadline_seconds": sub.ack_deadline, "filter": sub.filter,
                  "dead_letter_topic": dead, "max_delivery_attempts": 5 if dead else 0,
                  "max_retry_delay_seconds": 10, "expires": False}
        depends = (f"pubsub-topic/{sub.topic}",) + ((f"pubsub-topic/{dead}",) if dead else ())
        subs.append(Resource("pubsub-subscription", sub.name, p, fields, depends=depends))
    grants: list[Resource] = []
    if any(sub.dead_letter for sub in layout.subscriptions):
        # Dead-letter forwarding runs as the Pub/Sub service agent: it must publish to the dead-letter topic
        # and acknowledge on the source subscriptions. Granted on the project; the agent's address
        # holds the project number, read from the project.
        agent = Ref(f"project/{p}", "pubsub_service_agent")
        grants = [Resource("project-iam-binding", binding_name(p, role, "pubsub-service-agent"), p,
                           {"role": role, "member": agent}, depends=(f"project/{p}",),
                           note="the Pub/Sub service agent, for dead-letter forwarding")
                  for role in ("roles/pubsub.publisher", "roles/pubsub.subscriber")]
    return [Resource("pubsub-topic", t, p) for t in layout.topics] + subs + grants


def _dns(spec: ClusterSpec, names: Names) -> list[Resource]:
    """The managed zones the hostnames use and one A record per hostname, in the project holding its zone.

    One DNS name is one zone in one project across the fleet: a zone this cluster owns is created here (its
    name servers go to the registrar); a zone of `dns.zone_owners` is planned too, in its owner's project and
    marked as owned there, so it is only read: the records depending on it wait until its owner's bootstrap
    created it, and this cluster never creates a second, undelegated zone for the same DNS name.
    """
    address = f"address/{names.cluster_name}"
    used = sorted(set(names.hostname_zones))
    zones = []
    for zone in used:
        if zone not in spec.dns.zones:
            continue
        owner, project = zone_owner(spec, zone), zone_project(spec, zone)
        fields = {"dns_name": spec.dns.zones[zone] + "."}
        if owner == spec.name:
            zones.append(Resource("dns-zone", zone, project, fields, outputs={"name_servers": None},
                                  note="set its name servers at the domain's registrar"))
        else:
            zones.append(Resource("dns-zone", zone, project, fields, owner=owner,
                                  note=f"created and delegated by {owner}'s bootstrap; only read here"))
    records = [
        Resource("dns-record", f"{host}.", zone_project(spec, zone),
                 {"zone": zone, "type": "A", "ttl": DNS_TTL, "rrdatas": [Ref(address, "address")]},
                 depends=(address, f"dns-zone/{zone}"))
        for host, zone in zip(names.hostnames, names.hostname_zones, strict=True)
    ]
    return zones + records


def dns_projects(spec: ClusterSpec, names: Names) -> list[str]:
    """The projects holding the zones of the cluster's hostnames: cert-manager solves DNS-01 there."""
    return sorted({zone_project(spec, zone) for zone in names.hostname_zones})


def _datastore(spec: ClusterSpec, bindings: Mapping[str, list[ProjectBinding]]) -> list[Resource]:
    """Firestore in Datastore mode, where a service keeps state in it (nglstate's links, PCG, pmanagement)."""
    if not any("roles/datastore.user" in granted for granted in service_roles(spec, bindings).values()):
        return []
    note = "the project's default database, in Datastore mode"
    ngl = spec.services.settings("nglstate", Nglstate)  # None on local clusters
    if ngl is not None and ngl.enabled:
        note += f"; nglstate keeps shortened links in its namespace {ngl.datastore_namespace}"
    return [Resource("datastore-database", "(default)", spec.gcp.project,
                     {"location": spec.gcp.region, "type": "DATASTORE_MODE"}, note=note)]


def binding_name(target: str, role: str, member: str) -> str:
    """The plan name of an IAM binding (its key is <kind>/<name>): <project or bucket>:<role>:<member>."""
    return f"{target}:{role}:{member}"


@dataclass(frozen=True)
class Grant:
    """One catalogue GoogleApi of an enabled service, resolved for a spec: `use.role` for the GCP service
    account of `account` on `project` (bucket None) or on `bucket` (kept in `project`)."""

    service: str
    account: str  # the role part of daf-<account>-<env>
    use: catalog.GoogleApi
    project: str
    bucket: str | None = None

    def key(self, email: str) -> str:
        """The plan key of the binding granting it to the GCP service account `email`."""
        member = f"serviceAccount:{email}"
        if self.bucket is None:
            return f"project-iam-binding/{binding_name(self.project, self.use.role, member)}"
        return f"bucket-iam-binding/{binding_name(self.bucket, self.use.role, member)}"


def owned_buckets(spec: ClusterSpec) -> list[SpecBucket]:
    """The buckets bootstrap creates: one per bucket, as the first spec field naming it says."""
    return list({b.bucket: b for b in reversed(spec_buckets(spec))}.values())[::-1]


def google_grants(spec: ClusterSpec, owned: Mapping[str, str] | None = None) -> list[Grant]:
    """Every grant the catalogue's `google` entries of the enabled services ask for (pods as their GSA).
    `owned`: bucket → project of the buckets bootstrap creates (default: owned_buckets)."""
    if owned is None:
        owned = {b.bucket: b.project for b in owned_buckets(spec)}
    data_project = spec.data.project if isinstance(spec, LocalCluster) else spec.gcp.project
    out: list[Grant] = []
    for name in enabled_services(spec):
        entry = catalog.BY_NAME.get(name)
        if entry is None or entry.service_account is None:
            continue
        for use in entry.google:
            if use.on == "bucket":
                out += [Grant(name, entry.service_account, use, owned.get(b, spec.gcp.project), b)
                        for b in catalog.bucket_names(spec, use.bucket_field)]
            else:
                out.append(Grant(name, entry.service_account, use,
                                 data_project if use.on == "data-project" else spec.gcp.project))
    return out


def sql_instance_bucket_roles(spec: ClusterSpec) -> list[tuple[str, str, str]]:
    """(bucket, role, why) the Cloud SQL instance's own service account needs (CSV import/export), sorted."""
    out: set[tuple[str, str, str]] = set()
    for name in enabled_services(spec):
        entry = catalog.BY_NAME.get(name)
        for need in entry.sql_instance_buckets if entry else ():
            out |= {(b, need.role, need.why) for b in catalog.bucket_names(spec, need.bucket_field)}
    return sorted(out)


@dataclass(frozen=True)
class ProjectBinding:
    """A project role of a GCP service account."""

    project: str
    role: str
    note: str = ""


def project_bindings(spec: ClusterSpec, names: Names, grants: list[Grant]) -> dict[str, list[ProjectBinding]]:
    """GCP service-account role → its project roles, for the enabled services (from the catalogue's `grants`)
    and the add-ons, in plan order: those on the cluster's project (by role), the add-on roles of other scopes,
    the catalogue's in other projects (by project and role). Every account is there, with roles or not."""
    p = spec.gcp.project
    enabled = enabled_services(spec)
    accounts: dict[str, tuple[AddonRole, ...]] = {}
    for name in enabled:
        entry = catalog.BY_NAME.get(name)
        if entry is not None and entry.service_account is not None:
            accounts.setdefault(entry.service_account, PROJECT_ROLES.get(entry.service_account, ()))
    adapter = catalog.needs_metrics_adapter(enabled)
    for addon in catalog.ADDON_SERVICE_ACCOUNTS:
        if addon != catalog.METRICS_ROLE or adapter:  # the adapter only where an HPA reads Cloud Monitoring
            accounts[addon] = PROJECT_ROLES[addon]
    scopes = {"dns-projects": dns_projects(spec, names)}
    out: dict[str, list[ProjectBinding]] = {}
    for account, addon_roles in sorted(accounts.items()):
        mine = [g for g in grants if g.account == account and g.bucket is None]
        own = {r.role for r in addon_roles if r.on == "project"} | {g.use.role for g in mine if g.project == p}
        bindings = [ProjectBinding(p, role) for role in sorted(own)]
        bindings += [ProjectBinding(project, r.role, "" if project == p else r.why.format(project=project))
                     for r in addon_roles if r.on != "project" for project in scopes[r.on]]
        elsewhere = {(g.project, g.use.role): g.use.api for g in mine if g.project != p}
        bindings += [ProjectBinding(project, role, f"{api} in the data project")
                     for (project, role), api in sorted(elsewhere.items())]
        out[account] = bindings
    return out


def service_roles(spec: ClusterSpec, bindings: Mapping[str, list[ProjectBinding]] | None = None,
                  ) -> dict[str, set[str]]:
    """GCP service-account role → the roles it holds on the cluster's project (`bindings`: project_bindings)."""
    if bindings is None:
        bindings = project_bindings(spec, derive(spec), google_grants(spec))
    return {account: {b.role for b in held if b.project == spec.gcp.project} for account, held in bindings.items()}


def _identity(spec: ClusterSpec, names: Names, owned: list[SpecBucket], grants: list[Grant],
              bindings: Mapping[str, list[ProjectBinding]]) -> list[Resource]:
    p = spec.gcp.project
    out: list[Resource] = []
    for role, held in bindings.items():
        account = f"daf-{role}-{spec.name}"
        email = names.gcp_service_account(role)
        sa_key = f"service-account/{account}"
        out.append(Resource("service-account", account, p, {"display_name": f"CAVE {role} ({spec.name})"}))
        member = f"serviceAccount:{email}"
        out += [Resource("project-iam-binding", binding_name(b.project, b.role, member), b.project,
                         {"role": b.role, "member": member}, depends=(sa_key,), note=b.note) for b in held]
        namespace, ksa = catalog.ADDON_SERVICE_ACCOUNTS.get(role, (spec.argocd.namespace, role))
        wi_member = workload_identity_member(p, namespace, ksa)
        out.append(Resource("sa-iam-binding", binding_name(email, "roles/iam.workloadIdentityUser", wi_member), p,
                            {"account": email, "role": "roles/iam.workloadIdentityUser", "member": wi_member},
                            depends=(sa_key, f"gke-cluster/{names.cluster_name}"),
                            note=f"Workload Identity for Kubernetes ServiceAccount {namespace}/{ksa}"))
    out += [Resource("bucket", b.bucket, b.project, {"location": b.location, "uniform_access": True}) for b in owned]
    projects = {b.bucket: b.project for b in owned}
    sql = f"sql-instance/{spec.cloud_sql.instance}"
    for bucket, bucket_role, why in sql_instance_bucket_roles(spec):
        out.append(Resource("bucket-iam-binding", binding_name(bucket, bucket_role, "cloud-sql-instance"),
                            projects.get(bucket, p),
                            {"bucket": bucket, "role": bucket_role, "member": Ref(sql, "service_account_member")},
                            depends=(f"bucket/{bucket}", sql) if bucket in projects else (sql,),
                            note=f"the Cloud SQL instance's own account: {why}"))
    on_buckets = {(g.bucket, g.use.role, g.account): g for g in grants if g.bucket is not None}
    for (bucket, bucket_role, role), grant in sorted(on_buckets.items()):
        member = f"serviceAccount:{names.gcp_service_account(role)}"
        sa_key = f"service-account/daf-{role}-{spec.name}"
        name = binding_name(bucket, bucket_role, member)
        fields = {"bucket": bucket, "role": bucket_role, "member": member}
        if grant.use.requester_pays:
            # Not our bucket (bootstrap never creates it); requests name our project as the one billed.
            out.append(Resource("bucket-iam-binding", name, grant.project, fields, params={"user_project": p},
                                depends=(sa_key,),
                                note="requester-pays bucket of another project: its owner may have to grant this"))
        else:
            out.append(Resource("bucket-iam-binding", name, grant.project, fields,
                                depends=(f"bucket/{bucket}", sa_key)))
    return out


def desired(spec: ClusterSpec) -> list[Resource]:
    """The cluster's one-off resources, each after the resources it depends on."""
    names = derive(spec)
    owned = owned_buckets(spec)
    grants = google_grants(spec, {b.bucket: b.project for b in owned})
    bindings = project_bindings(spec, names, grants)
    out = _infrastructure(spec, names) + _secrets(spec) + _databases(spec)
    if isinstance(spec, LocalCluster):
        out += _pubsub(spec, names)
    out += _dns(spec, names) + _datastore(spec, bindings) + _identity(spec, names, owned, grants, bindings)
    return order(_with_apis(spec, out))


def api_key(project: str, api: str) -> str:
    """The plan key of API `api` (e.g. compute.googleapis.com) in `project`."""
    return f"api/{project}:{api}"


def _role_api(role: str) -> str | None:
    return next((api for prefix, api in ROLE_APIS.items() if role.startswith(prefix)), None)


def _with_apis(spec: ClusterSpec, resources: list[Resource]) -> list[Resource]:
    """The Google APIs the resources and the role holders use, enabled first, in the cluster's project and (local)
    the data project; each resource in those projects then depends on the API it is created through.

    Projects of other clusters (a zone owner's DNS project) are theirs to enable: their bootstrap plans it."""
    projects = [spec.gcp.project]
    if isinstance(spec, LocalCluster) and spec.data.project not in projects:
        projects.append(spec.data.project)
    wanted: dict[str, dict[str, set[str]]] = {p: {} for p in projects}  # project → API → why (kinds, roles)
    out: list[Resource] = []
    for r in resources:
        used = KIND_APIS.get(r.kind)
        if used is not None and r.project in wanted and not r.owner:
            wanted[r.project].setdefault(used, set()).add(r.kind)
            r = replace(r, depends=(*r.depends, api_key(r.project, used)))
        role = r.fields.get("role") if r.kind.endswith("iam-binding") else None
        held = _role_api(role) if isinstance(role, str) else None
        if held is not None and r.project in wanted:
            wanted[r.project].setdefault(held, set()).add(f"holders of {role}")
        out.append(r)
    apis = [Resource("api", f"{p}:{api}", p, depends=(f"project/{p}",) if p == spec.gcp.project else (),
                     note=f"for {', '.join(sorted(why))}")
            for p in projects for api, why in sorted(wanted[p].items())]
    first = [r for r in out if r.kind == "project"]
    return first + apis + [r for r in out if r.kind != "project"]


def order(resources: list[Resource]) -> list[Resource]:
    """Stable topological order: each resource after its dependencies (unknown dependencies are ignored)."""
    by_key = {r.key: r for r in resources}
    placed: dict[str, Resource] = {}

    def place(r: Resource, stack: tuple[str, ...]) -> None:
        if r.key in placed:
            return
        if r.key in stack:
            raise ValueError(f"dependency cycle: {' -> '.join((*stack, r.key))}")
        for dep in r.depends:
            if dep in by_key:
                place(by_key[dep], (*stack, r.key))
        placed[r.key] = r

    for r in resources:
        place(r, ())
    return list(placed.values())
