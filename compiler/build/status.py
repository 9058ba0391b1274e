"""The fleet at a glance (`python -m compiler status`): each cluster's kind, global server, Argo CD destination
and whether its overlay is in sync; each service's version per cluster as a matrix; the pinned add-on charts and
tools of gitops.yaml; each cluster's node pools, and the Argo CD Applications of overlays/argocd/ (as committed
there: the `argocd` overlay state says whether that is what the specs compile to) by sync wave, which give each
cluster's add-ons. As text, Markdown (with the fleet diagram), Mermaid (the diagram alone: `fleet_chart`) and
JSON, all from one `Status`; the PR comment starts with the rows a change alters (`version_changes`, used by
compiler/diff).

JSON (`--format json`), stable; fields are only ever added, `version` bumps otherwise:

    {
      "version": 1,
      "clusters": [{"name", "kind", "global_server": str|null, "project", "argocd_destination", "overlay",
                                              # overlay: "in sync" | "stale" | "missing"
                    "global_cluster": str|null,  # the global spec of this repository a local uses
                    "node_pools": [{"name", "machine_type", "min_nodes": int, "max_nodes": int,
                                    "preemptible": bool, "taints": [str]}],   # taints: "pool=<name>:NoSchedule"
                    "addons": [str]}],        # its add-on Applications' components (cert-manager, ...)
      "in_sync": bool,                        # every overlay, overlays/argocd/ included, is what build writes
      "orphaned": [str],                      # generated overlays whose spec is gone
      "services": [str],                      # catalogue order, services some cluster names
      "versions": {service: {cluster: str}},  # the version, or "disabled"; absent: the spec leaves it out
      "argocd": {"overlay": "in sync"|"stale"|"missing"|null, "version": str|null, "kustomize": str|null},
      "addons": [{"name", "chart": str|null, "version", "repo_url": str|null}],  # chart null: an image (tag)
      "applications": [{"kind", "name", "cluster": str|null, "wave": int,   # overlays/argocd/ by sync wave
                        "what": str,          # add-on, "cave", "app-of-apps", "project", "health check"
                        "destination": str}]  # "<Argo CD cluster>/<namespace>"; "" for a non-Application
    }
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from compiler import catalog
from compiler.build import overlays, waves
from compiler.build.argocd import CAVE, IN_CLUSTER
from compiler.build.check import stale, stale_message
from compiler.build.waves import MAX_CLUSTERS, MORE_HINT, WaveApp, plural
from compiler.mermaid import MAX_LABEL, Edge, Flowchart, Group, Node, TooLarge, fenced, render
from compiler.paths import ARGOCD_DIR, OVERLAYS, SETTINGS_FILE
from compiler.spec.fleet import global_of
from compiler.spec.load import load_all
from compiler.spec.model import NodePool
from compiler.spec.settings import Chart, PinnedImage, load_settings
from compiler.spec.yamlio import to_plain

JSON_VERSION = 1
DISABLED = "disabled"
FORMATS = ("text", "markdown", "mermaid", "json")


@dataclass(frozen=True)
class PoolRow:
    """A node pool of a spec, as bootstrap creates it."""

    name: str
    machine_type: str
    min_nodes: int
    max_nodes: int
    preemptible: bool
    taints: tuple[str, ...]

    @classmethod
    def of(cls, pool: NodePool) -> PoolRow:
        return cls(pool.name, pool.machine_type, pool.min_nodes, pool.max_nodes, pool.preemptible, tuple(pool.taints))

    @property
    def nodes(self) -> str:
        return f"{self.min_nodes}–{self.max_nodes}"


@dataclass(frozen=True)
class ClusterRow:
    name: str
    kind: str
    global_server: str | None  # a local's global; None for a global cluster
    project: str
    argocd_destination: str
    overlay: str  # "in sync", "stale", "missing"
    global_cluster: str | None = None  # the spec of this repository serving global_server (None: a global, or none)
    node_pools: tuple[PoolRow, ...] = ()


@dataclass(frozen=True)
class Addon:
    name: str
    chart: str | None  # None: a pinned image, not a chart
    version: str
    repo_url: str | None


@dataclass
class Status:
    clusters: list[ClusterRow]
    versions: dict[str, dict[str, str]]  # service → cluster → version or DISABLED
    addons: list[Addon] = field(default_factory=list)
    argocd_overlay: str | None = None
    argocd_version: str | None = None
    kustomize: str | None = None
    orphaned: list[str] = field(default_factory=list)
    # overlays/argocd/ as committed, by sync wave (waves.parse): setup objects, each cluster's Applications
    applications: list[WaveApp] = field(default_factory=list)

    @property
    def in_sync(self) -> bool:
        return (all(c.overlay == "in sync" for c in self.clusters) and self.argocd_overlay in (None, "in sync")
                and not self.orphaned)

    def addons_of(self, cluster: str) -> list[str]:
        """The add-ons a cluster's Applications install (every one but its CAVE Application), in file order."""
        return [a.what for a in self.applications if a.cluster == cluster and a.what != CAVE]


def service_versions(data: Any) -> dict[str, str]:
    """service → its version (or "disabled") in a spec's plain data, in catalogue order; services it leaves out,
    or written without a version, are absent. Works on a spec that does not load (a base commit's)."""
    services = data.get("services") if isinstance(data, Mapping) else None
    if not isinstance(services, Mapping):
        return {}
    out: dict[str, str] = {}
    for entry in catalog.SERVICES:
        section = services.get(entry.name)
        if isinstance(section, Mapping) and section.get("version") is not None:
            out[entry.name] = DISABLED if section.get("enabled") is False else str(section["version"])
    return out


def pinned_versions(data: Any) -> dict[str, str]:
    """What gitops.yaml pins, in plain data (a base commit's too): "argocd" and "kustomize" → their release, each
    add-on → its chart version or image tag; the `status` rows of the pins."""
    if not isinstance(data, Mapping):
        return {}
    out: dict[str, str] = {}
    for key in ("argocd", "kustomize"):
        section = data.get(key)
        if isinstance(section, Mapping) and section.get("version") is not None:
            out[key] = str(section["version"])
    addons = data.get("addons")
    for name, pin in (addons.items() if isinstance(addons, Mapping) else ()):
        if isinstance(pin, Mapping) and (pin.get("version") or pin.get("tag")) is not None:
            out[str(name)] = str(pin.get("version") or pin.get("tag"))
    return out


def fleet_status(root: Path, *, use_cache: bool = True) -> Status:
    """The status of every cluster of the repository at `root` (UserError when a spec does not load)."""
    loaded = load_all(root, for_fleet_rules=True)
    messages = {p.message for p in stale(root, None, argocd=True, loaded=loaded, use_cache=use_cache)}

    def overlay(name: str) -> str:
        if stale_message(name, missing=True) in messages:
            return "missing"
        return "stale" if stale_message(name) in messages else "in sync"

    rows = []
    versions: dict[str, dict[str, str]] = {s.name: {} for s in catalog.SERVICES}
    specs = {name: loaded[name].spec for name in loaded}
    for name in sorted(loaded):
        spec = loaded[name].spec
        dest = spec.argocd.server or spec.argocd.name or ""
        rows.append(ClusterRow(name, spec.kind, getattr(spec, "global_server", None), spec.gcp.project, dest,
                               overlay(name), global_of(spec, specs), tuple(PoolRow.of(p) for p in spec.node_pools)))
        for service, version in service_versions(to_plain(loaded[name].doc.data)).items():
            versions[service][name] = version
    status = Status(rows, {s: v for s, v in versions.items() if v})
    status.orphaned = [c for c in overlays.generated_overlays(root) if c not in loaded]
    status.applications = waves.read(root / OVERLAYS / ARGOCD_DIR)
    settings = load_settings(root)
    if settings is not None:
        status.argocd_overlay = overlay(overlays.ARGOCD)
        status.argocd_version = settings.settings.argocd.version
        kustomize = settings.settings.kustomize
        status.kustomize = kustomize.version if kustomize is not None else None
        for name, pin in settings.settings.addons:
            if isinstance(pin, Chart):
                status.addons.append(Addon(name, pin.chart, pin.version, pin.repo_url))
            elif isinstance(pin, PinnedImage):
                status.addons.append(Addon(name, None, pin.tag, pin.image))
    return status


# --------------------------------------------------------------------------- formats


def _cluster_cells(row: ClusterRow) -> list[str]:
    return [row.name, row.kind, row.global_server or "-", row.project, row.argocd_destination, row.overlay]


CLUSTER_HEADERS = ["cluster", "kind", "global server", "project", "Argo CD destination", "overlay"]


def _version_rows(status: Status) -> tuple[list[str], list[list[str]]]:
    names = [c.name for c in status.clusters]
    rows = [[service, *(cells.get(c, "-") for c in names)] for service, cells in status.versions.items()]
    return ["service", *names], rows


def _addon_cells(addon: Addon) -> list[str]:
    return [addon.name, addon.chart or "(image)", addon.version, addon.repo_url or ""]


ADDON_HEADERS = ["add-on", "chart", "version", "from"]
POOL_HEADERS = ["cluster", "node pool", "machine type", "nodes", "preemptible", "taints"]
WAVE_HEADERS = ["wave", "cluster", "installs"]
WAVES_TITLE = f"Argo CD sync waves ({OVERLAYS}/{ARGOCD_DIR}/)"


def _pool_rows(status: Status) -> list[list[str]]:
    return [[c.name, p.name, p.machine_type, p.nodes, "yes" if p.preemptible else "no", ", ".join(p.taints) or "-"]
            for c in status.clusters for p in c.node_pools]


def _wave_rows(status: Status) -> list[list[str]]:
    return [[str(wave), cluster or "-", waves.titles(apps)] for wave, cluster, apps in waves.by_cluster(
        status.applications)]


def _table(headers: list[str], rows: list[list[str]]) -> list[str]:
    widths = [max(len(r[i]) for r in [headers, *rows]) for i in range(len(headers))]
    return ["  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip()
            for row in [headers, *rows]]


def _sync_line(status: Status) -> str:
    if status.in_sync:
        return "overlays: in sync with environments/"
    parts = [f"{c.name} {c.overlay}" for c in status.clusters if c.overlay != "in sync"]
    if status.argocd_overlay not in (None, "in sync"):
        parts.append(f"{OVERLAYS}/{overlays.ARGOCD} {status.argocd_overlay}")
    parts += [f"{c} orphaned" for c in status.orphaned]
    return f"overlays: NOT in sync ({', '.join(parts)}): run python -m compiler build"


def _pins(status: Status) -> str | None:
    pins = [f"Argo CD {status.argocd_version}" if status.argocd_version else "",
            f"kustomize {status.kustomize}" if status.kustomize else ""]
    return ", ".join(p for p in pins if p) or None


def format_text(status: Status) -> str:
    out = [_sync_line(status), "", *_table(CLUSTER_HEADERS, [_cluster_cells(c) for c in status.clusters])]
    headers, rows = _version_rows(status)
    if rows:
        out += ["", *_table(headers, rows)]
    if status.addons:
        out += ["", f"{SETTINGS_FILE} pins" + (f": {pins}" if (pins := _pins(status)) else ""),
                *_table(ADDON_HEADERS, [_addon_cells(a) for a in status.addons])]
    if pools := _pool_rows(status):
        out += ["", "node pools", *_table(POOL_HEADERS, pools)]
    if rows := _wave_rows(status):
        out += ["", WAVES_TITLE, *_table(WAVE_HEADERS, rows)]
    return "\n".join(out) + "\n"


def _md(text: str) -> str:
    return text.replace("|", "\\|").replace("`", "'").replace("<", "&lt;").replace(">", "&gt;")


def md_table(headers: list[str], rows: list[list[str]]) -> list[str]:
    """A Markdown table, cells escaped."""
    return ["| " + " | ".join(_md(h) for h in headers) + " |", "|" + " --- |" * len(headers),
            *("| " + " | ".join(_md(c) for c in row) + " |" for row in rows)]


def format_markdown(status: Status) -> str:
    out = ["### CAVE fleet status", "", f"**{_md(_sync_line(status))}**", "",
           *md_table(CLUSTER_HEADERS, [_cluster_cells(c) for c in status.clusters])]
    headers, rows = _version_rows(status)
    if rows:
        out += ["", "**Service versions**", "", *md_table(headers, rows)]
    if status.addons:
        out += ["", f"**Pinned in {SETTINGS_FILE}**" + (f" ({_md(pins)})" if (pins := _pins(status)) else ""), "",
                *md_table(ADDON_HEADERS, [_addon_cells(a) for a in status.addons])]
    if pools := _pool_rows(status):
        out += ["", "**Node pools**", "", *md_table(POOL_HEADERS, pools)]
    if rows := _wave_rows(status):
        out += ["", f"**{_md(WAVES_TITLE)}**", "", *md_table(WAVE_HEADERS, rows)]
    out += ["", "#### Diagram", "", fenced(fleet_diagram(status, more_hint=TABLES_HINT))]
    return "\n".join(out) + "\n"


def as_json_data(status: Status) -> dict[str, Any]:
    return {
        "version": JSON_VERSION,
        "clusters": [{"name": c.name, "kind": c.kind, "global_server": c.global_server, "project": c.project,
                      "argocd_destination": c.argocd_destination, "overlay": c.overlay,
                      "global_cluster": c.global_cluster,
                      "node_pools": [{"name": p.name, "machine_type": p.machine_type, "min_nodes": p.min_nodes,
                                      "max_nodes": p.max_nodes, "preemptible": p.preemptible,
                                      "taints": list(p.taints)} for p in c.node_pools],
                      "addons": status.addons_of(c.name)} for c in status.clusters],
        "in_sync": status.in_sync,
        "orphaned": list(status.orphaned),
        "services": list(status.versions),
        "versions": status.versions,
        "argocd": {"overlay": status.argocd_overlay, "version": status.argocd_version, "kustomize": status.kustomize},
        "addons": [{"name": a.name, "chart": a.chart, "version": a.version, "repo_url": a.repo_url}
                   for a in status.addons],
        "applications": [a.as_dict() for a in status.applications],
    }


def format_status(status: Status, fmt: str) -> str:
    if fmt == "json":
        return json.dumps(as_json_data(status), indent=2, ensure_ascii=False) + "\n"
    if fmt == "mermaid":
        return render(fleet_diagram(status))
    return format_markdown(status) if fmt == "markdown" else format_text(status)


# --------------------------------------------------------------------------- the fleet diagram

MAX_POOLS = 8  # node pools drawn per global cluster
LOCAL_POOLS = 2  # node pools named in a local cluster's node
TABLES_HINT = "see the tables above"  # where status --format markdown's diagram sends a reader for what it cuts
FLEET_STYLES = {"global": "fill:#ddf4ff,stroke:#0969da", "stale": "fill:#fff8c5,stroke:#9a6700"}


def _pool_label(pool: PoolRow) -> str:
    parts = [pool.name, pool.machine_type, f"{pool.nodes} nodes"]
    if pool.preemptible:
        parts.append("preemptible")
    parts += [f"taint {t}" for t in pool.taints]
    return " · ".join(parts)


def _cluster_group(status: Status, row: ClusterRow, chart: Flowchart, more_hint: str) -> Group:
    """A global cluster's box: the cluster (project, Argo CD destination, overlay state), its node pools, and its
    Applications wave by wave, each wave's node linked to the next (Argo CD syncs a wave once the one before is
    healthy)."""
    key = f"cluster:{row.name}"
    label = f"{row.name} · GCP {row.project} · Argo CD {row.argocd_destination}"
    stale = row.overlay != "in sync"
    head = Node(key, label + (f" · overlay {row.overlay}" if stale else ""), shape="stadium",
                style="stale" if stale else ("global" if row.kind == "global" else None))
    group = Group(f"box:{row.name}", f"{row.name} ({row.kind})", nodes=[head])
    pools = Group(f"pools:{row.name}", "node pools",
                  nodes=[Node(f"pool:{row.name}:{p.name}", _pool_label(p)) for p in row.node_pools[:MAX_POOLS]])
    if len(row.node_pools) > MAX_POOLS:
        left = len(row.node_pools) - MAX_POOLS
        pools.nodes.append(Node(f"pool:{row.name}:more", f"… and {plural(left, 'more node pool')} ({more_hint})",
                                shape="note"))
    group.groups.append(pools)
    previous = key
    rows = [(wave, apps) for wave, cluster, apps in waves.by_cluster(status.applications) if cluster == row.name]
    for wave, apps in rows:
        node = Node(f"wave:{row.name}:{wave}", f"wave {wave} · {waves.titles(apps)}", shape="round")
        group.nodes.append(node)
        chart.edges.append(Edge(previous, node.key, "Argo CD syncs" if previous == key else "when healthy",
                                dotted=previous == key))
        previous = node.key
    if not rows:
        group.nodes.append(Node(f"wave:{row.name}:none", f"no Application in {OVERLAYS}/{ARGOCD_DIR}/ "
                                                         "(run python -m compiler build)", shape="note"))
    return group


def local_label(status: Status, row: ClusterRow) -> str:
    """A local cluster in one line: `l001 · GCP <project> · waves 2, 3 · pools: core-pool, pcg-pool (2–14 nodes) ·
    add-ons: cert-manager, …`, its overlay state after its name when not in sync. Its node pools are named while
    the label fits mermaid.MAX_LABEL (all, then the first LOCAL_POOLS and "…", then only counted: "4 pools (4–124
    nodes)"); the add-ons come last, so a label still too long loses the end of their list."""
    head = [row.name + (f" (overlay {row.overlay})" if row.overlay != "in sync" else ""), f"GCP {row.project}"]
    cluster_waves = sorted({a.wave for a in status.applications if a.cluster == row.name})
    head.append(f"wave{'s' if len(cluster_waves) > 1 else ''} {', '.join(map(str, cluster_waves))}"
                if cluster_waves else f"no Application in {OVERLAYS}/{ARGOCD_DIR}/")
    addons = status.addons_of(row.name)
    tail = [f"add-ons: {', '.join(addons)}"] if addons else []
    if not row.node_pools:
        return " · ".join([*head, *tail])
    nodes = f"{sum(p.min_nodes for p in row.node_pools)}–{sum(p.max_nodes for p in row.node_pools)} nodes"
    label = ""
    for named in (len(row.node_pools), LOCAL_POOLS, 0):
        names = [p.name for p in row.node_pools[:named]] + (["…"] if len(row.node_pools) > named > 0 else [])
        pools = f"pools: {', '.join(names)} ({nodes})" if names else f"{plural(len(row.node_pools), 'pool')} ({nodes})"
        label = " · ".join([*head, pools, *tail])
        if len(label) <= MAX_LABEL:
            break
    return label


def fleet_chart(status: Status, *, max_clusters: int = MAX_CLUSTERS, more_hint: str = MORE_HINT) -> Flowchart:
    """The fleet as a flowchart: each global cluster's box (its node pools, its Applications by sync wave), then a
    box per global of the locals that use it, one node each (`local_label`) in name order with an edge to the
    global; a global of another repository is a node of its own. At most `max_clusters` clusters, globals first:
    a note counts the others (in the locals' box for its locals, beside the globals for globals cut with their
    locals), so every cluster is drawn or counted. The setup objects of overlays/argocd/ (wave -1) sit in a box
    linked to the cluster Argo CD runs in, with a note of Applications whose cluster has no spec."""
    chart = Flowchart(direction="LR", styles=dict(FLEET_STYLES))
    setup = [(wave, apps) for wave, cluster, apps in waves.by_cluster(status.applications) if cluster is None]
    names = {c.name for c in status.clusters}
    strays = sorted({a.cluster for a in status.applications if a.cluster is not None and a.cluster not in names})
    if setup or strays:
        state = f" · overlay {status.argocd_overlay}" if status.argocd_overlay not in (None, "in sync") else ""
        box = Group("argocd", f"Argo CD app-of-apps ({OVERLAYS}/{ARGOCD_DIR}/){state}", nodes=[
            Node(f"setup:{wave}", f"wave {wave} · {waves.titles(apps)}", shape="round") for wave, apps in setup])
        if strays:
            box.nodes.append(Node("strays", f"Applications of {plural(len(strays), 'cluster')} with no spec: "
                                            f"{', '.join(strays)} (run python -m compiler build)", shape="note"))
        chart.groups.append(box)
    room = max(0, max_clusters)
    globals_ = [c for c in status.clusters if c.kind == "global"]
    served: dict[str, list[ClusterRow]] = {}  # a global (its name, or "host:<global_server>") → its locals
    for c in status.clusters:
        if c.kind != "global":
            served.setdefault(c.global_cluster or f"host:{c.global_server}", []).append(c)
    drawn_globals, room = globals_[:room], room - len(globals_[:room])
    hidden = sum(1 + len(served.pop(g.name, [])) for g in globals_[len(drawn_globals):])
    for g in drawn_globals:
        chart.groups.append(_cluster_group(status, g, chart, more_hint))
    for home in sorted(served, key=lambda h: (h.startswith("host:"), h)):
        target, title = f"cluster:{home}", home
        if home.startswith("host:"):
            server = home.removeprefix("host:")
            target, title = f"external:{server}", f"{server} (not in this repository)"
            chart.nodes.append(Node(target, f"global {title}", shape="stadium", style="global"))
        rows = sorted(served[home], key=lambda r: r.name)
        servers = sorted({r.global_server or "" for r in rows})
        one_server = len(servers) == 1  # then the box names it, not each edge
        box = Group(f"locals:{home}", f"locals of {title}" + (f" · they use {servers[0]}" if one_server else ""))
        for row in rows[:room]:
            box.nodes.append(Node(f"cluster:{row.name}", local_label(status, row),
                                  style="stale" if row.overlay != "in sync" else None))
            chart.edges.append(Edge(f"cluster:{row.name}", target, None if one_server else f"uses {row.global_server}"))
        if left := len(rows) - len(rows[:room]):  # last in the box: drawn below the locals
            box.nodes.append(Node(f"locals:{home}:more", f"… and {plural(left, 'more cluster')} ({more_hint})",
                                  shape="note"))
        room -= len(rows[:room])
        chart.groups.append(box)
    if hidden:
        chart.nodes.append(Node("more-globals", f"… and {plural(hidden, 'more cluster')} ({more_hint})",
                                shape="note"))
    drawn = {n.key for n in chart.all_nodes()}
    argocd_in = [f"cluster:{c.name}" for c in status.clusters if c.argocd_destination == IN_CLUSTER]
    if setup and len(argocd_in) == 1 and argocd_in[0] in drawn:
        chart.edges.insert(0, Edge(f"setup:{setup[0][0]}", argocd_in[0], "Argo CD runs in", dotted=True))
    return chart


def fleet_diagram(status: Status, *, more_hint: str = MORE_HINT) -> Flowchart:
    """fleet_chart, with fewer clusters drawn until Mermaid would draw it (mermaid.MAX_NODES, MAX_EDGES,
    MAX_SOURCE); when not even the chart without clusters would, a chart of one note saying so. Never raises."""
    max_clusters = MAX_CLUSTERS
    while True:
        chart = fleet_chart(status, max_clusters=max_clusters, more_hint=more_hint)
        try:
            render(chart)
            return chart
        except TooLarge:
            if max_clusters == 0:
                break
            max_clusters //= 2
    note = (f"the fleet of {plural(len(status.clusters), 'cluster')} is too large for a Mermaid diagram "
            f"({more_hint}, or status --format json)")
    return Flowchart(direction="LR", nodes=[Node("too-large", note, shape="note")])


# --------------------------------------------------------------------------- what a change does to it


@dataclass(frozen=True)
class VersionChange:
    service: str
    cluster: str
    old: str | None  # None: not in the spec (a new cluster or service)
    new: str | None  # None: removed


def version_changes(old: Mapping[str, Any], new: Mapping[str, Any]) -> list[VersionChange]:
    """The service versions that differ between two fleets, given as cluster → spec plain data, sorted by
    service (catalogue order) then cluster."""
    order = {s.name: i for i, s in enumerate(catalog.SERVICES)}
    out = []
    for cluster in sorted(set(old) | set(new)):
        before = service_versions(old.get(cluster))
        after = service_versions(new.get(cluster))
        for service in set(before) | set(after):
            if before.get(service) != after.get(service):
                out.append(VersionChange(service, cluster, before.get(service), after.get(service)))
    return sorted(out, key=lambda c: (order.get(c.service, len(order)), c.service, c.cluster))


def pin_changes(old: Any, new: Any) -> list[VersionChange]:
    """What gitops.yaml pins differently (Argo CD, kustomize, each add-on), as rows of its own "cluster"
    SETTINGS_FILE, in the order the new file (then the old) lists them."""
    before, after = pinned_versions(old), pinned_versions(new)
    keys = [*after, *(k for k in before if k not in after)]
    return [VersionChange(k, SETTINGS_FILE, before.get(k), after.get(k)) for k in keys if before.get(k) != after.get(k)]
