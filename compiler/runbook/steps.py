"""The manual steps of bringing a cluster up, with every value filled in.

One module on purpose (over 500 lines): it is the deployment protocol itself, one function per step in the order an
operator follows them, and reads best top to bottom; the rendering lives in report.py, the facts in facts.py."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from compiler import catalog
from compiler.bootstrap import desired as bootstrap_desired
from compiler.bootstrap import diagram, engine, providers
from compiler.bootstrap.engine import Outcome, Row
from compiler.bootstrap.model import Resource
from compiler.build.argocd import IN_CLUSTER
from compiler.build.compile import operator_keys
from compiler.escape import shell as sh
from compiler.escape import shell_double_quoted
from compiler.mermaid import Flowchart
from compiler.paths import ARGOCD_DIR, overlay_rel, spec_rel
from compiler.spec.derive import derive, secret_keys, secret_manager_name
from compiler.spec.fleet import global_of, locals_of
from compiler.spec.model import (
    Auth,
    ClusterSpec,
    GlobalCluster,
    LocalCluster,
    Materializationengine,
    enabled_services,
    zone_owner,
    zone_project,
)
from compiler.spec.rules import segmentation_source
from compiler.spec.settings import Settings, load_settings

StepStatus = Literal["done", "todo", "check", "unknown"]
SERVICE_GROUP = "service_accounts"
# What CAVE's auth (middle_auth) asks Google for when a user logs in: all non-sensitive, no verification needed.
OAUTH_SCOPES = ("openid", "https://www.googleapis.com/auth/userinfo.email",
                "https://www.googleapis.com/auth/userinfo.profile")


@dataclass
class Step:
    id: str
    title: str
    status: StepStatus
    why: str
    items: list[str] = field(default_factory=list)
    commands: list[str] = field(default_factory=list)
    values: dict[str, Any] = field(default_factory=dict)
    # A picture of the step for the Markdown (the bootstrap plan); JSON carries the same rows in `values` or not
    # at all, so it leaves this out (report.as_json_data).
    diagram: Flowchart | None = field(default=None, repr=False, compare=False)


@dataclass
class Runbook:
    cluster: str
    kind: str
    online: bool
    steps: list[Step]


@dataclass(frozen=True)
class Merged:
    """Whether the remote branch Argo CD deploys holds the working tree's spec and overlays of a cluster."""

    status: StepStatus  # done: on it; todo: not (yet); unknown: no git repository or remote branch to compare
    ref: str  # e.g. origin/main
    changed: tuple[str, ...] = ()  # paths that differ from it or are not committed
    detail: str = ""


class Facts:
    """What the runbook knows beyond the specs: overlay drift and, online, the bootstrap plan's rows."""

    def __init__(self, overlay_problems: list[str], plans: dict[str, Outcome] | None = None,
                 merged: Merged | None = None) -> None:
        self.overlay_problems = overlay_problems
        self.plans = plans  # cluster → plan, only with --online
        self.merged = merged  # is the cluster's spec and overlay on the remote's deployed branch (None: not asked)

    def rows(self, cluster: str) -> dict[str, Row] | None:
        if self.plans is None or cluster not in self.plans:
            return None
        return {row.resource.key: row for row in self.plans[cluster].rows}

    def secret_status(self, cluster: str, secret: str) -> StepStatus:
        rows = self.rows(cluster)
        if rows is None:
            return "unknown"
        row = rows.get(f"secret/{secret}")
        return "done" if row is not None and row.status == "exists" else "todo"


def _worst(statuses: list[StepStatus]) -> StepStatus:
    for status in ("todo", "unknown", "check"):
        if status in statuses:
            return status
    return "done"


def _locals_of(name: str, specs: dict[str, ClusterSpec]) -> list[LocalCluster]:
    return [s for n in locals_of(name, specs) if isinstance(s := specs[n], LocalCluster)]


# --------------------------------------------------------------------------- steps


def merge_paths(name: str) -> list[str]:
    """What Argo CD deploys of cluster `name`: its spec, its overlay and the app-of-apps."""
    return [spec_rel(name), overlay_rel(name), overlay_rel(ARGOCD_DIR)]


def _spec_step(spec: ClusterSpec, facts: Facts, settings: Settings | None) -> Step:
    compiled: StepStatus = "todo" if facts.overlay_problems else "done"
    items = [f"overlays/{spec.name}/ is out of date: {p}" for p in facts.overlay_problems[:5]] \
        or [f"{spec_rel(spec.name)} compiles to the overlays/{spec.name}/ on disk (done)"]
    merged = facts.merged
    branch = settings.argocd.target_revision if settings is not None else "main"
    if merged is None:
        merged = Merged("unknown", f"origin/{branch}", detail="not looked up")
    if merged.status == "done":
        items.append(f"merged: {merged.ref} holds this spec and its overlays (done; as of the last `git fetch`)")
    elif merged.status == "todo" and merged.detail:
        items.append(f"not merged: {merged.detail} (to do)")
    elif merged.status == "todo":
        shown = ", ".join(merged.changed[:5]) + (", ..." if len(merged.changed) > 5 else "")
        items.append(f"not merged: {shown} differ from {merged.ref} or are not committed: commit, push, open a pull "
                     f"request and merge it (to do)")
    else:
        items.append(f"merged: unknown ({merged.detail})")
    paths = " ".join(sh(p) for p in merge_paths(spec.name))
    return Step(
        "overlays", "Spec compiled and merged", _worst([compiled, merged.status]),
        f"Argo CD deploys overlays/<cluster>/ from {branch}; it must be what the spec compiles to.",
        items=items,
        commands=["python -m compiler build",
                  f"python -m compiler validate {sh(spec.name)}",
                  "git fetch origin", f"git diff --stat {sh(merged.ref)} -- {paths}"],
        values={"merged": merged.status, "ref": merged.ref, "changed": list(merged.changed)},
    )


def _bootstrap_step(spec: ClusterSpec, facts: Facts, resources: list[Resource]) -> Step:
    rows = facts.rows(spec.name)
    values: dict[str, Any] = {"resources": len(resources)}
    # The chart of `bootstrap --format mermaid`: the plan read online, or the offline plan of the same resources.
    if facts.plans is not None and spec.name in facts.plans:
        chart = diagram.chart(spec, facts.plans[spec.name], "plan")
    else:
        chart = diagram.chart(spec, engine.plan(resources, providers.provider_for, offline=True), "offline")
    if rows is None:
        status: StepStatus = "unknown"
        items = [f"{len(resources)} resources planned from the spec (`bootstrap {spec.name} --offline` lists them)"]
    else:
        counts: dict[str, int] = {}
        for row in rows.values():
            counts[row.status] = counts.get(row.status, 0) + 1
        values["counts"] = dict(sorted(counts.items()))
        status = "done" if set(counts) == {"exists"} else "todo"
        items = [", ".join(f"{n} {s}" for s, n in sorted(counts.items()))]
        items += [f"{row.resource.key}: {row.status} ({row.action})" for row in rows.values()
                  if row.status not in ("exists", "needs-operator")][:20]
    return Step("cloud-resources", "Cloud resources", status,
                "Google APIs (enabled first), network, GKE cluster, Cloud SQL, Redis, Bigtable, Pub/Sub, DNS, "
                "service accounts, secrets, buckets.",
                items=items, commands=[f"python -m compiler bootstrap {sh(spec.name)}",
                                       f"python -m compiler bootstrap {sh(spec.name)} --apply"], values=values,
                diagram=chart)


def _dns_step(spec: ClusterSpec, facts: Facts) -> Step:
    """Delegation of the zones this cluster creates; for a zone another cluster owns, where the records go.

    One DNS name is one zone across the fleet, delegated once at the registrar by the cluster that creates it
    (its runbook asks for it). A cluster using another's zone (`dns.zone_owners`) must not delegate anything:
    its A records and DNS-01 challenges go into the owner's zone, which the owner's bootstrap creates first.
    """
    names = derive(spec)
    rows = facts.rows(spec.name)
    zones: dict[str, Any] = {}  # created here: their name servers go to the registrar
    elsewhere: dict[str, Any] = {}  # created and delegated by another cluster: only the records go there
    for zone in sorted(set(names.hostname_zones)):
        row = rows.get(f"dns-zone/{zone}") if rows is not None else None
        owner = zone_owner(spec, zone)
        if owner != spec.name:
            elsewhere[zone] = {"dns_name": spec.dns.zones[zone], "owner": owner, "project": zone_project(spec, zone),
                               "exists": None if rows is None else bool(row is not None and row.observed)}
            continue
        servers = row.observed.get("name_servers") if row is not None and row.observed else None
        zones[zone] = {"dns_name": spec.dns.zones[zone], "name_servers": servers}
    items = []
    for zone, info in zones.items():
        shown = ", ".join(info["name_servers"]) if info["name_servers"] else \
            f"(see `bootstrap {spec.name}` once zone {zone} exists)"
        items.append(f"at the registrar of {info['dns_name']}: set the name servers to {shown}")
    for zone, info in elsewhere.items():
        state = "" if info["exists"] is None else (" (it exists)" if info["exists"] else
                                                   f" (it does not exist yet: bootstrap {info['owner']} first)")
        items.append(f"zone {zone} ({info['dns_name']}) is created in project {info['project']} and delegated by "
                     f"{info['owner']}{state} (`python -m compiler runbook {info['owner']}`); nothing to do at the "
                     "registrar from this cluster: its A records and DNS-01 challenges go into that zone")
    items += [f"{host} → the static IP daf-{spec.name} (A record in zone {zone} of project "
              f"{zone_project(spec, zone)}, created by `bootstrap {spec.name}`)"
              for host, zone in zip(names.hostnames, names.hostname_zones, strict=True)]
    if rows is None:
        status: StepStatus = "unknown"
    elif not all(z["name_servers"] for z in zones.values()) or not all(z["exists"] for z in elsewhere.values()):
        status = "todo"
    else:
        status = "check" if zones else "done"
    title = "Name servers at the registrar" if zones else \
        f"DNS records in the zones of {', '.join(sorted({z['owner'] for z in elsewhere.values()}))}"
    return Step("dns-registrar", title, status,
                "Certificates (DNS-01) and every URL depend on the zone being delegated to Cloud DNS, once per "
                "DNS name by the cluster that creates it.",
                items=items, commands=[f"dig +short NS {sh(info['dns_name'])}" for info in zones.values()]
                + [f"dig +short A {sh(host)}" for host in names.hostnames],
                values={"zones": zones, "zones_elsewhere": elsewhere, "hostnames": list(names.hostnames)})


def _consent_step(spec: GlobalCluster) -> Step:
    """The OAuth consent screen: Google shows it at login, and refuses the client until it is configured."""
    names = derive(spec)
    domains = sorted({spec.dns.zones[zone] for zone in names.hostname_zones if zone in spec.dns.zones})
    auth = spec.services.settings("auth", Auth)
    admins = auth.default_admins if auth else []
    support = admins[0].email if admins else "<a support e-mail address of your team>"
    name = f"CAVE ({names.primary_hostname})"
    return Step(
        "oauth-consent", "Google OAuth consent screen", "check",
        "Google shows it when a user logs in, and no OAuth client of the project works until it is configured.",
        items=[f"Google Cloud console of {spec.gcp.project} > Google Auth Platform (APIs & Services > OAuth consent "
               "screen) > Branding:",
               f"app name: {name}; user support e-mail and developer contact: {support}",
               *[f"authorized domain: {d} (the registrable domain of the hostnames)" for d in domains],
               "Audience: user type External (anyone with a Google account can log in; CAVE's auth decides what "
               "they may do), publishing status In production (in Testing only listed test users can log in, and "
               "their logins expire after 7 days)",
               f"Data access: scopes {', '.join(OAUTH_SCOPES)} (non-sensitive: no verification by Google needed)"],
        values={"app_name": name, "support_email": support, "authorized_domains": domains,
                "user_type": "External", "publishing_status": "In production", "scopes": list(OAUTH_SCOPES)},
    )


def _oauth_step(spec: GlobalCluster, facts: Facts) -> Step:
    hosts = derive(spec).hostnames
    redirects = [f"https://{h}/{svc}/api/v1/oauth2callback" for h in hosts for svc in ("auth", "sticky_auth")]
    origins = [f"https://{h}" for h in hosts]
    secret = secret_manager_name(spec, "oauth_client")
    stored = facts.secret_status(spec.name, secret)
    return Step(
        "oauth-client", "Google OAuth client", _worst(["check", stored]),
        "Users log in through auth and sticky-auth with Google; Google only redirects to registered URIs.",
        items=[f"Google Cloud console of {spec.gcp.project} > APIs & Services > Credentials: OAuth client ID of "
               "type web application",
               *[f"authorized redirect URI: {u}" for u in redirects],
               *[f"authorized JavaScript origin: {o}" for o in origins],
               f"download its JSON and store it as Secret Manager secret {secret} (status: {stored})"],
        commands=[f"gcloud secrets versions add {sh(secret)} --project {sh(spec.gcp.project)} "
                  "--data-file=client_secret.json"],
        values={"redirect_uris": redirects, "javascript_origins": origins, "secret": secret},
    )


def kube_context(spec: ClusterSpec) -> str:
    """The kubectl context `gcloud container clusters get-credentials` creates for the cluster."""
    return f"gke_{spec.gcp.project}_{spec.gcp.zone}_daf-{spec.name}"


def _credentials(spec: ClusterSpec) -> str:
    return (f"gcloud container clusters get-credentials {sh('daf-' + spec.name)} --zone {sh(spec.gcp.zone)} "
            f"--project {sh(spec.gcp.project)}")


def argocd_cluster(specs: dict[str, ClusterSpec]) -> str | None:
    """The cluster Argo CD runs in: the one it reaches as https://kubernetes.default.svc (None: not in these specs)."""
    return next((n for n, s in sorted(specs.items()) if s.argocd.server == IN_CLUSTER), None)


def _registration(spec: ClusterSpec, host_context: str) -> tuple[str, list[str]]:
    """How Argo CD learns about `spec`'s cluster: (item, commands); no commands for the cluster it runs in.
    `host_context` is written into the command as it is (a shell word, or a <placeholder> to replace)."""
    if spec.argocd.server == IN_CLUSTER:
        return f"daf-{spec.name}: Argo CD runs in it and reaches it as {IN_CLUSTER} (nothing to register)", []
    name = spec.argocd.name or f"daf-{spec.name}"
    add = f"argocd cluster add {sh(kube_context(spec))} --name {sh(name)} --yes --core --kube-context {host_context}"
    if spec.argocd.server is not None:
        item = f"daf-{spec.name}: register it; Argo CD must know it by API server URL {spec.argocd.server}"
    else:
        item = f"daf-{spec.name}: register it as {name}"
    return item, [_credentials(spec), add]


def _argocd_install_step(spec: ClusterSpec, specs: dict[str, ClusterSpec], settings: Settings) -> Step:
    """Installing Argo CD in the cluster it runs in, and registering every cluster it deploys to."""
    argo = settings.argocd
    context = kube_context(spec)
    version = argo.version or "<argocd.version>"
    items = [f"install Argo CD {version} in namespace {argo.namespace} of daf-{spec.name}"
             + ("" if argo.version else " (gitops.yaml has no argocd.version: pin one exact release, like v3.3.0)")]
    ctx, namespace = sh(context), sh(argo.namespace)
    install = f"https://raw.githubusercontent.com/argoproj/argo-cd/{version}/manifests/install.yaml"
    commands = [_credentials(spec), f"kubectl --context {ctx} create namespace {namespace}",
                f"kubectl --context {ctx} apply -n {namespace} --server-side --force-conflicts -f "
                + (sh(install) if argo.version else install),
                f"kubectl config set-context {ctx} --namespace {namespace}  # the argocd CLI (--core) "
                "finds Argo CD there"]
    registered = []
    for other in sorted(specs.values(), key=lambda s: s.name):
        item, add = _registration(other, ctx)
        items.append(item)
        commands += add
        registered.append({"cluster": other.name, "name": other.argocd.name, "server": other.argocd.server,
                           "registered": not add, "context": kube_context(other)})
    return Step("argocd-install", f"Install Argo CD and register the clusters (Argo CD runs in daf-{spec.name})",
                "check" if argo.version else "todo",
                "Argo CD deploys every cluster of this repository from here; it must know each one by the name or "
                "server its spec gives.", items=items, commands=commands,
                values={"version": argo.version, "namespace": argo.namespace, "context": context,
                        "clusters": registered})


def _argocd_step(spec: ClusterSpec, specs: dict[str, ClusterSpec], settings: Settings | None) -> Step:
    if settings is None:
        return Step("argocd", "Argo CD syncs the cluster", "check", "After this, merging a pull request is deploying.",
                    items=["no gitops.yaml: apply overlays/<cluster> with your own tooling"])
    host = argocd_cluster(specs)
    if host is not None:
        host_context = kube_context(specs[host])
        where = f"the Argo CD cluster daf-{host}"
        prepare = [] if host == spec.name else [_credentials(specs[host])]
    else:
        host_context = "<kube-context of the cluster Argo CD runs in>"
        where = "the cluster Argo CD runs in (no spec has argocd.server " + IN_CLUSTER + ")"
        prepare = []
    ctx = sh(host_context) if host is not None else host_context  # the placeholder stays as it is
    item, register = _registration(spec, ctx)
    if register:  # the argocd CLI (--core) finds Argo CD in the namespace of that context: set it on this machine too
        register = [register[0], f"kubectl config set-context {ctx} --namespace {sh(settings.argocd.namespace)}",
                    *register[1:]]
    items = [item, f"the app-of-apps overlays/argocd/ is applied in {where} (context {host_context}), once; "
             "merging to main then deploys"]
    if host is not None and host != spec.name:
        items.append(f"Argo CD itself is installed by `python -m compiler runbook {host}`")
    return Step("argocd", "Argo CD syncs the cluster", "check",
                "After this, merging a pull request is deploying.", items=items,
                commands=[*prepare, *register, f"kubectl --context {ctx} apply -k overlays/argocd"],
                values={"argocd_cluster": host, "context": host_context})


def _datasets(local: LocalCluster) -> dict[str, dict[str, list[str]]]:
    """Auth dataset → service table mappings (service name → tables) for one local cluster's registry."""
    out: dict[str, dict[str, list[str]]] = {}
    if local.registry is None:
        return out
    for name, volume in sorted(local.registry.aligned_volumes.items()):
        out.setdefault(volume.dataset, {}).setdefault("aligned_volume", []).append(name)
    for name, ds in sorted(local.registry.datastacks.items()):
        dataset = ds.dataset or local.registry.aligned_volumes[ds.aligned_volume].dataset
        tables = out.setdefault(dataset, {})
        tables.setdefault("datastack", []).append(name)
        if ds.pcg_table not in tables.setdefault("pychunkedgraph", []):
            tables["pychunkedgraph"].append(ds.pcg_table)
    return out


def _auth_step(global_spec: GlobalCluster, locals_: list[LocalCluster]) -> Step:
    host = derive(global_spec).primary_hostname
    datasets: dict[str, dict[str, list[str]]] = {}
    for local in locals_:
        for dataset, services in _datasets(local).items():
            merged = datasets.setdefault(dataset, {})
            for service, tables in services.items():
                merged[service] = sorted({*merged.get(service, []), *tables})
    mappings = [{"service_name": svc, "table_name": t, "dataset": ds}
                for ds, services in sorted(datasets.items()) for svc, tables in sorted(services.items())
                for t in tables]
    unregistered = [lc.name for lc in locals_ if lc.registry is None]
    items = [f"in https://{host}/sticky_auth/flask_admin/ (auth admin, log in with Google)",
             *[f"dataset {ds}" for ds in sorted(datasets)],
             f"group {SERVICE_GROUP} with read and write on every dataset above: "
             f"{', '.join(sorted(datasets)) or '(none)'}; add the CAVE service account to it",
             *[f"service table: {m['service_name']} / {m['table_name']} → {m['dataset']}" for m in mappings],
             *[f"cluster {name} has no registry: section yet: its datasets cannot be listed" for name in unregistered]]
    auth = global_spec.services.settings("auth", Auth)
    admins = auth.default_admins if auth else []
    items += [f"admin user {a.email} ({a.name})" for a in admins]
    return Step("auth-data", f"Auth datasets, groups and service tables on {host}", "check",
                "middle_auth_client decides access by these mappings; services need read/write on all datasets.",
                items=items, values={"datasets": sorted(datasets), "groups": {SERVICE_GROUP: sorted(datasets)},
                                     "service_tables": mappings, "admin_url": f"https://{host}/sticky_auth/flask_admin/"})


def _info_step(global_spec: GlobalCluster, locals_: list[LocalCluster]) -> Step:
    host = derive(global_spec).primary_hostname
    volumes: list[dict[str, Any]] = []
    stacks: list[dict[str, Any]] = []
    for local in locals_:
        if local.registry is None:
            continue
        for name, vol in sorted(local.registry.aligned_volumes.items()):
            volumes.append({"name": name, "image_source": vol.image_source, "description": vol.description,
                            "cluster": local.name})
        for name, ds in sorted(local.registry.datastacks.items()):
            stacks.append({
                "name": name, "aligned_volume": ds.aligned_volume, "description": ds.description,
                "segmentation_source": ds.segmentation_source or segmentation_source(local, ds.pcg_table),
                "viewer_resolution": ds.viewer_resolution, "viewer_site": ds.viewer_site,
                "synapse_table": ds.synapse_table, "soma_table": ds.soma_table, "cluster": local.name,
            })
    items = [f"in https://{host}/info/admin/ (info admin)"]
    items += [f"aligned volume {v['name']}: image source {v['image_source']}, description {v['description']!r}"
              for v in volumes]
    for s in stacks:
        extra = ", ".join(f"{k} {s[k]}" for k in ("viewer_resolution", "viewer_site", "synapse_table", "soma_table")
                          if s[k] is not None)
        items.append(f"datastack {s['name']}: aligned volume {s['aligned_volume']}, segmentation "
                     f"{s['segmentation_source']}, description {s['description']!r}" + (f", {extra}" if extra else ""))
    return Step("info-data", f"Info service entries on {host}", "check",
                "Clients find images and segmentations of a datastack through the info service.",
                items=items, values={"aligned_volumes": volumes, "datastacks": stacks})


def _token_step(global_spec: GlobalCluster, clusters: list[ClusterSpec], facts: Facts) -> Step:
    host = derive(global_spec).primary_hostname
    targets: list[dict[str, str]] = []
    statuses: list[StepStatus] = ["check"]
    for spec in clusters:
        for key in secret_keys(spec):
            if key in catalog.AUTH_TOKENS:
                secret = secret_manager_name(spec, key)
                statuses.append(facts.secret_status(spec.name, secret))
                targets.append({"cluster": spec.name, "project": spec.gcp.project, "secret": secret,
                                "status": statuses[-1]})
    items = [f"create a service account in https://{host}/auth/admin/index.html#/service_account and add it to "
             f"group {SERVICE_GROUP}",
             *[f"store {{\"token\": \"...\"}} as Secret Manager secret {t['secret']} in {t['project']} "
               f"(cluster {t['cluster']}; status: {t['status']})" for t in targets]]
    return Step("service-token", "CAVE service-account token", _worst(statuses),
                "Info, annotation, PCG and other services call each other with this token, which can only be "
                "made once auth runs (docs/pitfalls.md#p55).", items=items,
                commands=[f"gcloud secrets versions add {sh(t['secret'])} --project {sh(t['project'])} "
                          "--data-file=token.json"
                          for t in targets], values={"secrets": targets})


def _materialization_step(spec: LocalCluster, global_host: str) -> Step | None:
    mat = spec.services.settings("materializationengine", Materializationengine)
    if mat is None or not mat.enabled or mat.health_aligned_volume is None:
        return None
    volume = mat.health_aligned_volume
    datastack = mat.datastacks[0]
    resolution = None
    if spec.registry is not None and datastack in spec.registry.datastacks:
        resolution = spec.registry.datastacks[datastack].viewer_resolution
    script = (f"from caveclient import CAVEclient; "
              f"c = CAVEclient({datastack!r}, server_address='https://{global_host}'); "
              f"c.annotation.create_table(table_name='runbook_smoke_test', schema_name='bound_tag', "
              f"description='runbook smoke test', voxel_resolution={resolution or [1, 1, 1]}); "
              "print(c.annotation.get_tables())")
    return Step(
        "materialization-database", f"First materialization database ({volume})", "check",
        "The materialize health check reads this aligned volume's database: without it the pods crash-loop "
        "(docs/pitfalls.md#p23).",
        items=[f"kubectl --context <daf-{spec.name}> port-forward deployment/materialize 8081:80",
               "open http://localhost:8081/materialize/api/doc, authorize with an admin token, and run "
               f"CREATE ANNOTATION DATABASE with aligned_volume_name {volume}",
               f"first-table test: create a table in datastack {datastack} and list the tables (below)"],
        commands=[f"python -c \"{shell_double_quoted(script)}\""],
        values={"aligned_volume": volume, "datastack": datastack},
    )


ELSEWHERE = {"oauth_client", *catalog.AUTH_TOKENS}  # keys whose values the OAuth and token steps store


def _operator_secrets_step(spec: ClusterSpec, facts: Facts) -> Step | None:
    """What each operator-made secret holds back until it has a version, and how those consumers start.

    The overlay keeps them out of every waited wave and out of the Application's health (README "First sync and
    operator secrets"), so nothing else waits; this says what starts once the operator has stored each one."""
    enabled = enabled_services(spec)
    entries: list[dict[str, Any]] = []
    statuses: list[StepStatus] = []
    for key in operator_keys(secret_keys(spec)):
        secret = secret_manager_name(spec, key)
        readers = [catalog.BY_NAME[n] for n in enabled if n in catalog.BY_NAME and key in catalog.BY_NAME[n].secrets]
        if key in catalog.FILE_SECRETS:
            external = [key.replace("_", "-")]
        else:
            external = [cm.name for s in readers for cm in s.configmaps if cm.secret]
        workloads = [f"{w.kind.lower()}/{w.name}" for s in readers for w in s.deployed(enabled[s.name])
                     if w.kind != "Job"]
        statuses.append(facts.secret_status(spec.name, secret))
        entries.append({"key": key, "secret": secret, "external_secrets": external, "workloads": workloads,
                        "status": statuses[-1]})
    if not entries:
        return None
    items: list[str] = []
    commands: list[str] = []
    for e in entries:
        items.append(f"{e['secret']} (status: {e['status']}): until it has a version, ExternalSecret "
                     f"{', '.join(e['external_secrets'])} and {', '.join(e['workloads']) or 'no workload'} wait "
                     "(out of the Application's health: nothing else waits); they start by themselves once it has "
                     "one, no restart needed (External Secrets retries, backing off up to about 17 minutes)")
        if e["key"] not in ELSEWHERE:  # the OAuth and token steps print the command for theirs
            commands.append(f"gcloud secrets versions add {sh(e['secret'])} --project {sh(spec.gcp.project)} "
                            "--data-file=- "
                            f"# {catalog.SECRET_SOURCES[e['key']]}")
        commands += [f"kubectl annotate externalsecret {sh(es)} force-sync=$(date +%s) --overwrite"
                     for es in e["external_secrets"]]
        if e["key"] == "cave_token" and any(w == "deployment/materialize" for w in e["workloads"]):
            items.append(f"after storing {e['secret']}: `argocd app sync cave-{spec.name}`, so the database "
                         "migration hook, which skipped without the token, runs")
    items.append("replacing a value later: environment variables and files read at start (every CAVE token, "
                 "the canary config) need `kubectl rollout restart` of the workloads above; mounted files "
                 "themselves update in place within the ExternalSecret's refreshInterval (1h) plus the kubelet sync")
    return Step("operator-secrets", "What starts once each operator secret is stored", _worst(statuses),
                "Secrets only an operator can make (bootstrap lists them as OPERATOR) hold back only what reads them.",
                items=items, commands=commands, values={"secrets": entries})


def _rollback_step(spec: ClusterSpec, resources: list[Resource]) -> Step:
    kept = [r for r in resources if r.data]
    return Step(
        "rollback", "Rolling back, and what deleting the cluster leaves", "check",
        "Reverting is a pull request; bootstrap never deletes, so data outlives the cluster.",
        items=["roll back a change: `git revert <merge commit>` in a pull request; after the merge Argo CD syncs the "
               "previous overlays (database migrations are not reverted: restore from a Cloud SQL backup if needed)",
               "delete the cluster: remove environments/<cluster>.yaml in a pull request (its Argo CD Application "
               "goes; workloads stay until you delete the GKE cluster), then delete GKE cluster "
               f"daf-{spec.name} by hand",
               *[f"left behind (data, delete by hand only on purpose): {r.key} in {r.project}" for r in kept]],
        values={"data_resources": [{"key": r.key, "project": r.project} for r in kept]},
    )


def build_runbook(root: Path, name: str, specs: dict[str, ClusterSpec], facts: Facts) -> Runbook:
    spec = specs[name]
    loaded = load_settings(root)
    settings = loaded.settings if loaded is not None else None
    resources = bootstrap_desired.desired(spec)
    steps: list[Step | None] = [_spec_step(spec, facts, settings), _bootstrap_step(spec, facts, resources),
                                _dns_step(spec, facts)]
    argocd: list[Step | None] = [_argocd_step(spec, specs, settings)]
    if settings is not None and argocd_cluster(specs) == name:
        argocd.insert(0, _argocd_install_step(spec, specs, settings))
    if isinstance(spec, GlobalCluster):
        locals_ = _locals_of(name, specs)
        steps += [_consent_step(spec), _oauth_step(spec, facts), *argocd, _auth_step(spec, locals_),
                  _token_step(spec, [spec, *locals_], facts), _info_step(spec, locals_)]
    else:
        global_name = global_of(spec, specs)
        global_spec = specs[global_name] if global_name is not None else None
        steps += argocd
        if isinstance(global_spec, GlobalCluster):
            steps += [_auth_step(global_spec, [spec]), _token_step(global_spec, [spec], facts),
                      _info_step(global_spec, [spec])]
        steps.append(_materialization_step(spec, spec.global_server))
    steps.append(_operator_secrets_step(spec, facts))
    steps.append(_rollback_step(spec, resources))
    return Runbook(spec.name, spec.kind, facts.plans is not None, [s for s in steps if s is not None])
