"""The cluster-wide sections of a spec: identity, gcp, global_server, data, tls, docker_repository,
kubernetes_version, node_pools, cloud_sql, static_ip, redis, argocd, datastacks and excluded groups."""

from __future__ import annotations

import re

from compiler.importenv import values as envvalues
from compiler.importenv.catalogue import FIXED_VALUES, LAUNCH_POOLS, SQL_DEFAULTS
from compiler.importenv.envfile import Computed
from compiler.importenv.mapping import NAME_MAX, NAME_RE, Mapper, strip_gs
from compiler.importenv.specdoc import Block, Commented, Entry, Flow, Items, Origin
from compiler.spec.model import K8S_MAX_MINOR, K8S_MIN_MINOR

KUBERNETES_VERSION = f"1.{min(max(31, K8S_MIN_MINOR), K8S_MAX_MINOR)}"
ACME = {"https://acme-v02.api.letsencrypt.org/directory": "production",
        "https://acme-staging-v02.api.letsencrypt.org/directory": "staging"}


def identity(m: Mapper, top: Block) -> None:
    top.add("kind", m.kind)
    var = m.var("ENVIRONMENT")
    env_name = m.required("ENVIRONMENT", "name")
    if m.name_override:
        m.name = m.name_override
        entry = top.add("name", m.name, m.origin(var))
        if env_name and env_name != m.name:
            m.decision(entry, f"--name {m.name} differs from ENVIRONMENT={env_name}: the names this "
                              f"spec derives (cluster daf-{m.name}, service accounts, Pub/Sub topics, "
                              f"secret names) differ from the running cluster's.")
        return
    m.name = env_name
    if env_name and (not NAME_RE.match(env_name) or len(env_name) > NAME_MAX):
        m.fail(var, f"ENVIRONMENT {env_name!r} is not a valid cluster name (lowercase letters, digits and "
                    f"'-', starting with a letter, at most {NAME_MAX} characters): pass --name NAME")
    top.add("name", env_name, m.origin(var))


def gcp(m: Mapper, top: Block) -> None:
    gcp = Block()
    for key, name in (("project", "PROJECT_NAME"), ("region", "REGION"), ("zone", "ZONE")):
        gcp.add(key, m.required(name, f"gcp.{key}"), m.origin(m.var(name)))
    top.add("gcp", gcp)


def global_server(m: Mapper, top: Block) -> None:
    var = m.var("GLOBAL_SERVER")
    value = m.required("GLOBAL_SERVER", "global_server")
    bare = re.sub(r"^[a-z]+://", "", value).split("/")[0].lower()
    entry = top.add("global_server", bare, m.origin(var))
    if bare != value:
        entry.comment = "GLOBAL_SERVER without scheme or path: the URLs are derived (docs/pitfalls.md#p13)"


def data(m: Mapper, top: Block) -> None:
    data = Block()
    data.add("project", m.required("DATA_PROJECT_NAME", "data.project"),
             m.origin(m.var("DATA_PROJECT_NAME")))
    region = m.text("DATA_REGION", "data.region")
    if region:
        data.add("region", region, m.origin(m.var("DATA_REGION")))
    else:
        gcp_region = m.var("REGION")
        data.add("region", (gcp_region.text() if gcp_region else "") or "",
                 comment="DATA_REGION is not set: assumed the cluster's REGION")
        m.note("assumption", None, "data.region: DATA_REGION is not set; assumed REGION")
    data.add("bigtable_instance", m.required("BIGTABLE_INSTANCE_NAME", "data.bigtable_instance"),
             m.origin(m.var("BIGTABLE_INSTANCE_NAME")))
    bucket = m.text("PCG_BUCKET_NAME", "data.pcg_bucket")
    if bucket:
        entry = data.add("pcg_bucket", strip_gs(bucket), m.origin(m.var("PCG_BUCKET_NAME")))
        if bucket.startswith("gs://"):
            entry.comment = "gs:// dropped"
    top.add("data", data)


def tls(m: Mapper, top: Block) -> None:
    tls = Block()
    tls.add("email", m.required("LETSENCRYPT_EMAIL", "tls.email"), m.origin(m.var("LETSENCRYPT_EMAIL")))
    server_var = m.var("LETSENCRYPT_SERVER")
    server = m.text("LETSENCRYPT_SERVER", "tls.acme")
    acme = tls.add("acme", ACME.get(server or "", "production"), m.origin(server_var))
    if server and server not in ACME:
        m.decision(acme, "LETSENCRYPT_SERVER is not a Let's Encrypt directory; the spec supports "
                         "production and staging only.")
    issuer = m.var("LETSENCRYPT_ISSUER_NAME")
    issuer_name = issuer.text() if issuer else None
    if issuer_name and acme.value == "production" and "staging" in issuer_name:
        acme.comment = f"LETSENCRYPT_ISSUER_NAME={issuer_name} but the server is production (docs/pitfalls.md#p43)"
    top.add("tls", tls)


def node_pools(m: Mapper, top: Block) -> None:
    pools = [dict(p) for p in LAUNCH_POOLS[m.kind]]
    entry = top.add("node_pools", Items([Flow(p) for p in pools]))
    entry.above.append("node pools as CAVEdeployment's launch_cluster.sh creates them (the env file names no "
                       f"machine types); check `gcloud container node-pools list --cluster daf-{m.name} "
                       f"--zone {m.zone()}`")
    m.note("assumption", None, "node_pools: from CAVEdeployment's launch_cluster.sh")
    renamed = []
    for name, default in FIXED_VALUES.items():
        if name.endswith("_POOL") and (v := m.var(name)) and v.text() not in (None, default):
            renamed.append(f"{name}={v.text()}")
    if renamed:
        m.decision(entry, f"the env file renames node pools ({', '.join(renamed)}); the bases select the "
                          "standard names standard-pool, lightweight-pool, mesh-pool and core-pool.")


def static_ip(m: Mapper, top: Block) -> None:
    """The regional address daf-<name>: the env file looks it up live; DNS records point at it."""
    var = m.var("EXTERNAL_IP_ADDRESS_WO_QUOTES")
    value = m.text("EXTERNAL_IP_ADDRESS_WO_QUOTES", "static_ip")
    if value and re.fullmatch(r"[0-9]{1,3}(\.[0-9]{1,3}){3}", value.strip("'\"")):
        top.add("static_ip", value.strip("'\""), m.origin(var))
        return
    region = (v.text() if (v := m.var("REGION")) else None) or "REGION"
    todo = (f"EXTERNAL_IP_ADDRESS_WO_QUOTES is looked up live (empty until the address exists) and the DNS "
            "records point at that address: "
            f"set static_ip to it (`gcloud compute addresses describe daf-{m.name} --region {region} "
            "--format='value(address)'`)" + ("; `build` refuses this cluster until then." if m.gitops
                                              else "."))
    top.entries.append(Entry("static_ip", Commented([f"static_ip: <the address of daf-{m.name}>"]), todo=todo))


def argocd_destination(m: Mapper, top: Block) -> None:
    if not m.gitops:
        return
    entry = top.add("argocd", Flow({"name": f"daf-{m.name}"}))
    m.decision(entry, f"the Argo CD destination: register the cluster as daf-{m.name} (`argocd cluster "
                      f"add CONTEXT --name daf-{m.name}`), or use {{server: https://kubernetes.default.svc}} "
                      "for the cluster Argo CD runs in.")


def cloud_sql(m: Mapper, top: Block) -> None:
    sql = Block()
    sql.add("instance", m.required("SQL_INSTANCE_NAME", "cloud_sql.instance"),
            m.origin(m.var("SQL_INSTANCE_NAME")))
    if m.kind == "local":
        sql.add("database_version", "POSTGRES_13", comment="launch_cluster.sh creates POSTGRES_13")
        m.note("assumption", None, "cloud_sql.database_version: POSTGRES_13, as launch_cluster.sh creates it")
    else:
        version = sql.add("database_version", "POSTGRES_13")
        m.decision(version, "CAVEdeployment's global launch_cluster.sh creates POSTGRES_9_6 (end of life, "
                            "docs/pitfalls.md#p54), which the spec does not accept: upgrade the instance and set the "
                            "version it runs.")
    default_cpu, default_mem = SQL_DEFAULTS[m.kind]
    cpu = m.number("SQL_INSTANCE_CPU", "cloud_sql.tier") or default_cpu
    memory = m.number("SQL_INSTANCE_MEMORY", "cloud_sql.tier") or default_mem
    sql.add("tier", f"db-custom-{cpu}-{memory * 1024}", m.origin(m.var("SQL_INSTANCE_CPU")),
            comment=f"SQL_INSTANCE_CPU={cpu}, SQL_INSTANCE_MEMORY={memory} (GiB)")
    top.add("cloud_sql", sql)


def redis(m: Mapper, top: Block) -> None:
    redis = Block()
    hosts = ({"host": ("REDIS_IP", f"daf-redis-{m.name}", "TODO-redis-host")} if m.kind == "global" else
             {"celery_host": ("MAT_REDIS_HOST", _mat_redis_name(m), "TODO-celery-redis-host"),
              "pcg_host": ("PCG_REDIS_IP", "pcg-cache", "TODO-pcg-redis-host")})
    for key, (name, instance, placeholder) in hosts.items():
        var = m.var(name)
        value = m.text(name, f"redis.{key}")
        if value:
            redis.add(key, value, m.origin(var))
            continue
        entry = redis.add(key, placeholder, m.origin(var))
        region = (v.text() if (v := m.var("REGION")) else None) or "REGION"
        m.decision(entry, f"{name} is looked up live when the env file is sourced (empty until the "
                          f"instance exists); put the host of Memorystore {instance} here "
                          f"(`gcloud redis instances describe {instance} "
                          f"--region={region} --format='value(host)'`).")
        if var is not None:
            how = f"`{var.value.command}`" if isinstance(var.value, Computed) else "empty"
            m.note("live", var, f"{name}: {how} -> redis.{key}: placeholder {placeholder} (see below)")
            m.reported.add(name)
    top.add("redis", redis)


def _mat_redis_name(m: Mapper) -> str:
    var = m.var("MAT_REDIS_NAME")
    return (var.text() if var else None) or f"{(v.text() if (v := m.var('PROJECT_NAME')) else '')}-celery-redis"


def local_lists(m: Mapper, top: Block) -> None:
    stacks = m.convert("SUPPORTED_DATASTACKS", "datastacks", envvalues.name_list) or []
    top.add("datastacks", Flow(stacks), m.origin(m.var("SUPPORTED_DATASTACKS")))
    groups_var = m.var("ANNOTATION_EXCLUDED_PERMISSION_GROUPS")
    misassigned = m.env.misassigned.get("ANNOTATION_EXCLUDED_PERMISSION_GROUPS")
    if groups_var is not None:
        groups = m.convert("ANNOTATION_EXCLUDED_PERMISSION_GROUPS", "annotation_excluded_groups",
                           envvalues.name_list) or []
        if groups:
            top.add("annotation_excluded_groups", Flow(groups), m.origin(groups_var))
    elif misassigned is not None and isinstance(misassigned.value, str) and misassigned.value.strip():
        groups = envvalues.name_list(misassigned.value)
        entry = top.add("annotation_excluded_groups", Flow(groups), Origin(misassigned.line, misassigned.col,
                                                                            misassigned.name))
        m.decision(entry, f"line {misassigned.line} has spaces around '=', so bash never set "
                          "ANNOTATION_EXCLUDED_PERMISSION_GROUPS and the running cluster excludes no "
                          "groups (docs/pitfalls.md#p17). Keep this list (what the line meant) or remove it.")
        m.used["ANNOTATION_EXCLUDED_PERMISSION_GROUPS"] = "annotation_excluded_groups"


def docker_repository(m: Mapper, top: Block) -> None:
    repo = m.var("DOCKER_REPOSITORY")
    top.add("docker_repository", m.required("DOCKER_REPOSITORY", "docker_repository"), m.origin(repo))


def kubernetes_version(m: Mapper, top: Block) -> None:
    k8s = top.add("kubernetes_version", KUBERNETES_VERSION)
    m.decision(k8s, "the env file does not say which Kubernetes version the cluster runs; set the GKE "
                    "minor version (`gcloud container clusters describe daf-" + m.name +
                    f" --zone {m.zone()} --format='value(currentMasterVersion)'`).")
