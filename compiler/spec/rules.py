"""Cross-field and cross-cluster rules a single field's type cannot express (docs/pitfalls.md).

Each rule is a small function yielding Problems; `check_all` runs them over every loaded spec.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Callable, Iterator

from compiler import catalog
from compiler.errors import Problem
from compiler.spec import semver
from compiler.spec.derive import derive
from compiler.spec.fleet import served_by_globals
from compiler.spec.model import (
    Cavecanary,
    ClusterSpec,
    Dash,
    GlobalCluster,
    Guidebook,
    LocalCluster,
    Materializationengine,
    Pychunkedgraph,
    Replicas,
    Service,
    enabled_services,
    zone_owner,
    zone_project,
)
from compiler.spec.sharing import shared_data
from compiler.spec.yamlio import Document

Specs = dict[str, tuple[ClusterSpec, Document]]
GKE_CLUSTER_NAME_MAX = 40
GCP_SA_ID_MAX = 30


def _version_tuple(version: str) -> tuple[int, ...] | None:
    m = re.fullmatch(r"(\d+)\.(\d+)(?:\.(\d+))?", version)
    return tuple(int(g) for g in m.groups() if g is not None) if m else None


def file_name(name: str, spec: ClusterSpec, doc: Document) -> Iterator[Problem]:
    if spec.name != name:
        yield doc.problem(("name",), f"name {spec.name!r} differs from the file name {name}.yaml "
                                     f"(rename the file or set `name: {name}`)")


def gcp_location(spec: ClusterSpec, doc: Document) -> Iterator[Problem]:
    if not spec.gcp.zone.startswith(spec.gcp.region + "-"):
        yield doc.problem(("gcp", "zone"), f"zone {spec.gcp.zone!r} is not in region {spec.gcp.region!r} "
                                           f"(use a zone like {spec.gcp.region}-b)")
    if isinstance(spec, LocalCluster):
        data = spec.data
        if data.bigtable_zone is not None and not data.bigtable_zone.startswith(data.region + "-"):
            yield doc.problem(("data", "bigtable_zone"), f"zone {data.bigtable_zone!r} is not in the data region "
                                                         f"{data.region!r} (use a zone like {data.region}-b)")
        elif data.bigtable_zone is None and data.region != spec.gcp.region:
            yield doc.problem(("data", "region"), f"the Bigtable instance is in {data.region!r}, not in the "
                                                  f"cluster's region: set data.bigtable_zone (a zone of {data.region})")


def gke_names(spec: ClusterSpec, doc: Document) -> Iterator[Problem]:
    names = derive(spec)
    if len(names.cluster_name) > GKE_CLUSTER_NAME_MAX:
        yield doc.problem(("name",), f"cluster name {names.cluster_name!r} is longer than "
                                     f"{GKE_CLUSTER_NAME_MAX} characters (shorten `name`)")
    roles = {s.service_account for s in map(catalog.BY_NAME.get, enabled_services(spec)) if s and s.service_account}
    roles |= set(catalog.ADDON_SERVICE_ACCOUNTS)
    for role in sorted(roles):
        account = f"daf-{role}-{spec.name}"
        if len(account) > GCP_SA_ID_MAX:
            yield doc.problem(("name",), f"service account id {account!r} is longer than {GCP_SA_ID_MAX} "
                                         f"characters (shorten `name` to at most "
                                         f"{GCP_SA_ID_MAX - len(role) - 5} characters)")


def dns_zones(spec: ClusterSpec, doc: Document) -> Iterator[Problem]:
    zones = spec.dns.zones
    pairs: list[tuple[tuple[str | int, ...], str, str]] = [
        (("dns", "zone"), f"{spec.name}.{spec.dns.domain}", spec.dns.zone)
    ]
    pairs += [(("dns", "extra_hostnames", i), h.hostname, h.zone) for i, h in enumerate(spec.dns.extra_hostnames)]
    for loc, hostname, zone in pairs:
        if zone not in zones:
            close = difflib.get_close_matches(zone, list(zones), n=1)
            hint = (f"did you mean {close[0]!r}?" if close
                    else f"declare it under dns.zones or use one of {sorted(zones)}")
            where = loc if loc[-1] == "zone" else (*loc, "zone")
            yield doc.problem(where, f"DNS zone {zone!r} is not declared in dns.zones ({hint})")
        elif not (hostname == zones[zone] or hostname.endswith("." + zones[zone])):
            yield doc.problem(loc, f"hostname {hostname!r} is not inside zone {zone!r} ({zones[zone]}); "
                                   "pair each hostname with the zone that holds it")
    for zone, owner in spec.dns.zone_owners.items():
        if zone not in zones:
            yield doc.problem(("dns", "zone_owners", zone), f"zone {zone!r} of dns.zone_owners is not declared in "
                                                            f"dns.zones (declare it there with its DNS name)", key=True)
        elif owner.cluster == spec.name:
            yield doc.problem(("dns", "zone_owners", zone, "cluster"),
                              f"zone {zone!r} names this cluster as its owner (remove the entry: a zone this "
                              "cluster creates is simply listed in dns.zones)")


def replicas(spec: ClusterSpec, doc: Document) -> Iterator[Problem]:
    for name, svc in enabled_services(spec).items():
        entry = catalog.BY_NAME[name]
        settings: list[tuple[tuple[str | int, ...], str, int | Replicas | None]] = [
            (("services", name, "replicas"), entry.main.name, svc.replicas)
        ]
        for wname, ws in svc.workloads.items():
            base: tuple[str | int, ...] = ("services", name, "workloads", wname)
            if entry.workload(wname) is None:
                known = [w.name for w in entry.workloads]
                close = difflib.get_close_matches(wname, known, n=1)
                hint = f"did you mean {close[0]!r}?" if close else f"workloads of {name}: {', '.join(known)}"
                yield doc.problem(base, f"{name} has no workload {wname!r} ({hint})", key=True)
                continue
            workload = entry.workload(wname)
            required = workload.requires if workload is not None else None
            if required is not None and not getattr(svc, required, None):
                yield doc.problem(base, f"{wname} is deployed only when services.{name}.{required} is set, and it "
                                        f"is not (set {required}, or remove this entry)", key=True)
                continue
            settings.append(((*base, "replicas"), wname, ws.replicas))
        for loc, wname, value in settings:
            workload = entry.workload(wname)
            assert workload is not None
            yield from _replica_value(doc, loc, workload, value)


def _replica_value(doc: Document, loc: tuple[str | int, ...], workload: catalog.Workload,
                   value: int | Replicas | None) -> Iterator[Problem]:
    if value is None:
        return
    if workload.scaling == "job":
        yield doc.problem(loc, f"{workload.name} is a {workload.kind}; it has no replicas (remove this key)")
    elif workload.scaling == "hpa" and not isinstance(value, Replicas):
        yield doc.problem(loc, f"{workload.name} is autoscaled: give `{{min: N, max: M}}`, not a single number")
    elif workload.scaling == "fixed" and isinstance(value, Replicas):
        yield doc.problem(loc, f"{workload.name} runs a fixed number of pods: give a single number, not min/max")
    elif isinstance(value, Replicas) and value.min > value.max:
        yield doc.problem((*loc, "min"), f"min replicas {value.min} is greater than max {value.max} "
                                         "(lower min or raise max)")
    elif isinstance(value, int) and value < 0:
        yield doc.problem(loc, "replicas cannot be negative")


def service_versions(spec: ClusterSpec, doc: Document) -> Iterator[Problem]:
    """A version is semver without the `v` (each image's tag rule adds what its tags need) or a tag the
    catalogue allows for the image: `v4.14.1` would render `:vv4.14.1` and `latest` `:vlatest`."""
    for name in type(spec.services).model_fields:
        svc, entry = getattr(spec.services, name), catalog.BY_NAME.get(name)
        if svc is not None and entry is not None and (why := semver.version_problem(entry, svc.version)):
            yield doc.problem(("services", name, "version"), f"services.{name}.version: {why}")


def node_pools(spec: ClusterSpec, doc: Document) -> Iterator[Problem]:
    seen: dict[str, int] = {}
    for i, pool in enumerate(spec.node_pools):
        if pool.name in seen:
            yield doc.problem(("node_pools", i, "name"), f"node pool {pool.name!r} is defined twice "
                                                         f"(also node_pools[{seen[pool.name]}])")
        seen.setdefault(pool.name, i)
        if pool.min_nodes > pool.max_nodes:
            yield doc.problem(("node_pools", i, "min_nodes"), f"min_nodes {pool.min_nodes} is greater than "
                                                              f"max_nodes {pool.max_nodes}")
    if not isinstance(spec, LocalCluster):
        return
    # Local workloads are placed on tainted pools by role (base/components/node-pools): they must exist.
    needed: dict[str, str] = {}
    for name in enabled_services(spec):
        for w in catalog.BY_NAME[name].workloads:
            if w.pool:
                needed.setdefault(f"{w.pool}-pool", f"{name}/{w.name}")
    by_name = {p.name: p for p in spec.node_pools}
    for pool_name, user in sorted(needed.items()):
        found = by_name.get(pool_name)
        if found is None:
            yield doc.problem(("node_pools",), f"node pool {pool_name!r} is missing; {user} runs on it "
                                               f"(add `- name: {pool_name}` under node_pools)")
        elif not found.tainted and pool_name != "core-pool":
            idx = spec.node_pools.index(found)
            yield doc.problem(("node_pools", idx, "tainted"), f"{pool_name} must be tainted: workloads "
                                                              "select it with a toleration (set tainted: true)")


def _enabled(spec: LocalCluster, name: str) -> Service | None:
    svc: Service | None = getattr(spec.services, name)
    return svc if svc is not None and svc.enabled else None


def datastacks(spec: ClusterSpec, doc: Document) -> Iterator[Problem]:
    if not isinstance(spec, LocalCluster):
        return
    supported = set(spec.datastacks)
    if len(supported) != len(spec.datastacks):
        yield doc.problem(("datastacks",), "datastacks lists a name twice (list each datastack once)")

    def unknown(loc: tuple[str | int, ...], ds: str) -> Problem:
        close = difflib.get_close_matches(ds, sorted(supported), n=1)
        hint = f"did you mean {close[0]!r}?" if close else "add it to `datastacks:` or pick a supported one"
        return doc.problem(loc, f"datastack {ds!r} is not among this cluster's datastacks ({hint})")

    gb = spec.services.settings("guidebook", Guidebook)
    if gb and gb.enabled and gb.datastack not in supported:
        yield unknown(("services", "guidebook", "datastack"), gb.datastack)
    mat = spec.services.settings("materializationengine", Materializationengine)
    if mat and mat.enabled:
        for i, ds in enumerate(mat.datastacks):
            if ds not in supported:
                yield unknown(("services", "materializationengine", "datastacks", i), ds)
    canary = spec.services.settings("cavecanary", Cavecanary)
    if canary and canary.enabled and canary.datastack not in supported:
        yield unknown(("services", "cavecanary", "datastack"), canary.datastack)
    dash = spec.services.settings("dash", Dash)
    if dash and dash.enabled:
        for ds in dash.apps:
            if ds not in supported:
                yield unknown(("services", "dash", "apps", ds), ds)


def materialization(spec: ClusterSpec, doc: Document) -> Iterator[Problem]:
    if not isinstance(spec, LocalCluster):
        return
    mat = spec.services.settings("materializationengine", Materializationengine)
    if mat is None or not mat.enabled:
        return
    base = ("services", "materializationengine")
    if mat.health_aligned_volume is None:
        yield doc.problem(base, key=True, message="health_aligned_volume is required when materialization runs: "
                          "name an aligned volume whose database exists, or /health fails and pods crash-loop")
    if mat.min_databases > mat.max_databases:
        yield doc.problem((*base, "min_databases"), f"min_databases {mat.min_databases} is greater than "
                                                    f"max_databases {mat.max_databases}")
    if not mat.merge_databases:
        version = _version_tuple(mat.version)
        if version is None:
            yield doc.problem((*base, "merge_databases"), f"merge_databases: false needs "
                                                          f"materializationengine >= 4.8; cannot tell from "
                                                          f"version {mat.version!r} (use a release version)")
        elif version < (4, 8):
            yield doc.problem((*base, "merge_databases"), f"merge_databases: false needs materializationengine "
                                                          f">= 4.8, this cluster runs {mat.version} "
                                                          "(upgrade or set merge_databases: true)")
    names = [e.name for e in mat.beat_schedule]
    for i, entry in enumerate(mat.beat_schedule):
        if names.index(entry.name) != i:
            yield doc.problem((*base, "beat_schedule", i, "name"), f"beat schedule name {entry.name!r} is used "
                                                                   "twice (names must be unique)")


def segmentation(spec: ClusterSpec, doc: Document) -> Iterator[Problem]:
    """Meshing and the L2 cache serve the PyChunkedGraph's graphs: they need its settings (graph ids, config)."""
    if not isinstance(spec, LocalCluster) or spec.services.settings("pychunkedgraph", Service) is not None:
        return
    for name in ("meshing", "l2cache"):
        if _enabled(spec, name) is not None:
            yield doc.problem(("services", name), key=True, message=f"{name} needs services.pychunkedgraph "
                              "(its graph_ids and config); configure it, with enabled: false if it runs elsewhere")


def segmentation_source(spec: LocalCluster, pcg_table: str) -> str:
    """The graphene:// URL the info service gives for a datastack's segmentation on this cluster."""
    return f"graphene://https://{derive(spec).primary_hostname}/segmentation/table/{pcg_table}"


def registry(spec: ClusterSpec, doc: Document) -> Iterator[Problem]:
    """The data the global auth and info services must hold for this cluster hangs together."""
    if not isinstance(spec, LocalCluster) or spec.registry is None:
        return
    reg = spec.registry
    volumes = sorted(reg.aligned_volumes)
    pcg = spec.services.settings("pychunkedgraph", Pychunkedgraph)
    tables = set(pcg.graph_ids) if pcg is not None else set()
    hosts = set(derive(spec).hostnames)
    for name, ds in reg.datastacks.items():
        base = ("registry", "datastacks", name)
        if name not in spec.datastacks:
            yield doc.problem(base, key=True, message=f"datastack {name!r} is registered but this cluster does not "
                                                      "serve it (add it to `datastacks:` or remove it here)")
        if ds.aligned_volume not in reg.aligned_volumes:
            close = difflib.get_close_matches(ds.aligned_volume, volumes, n=1)
            hint = f"did you mean {close[0]!r}?" if close else "add it under registry.aligned_volumes"
            yield doc.problem((*base, "aligned_volume"), f"aligned volume {ds.aligned_volume!r} of datastack "
                                                         f"{name!r} is not in registry.aligned_volumes ({hint})")
        if ds.pcg_table not in tables:
            known = ", ".join(sorted(tables)) or "none: configure services.pychunkedgraph"
            yield doc.problem((*base, "pcg_table"), f"PCG table {ds.pcg_table!r} is not among "
                                                    f"services.pychunkedgraph.graph_ids ({known})")
        if ds.segmentation_source is not None:
            m = re.fullmatch(r"graphene://https://([^/]+)/segmentation/table/([A-Za-z0-9_.-]+)", ds.segmentation_source)
            if m is None or m[1] not in hosts or m[2] != ds.pcg_table:
                yield doc.problem((*base, "segmentation_source"), "segmentation_source must be "
                                  f"{segmentation_source(spec, ds.pcg_table)} (this cluster's hostname, its PCG "
                                  "table), or leave it out to use that")
    for i, name in enumerate(spec.datastacks):
        if name not in reg.datastacks:
            yield doc.problem(("datastacks", i), f"datastack {name!r} is served but not in registry.datastacks "
                                               "(add its aligned volume, PCG table and description there)")
    mat = spec.services.settings("materializationengine", Materializationengine)
    if mat is not None and mat.enabled and mat.health_aligned_volume not in (None, *reg.aligned_volumes):
        yield doc.problem(("services", "materializationengine", "health_aligned_volume"),
                          f"aligned volume {mat.health_aligned_volume!r} is not in registry.aligned_volumes "
                          "(the health check needs its database: register it)")


CLUSTER_RULES: tuple[Callable[[ClusterSpec, Document], Iterator[Problem]], ...] = (
    gcp_location,
    gke_names,
    dns_zones,
    service_versions,
    replicas,
    node_pools,
    datastacks,
    materialization,
    segmentation,
    registry,
)


def global_servers(specs: Specs) -> Iterator[Problem]:
    """A local cluster's global_server must be a hostname of a global spec in this repository."""
    served = served_by_globals({name: spec for name, (spec, _) in specs.items()})
    for _, (spec, doc) in sorted(specs.items()):
        if isinstance(spec, LocalCluster) and spec.global_server not in served:
            close = difflib.get_close_matches(spec.global_server, sorted(served), n=1)
            if close:
                hint = f"did you mean {close[0]!r}?"
            elif served:
                hint = f"global hostnames here: {', '.join(sorted(served))}"
            else:
                hint = "add the global cluster's spec to environments/"
            yield doc.problem(("global_server",), f"global_server {spec.global_server!r} is not a hostname of "
                                                  f"any global cluster spec ({hint})")


def unique_hostnames(specs: Specs) -> Iterator[Problem]:
    """Every hostname belongs to one cluster (it gets one certificate and one DNS record)."""
    uses: dict[str, list[tuple[str, Document, tuple[str | int, ...]]]] = {}
    for name, (spec, doc) in sorted(specs.items()):
        for i, host in enumerate(derive(spec).hostnames):
            loc: tuple[str | int, ...] = ("name",) if i == 0 else ("dns", "extra_hostnames", i - 1, "hostname")
            uses.setdefault(host, []).append((name, doc, loc))
    for host, where in sorted(uses.items()):
        if len(where) < 2:
            continue
        for name, doc, loc in where:
            others = sorted({f"cluster {n!r}" if n != name else "this cluster" for n, _, other in where
                             if (n, other) != (name, loc)})
            yield doc.problem(loc, f"hostname {host!r} is also used by {', '.join(others)} (hostnames must be "
                                   "unique across clusters)")


def _created_zones(spec: ClusterSpec) -> list[str]:
    """Zones the cluster's bootstrap creates: those its hostnames use that no other cluster owns."""
    return sorted({z for z in derive(spec).hostname_zones if z in spec.dns.zones and zone_owner(spec, z) == spec.name})


def _at(doc: Document, loc: tuple[str | int, ...]) -> str:
    line, col = doc.position(loc)
    return f"{doc.path}:{line}:{col}"


def one_zone_per_dns_name(specs: Specs) -> Iterator[Problem]:
    """One DNS name is one Cloud DNS zone in one project: only one can be delegated at the registrar.

    Two specs creating a zone for the same DNS name in different projects (or under different zone names)
    leave all but one undelegated, and the records and DNS-01 challenges of the others resolve nowhere.
    A `dns.zone_owners` entry must name a cluster that creates that zone, under that name, in that project.
    The fleet rule `dns-zone` of `validate` reports the same faults from the bootstrap plans and manifests.
    """
    creators: dict[str, list[tuple[str, Document, str, str]]] = {}
    for name, (spec, doc) in sorted(specs.items()):
        for zone in _created_zones(spec):
            creators.setdefault(spec.dns.zones[zone], []).append((name, doc, zone, zone_project(spec, zone)))
    for dns_name, made in sorted(creators.items()):
        if len({(project, zone) for _, _, zone, project in made}) < 2:
            continue
        globals_ = [m for m in made if isinstance(specs[m[0]][0], GlobalCluster)]
        owner, _, owner_zone, owner_project = (globals_ or made)[0]
        for name, doc, zone, project in made:
            others = "; ".join(f"{o_doc.path}:{o_doc.position(('dns', 'zones', o_zone))[0]}:"
                               f"{o_doc.position(('dns', 'zones', o_zone))[1]} creates zone {o_zone!r} in project "
                               f"{o_project}" for o_name, o_doc, o_zone, o_project in made if o_name != name)
            fix = (f"keep it here and in the other specs add dns.zone_owners: {{{owner_zone}: {{cluster: {owner}, "
                   f"project: {owner_project}}}}} (same zone name)" if name == owner else
                   f"add dns.zone_owners: {{{owner_zone}: {{cluster: {owner}, project: {owner_project}}}}} here"
                   + ("" if zone == owner_zone else f" and name the zone {owner_zone!r} like {owner} does"))
            yield doc.problem(("dns", "zones", zone),
                              f"zone {zone!r} for {dns_name} would be created in project {project}, but {others}: "
                              f"one DNS name can be delegated to one zone only ({fix})")
    for _, (spec, doc) in sorted(specs.items()):
        for zone, declared in sorted(spec.dns.zone_owners.items()):
            if zone not in spec.dns.zones or declared.cluster == spec.name:
                continue  # dns_zones reports it
            loc: tuple[str | int, ...] = ("dns", "zone_owners", zone)
            dns_name = spec.dns.zones[zone]
            if declared.cluster not in specs:
                yield doc.problem((*loc, "cluster"), f"zone owner {declared.cluster!r} has no spec in environments/ "
                                                     f"(name the cluster whose spec creates {dns_name}: one of "
                                                     f"{', '.join(sorted(specs))})")
                continue
            owner_spec, owner_doc = specs[declared.cluster]
            owned = {owner_spec.dns.zones[z]: z for z in _created_zones(owner_spec)}
            if dns_name not in owned:
                yield doc.problem((*loc, "cluster"), f"cluster {declared.cluster!r} creates no zone for {dns_name} "
                                                     f"({owner_doc.path}: give one of its hostnames a zone of that "
                                                     "DNS name, or name the cluster that does)")
            elif owned[dns_name] != zone:
                yield doc.problem(("dns", "zones", zone), f"cluster {declared.cluster!r} names the zone of "
                                                          f"{dns_name} {owned[dns_name]!r} "
                                                          f"({_at(owner_doc, ('dns', 'zones', owned[dns_name]))}), "
                                                          f"not {zone!r}: the records go into a zone of that name "
                                                          f"(rename it to {owned[dns_name]!r})", key=True)
            elif (project := zone_project(owner_spec, zone)) != declared.project:
                yield doc.problem((*loc, "project"), f"cluster {declared.cluster!r} creates zone {zone!r} in project "
                                                     f"{project} ({_at(owner_doc, ('dns', 'zones', zone))}), not "
                                                     f"{declared.project} (set project: {project})")


def untainted_pool(specs: Specs) -> Iterator[Problem]:
    """Every cluster needs a node pool without the `pool=<name>:NoSchedule` taint bootstrap gives the others.

    GKE's own kube-system pods (kube-dns, metrics-server, konnectivity-agent) tolerate no custom NoSchedule
    taint, and GKE's add-on manager reverts tolerations added to them; the add-on charts (ingress-nginx,
    cert-manager, External Secrets) carry none either. With only tainted pools they all stay Pending: no
    cluster DNS, and Argo CD's add-on sync waits forever. The fleet rule `schedulable` checks every pod.
    """
    for _, (spec, doc) in sorted(specs.items()):
        if spec.node_pools and all(pool.tainted for pool in spec.node_pools):
            yield doc.problem(("node_pools",), "every node pool is tainted, so GKE's kube-dns, metrics-server and "
                                               "konnectivity-agent (which tolerate no custom taint) and the add-ons "
                                               "(ingress-nginx, cert-manager, External Secrets) would stay Pending "
                                               "(add an untainted pool, e.g. `- {name: core-pool, machine_type: "
                                               "e2-standard-2, min_nodes: 1, max_nodes: 4, tainted: false}`)",
                              key=True)


# Cross-spec checks whose faults a fleet rule of `validate` (the same name) also reports. `build` runs them;
# the fleet loader skips them so that a fleet predating them still loads and `validate` says what is wrong.
FLEET_REPORTED: dict[str, Callable[[Specs], Iterator[Problem]]] = {
    "dns-zone": one_zone_per_dns_name,
    "shared-data": shared_data,  # no two clusters write the same data (compiler/spec/sharing.py)
    "schedulable": untainted_pool,  # system pods and add-ons need an untainted pool
}


def check_all(specs: Specs, *, for_fleet_rules: bool = False, cross_spec: bool = True) -> list[Problem]:
    """Every spec rule over every spec, then the cross-spec rules (without FLEET_REPORTED for the fleet rules).

    `cross_spec=False` when a spec of the fleet failed to load: the cross-spec rules would judge the fleet without
    it and report errors that only follow from its absence (a local's global_server when the global is broken).
    """
    problems: list[Problem] = []
    for name, (spec, doc) in specs.items():
        problems.extend(file_name(name, spec, doc))
        for rule in CLUSTER_RULES:
            problems.extend(rule(spec, doc))
    if not cross_spec:
        return problems
    problems.extend(global_servers(specs))
    problems.extend(unique_hostnames(specs))
    if not for_fleet_rules:
        for cross in FLEET_REPORTED.values():
            problems.extend(cross(specs))
    return problems
