"""The manual steps of bringing a cluster up, with every value filled in."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from compiler import catalog
from compiler.bootstrap import desired as bootstrap_desired
from compiler.bootstrap.engine import Outcome, Row
from compiler.bootstrap.model import Resource
from compiler.build.compile import operator_keys
from compiler.spec.derive import derive, secret_keys, secret_manager_name
from compiler.spec.fleet import global_of, locals_of
from compiler.spec.model import (
    ClusterSpec,
    GlobalCluster,
    LocalCluster,
    enabled_services,
    zone_owner,
    zone_project,
)
from compiler.spec.rules import segmentation_source

StepStatus = Literal["done", "todo", "check", "unknown"]
SERVICE_GROUP = "service_accounts"


@dataclass
class Step:
    id: str
    title: str
    status: StepStatus
    why: str
    items: list[str] = field(default_factory=list)
    commands: list[str] = field(default_factory=list)
    values: dict[str, Any] = field(default_factory=dict)


@dataclass
class Runbook:
    cluster: str
    kind: str
    online: bool
    steps: list[Step]


class Facts:
    """What the runbook knows beyond the specs: overlay drift and, online, the bootstrap plan's rows."""

    def __init__(self, overlay_problems: list[str], plans: dict[str, Outcome] | None = None) -> None:
        self.overlay_problems = overlay_problems
        self.plans = plans  # cluster → plan, only with --online

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


def _spec_step(spec: ClusterSpec, facts: Facts) -> Step:
    return Step(
        "overlays", "Spec compiled and merged", "todo" if facts.overlay_problems else "done",
        "Argo CD deploys overlays/<cluster>/ from main; it must be what the spec compiles to.",
        items=[f"overlays/{spec.name}/ is out of date: {p}" for p in facts.overlay_problems[:5]]
        or [f"environments/{spec.name}.yaml compiles to the committed overlays/{spec.name}/"],
        commands=["python -m compiler build", f"python -m compiler validate {spec.name}"],
    )


def _bootstrap_step(spec: ClusterSpec, facts: Facts, resources: list[Resource]) -> Step:
    rows = facts.rows(spec.name)
    values: dict[str, Any] = {"resources": len(resources)}
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
                "Network, GKE cluster, Cloud SQL, Redis, Bigtable, Pub/Sub, DNS, service accounts, secrets, buckets.",
                items=items, commands=[f"python -m compiler bootstrap {spec.name}",
                                       f"python -m compiler bootstrap {spec.name} --apply"], values=values)


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
                items=items, commands=[f"dig +short NS {info['dns_name']}" for info in zones.values()]
                + [f"dig +short A {host}" for host in names.hostnames],
                values={"zones": zones, "zones_elsewhere": elsewhere, "hostnames": list(names.hostnames)})


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
        commands=[f"gcloud secrets versions add {secret} --project {spec.gcp.project} --data-file=client_secret.json"],
        values={"redirect_uris": redirects, "javascript_origins": origins, "secret": secret},
    )


def _argocd_step(spec: ClusterSpec, root: Path) -> Step:
    if spec.argocd.server is not None:
        register = f"Argo CD reaches it as {spec.argocd.server} (nothing to register)"
        commands = []
    else:
        register = f"register the cluster with Argo CD as {spec.argocd.name or f'daf-{spec.name}'}"
        name = spec.argocd.name or f"daf-{spec.name}"
        commands = [f"gcloud container clusters get-credentials daf-{spec.name} --zone {spec.gcp.zone} "
                    f"--project {spec.gcp.project}",
                    f"argocd cluster add <kube-context of daf-{spec.name}> --name {name}"]
    gitops = (root / "gitops.yaml").is_file()
    items = [register, "the app-of-apps overlays/argocd/ is applied once in the Argo CD cluster; merging to main then "
             "deploys" if gitops else "no gitops.yaml: apply overlays/<cluster> with your own tooling"]
    return Step("argocd", "Argo CD syncs the cluster", "check",
                "After this, merging a pull request is deploying.", items=items,
                commands=[*commands, *(["kubectl apply -k overlays/argocd"] if gitops else [])])


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
    admins = global_spec.services.auth.default_admins if global_spec.services.auth else []
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
                "Info, annotation, PCG and other services call each other with this token (P55: it can only "
                "exist once auth runs).", items=items,
                commands=[f"gcloud secrets versions add {t['secret']} --project {t['project']} --data-file=token.json"
                          for t in targets], values={"secrets": targets})


def _materialization_step(spec: LocalCluster, global_host: str) -> Step | None:
    mat = spec.services.materializationengine
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
        "The materialize health check reads this aligned volume's database: without it the pods crash-loop (P23).",
        items=[f"kubectl --context <daf-{spec.name}> port-forward deployment/materialize 8081:80",
               "open http://localhost:8081/materialize/api/doc, authorize with an admin token, and run "
               f"CREATE ANNOTATION DATABASE with aligned_volume_name {volume}",
               f"first-table test: create a table in datastack {datastack} and list the tables (below)"],
        commands=[f"python -c \"{script}\""],
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
            commands.append(f"gcloud secrets versions add {e['secret']} --project {spec.gcp.project} --data-file=- "
                            f"# {catalog.SECRET_SOURCES[e['key']]}")
        commands += [f"kubectl annotate externalsecret {es} force-sync=$(date +%s) --overwrite"
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
    resources = bootstrap_desired.desired(spec)
    steps: list[Step | None] = [_spec_step(spec, facts), _bootstrap_step(spec, facts, resources),
                                _dns_step(spec, facts)]
    if isinstance(spec, GlobalCluster):
        locals_ = _locals_of(name, specs)
        steps += [_oauth_step(spec, facts), _argocd_step(spec, root), _auth_step(spec, locals_),
                  _token_step(spec, [spec, *locals_], facts), _info_step(spec, locals_)]
    else:
        global_name = global_of(spec, specs)
        global_spec = specs[global_name] if global_name is not None else None
        steps.append(_argocd_step(spec, root))
        if isinstance(global_spec, GlobalCluster):
            steps += [_auth_step(global_spec, [spec]), _token_step(global_spec, [spec], facts),
                      _info_step(global_spec, [spec])]
        steps.append(_materialization_step(spec, spec.global_server))
    steps.append(_operator_secrets_step(spec, facts))
    steps.append(_rollback_step(spec, resources))
    return Runbook(spec.name, spec.kind, facts.plans is not None, [s for s in steps if s is not None])
