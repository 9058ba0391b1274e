"""The sync order of the app-of-apps: the objects of overlays/argocd/ by Argo CD sync wave, and its diagram.

`parse` reads the manifests build writes there (the files on disk, a commit's blobs, or compile_argocd's tree) into
one `WaveApp` per object: the setup objects of wave -1 (the AppProject, the argocd-cm health check, the root
app-of-apps Application) and, per cluster, its add-on Applications and its CAVE Application, in the waves
argocd.py gives them (WAVES: a global cluster's add-ons, then its CAVE, then the locals' add-ons, then theirs).

`wave_chart` draws them (compiler/mermaid.py): one group per wave in order, an edge from each wave to the next,
one node per cluster listing what its Applications install, locals grouped by the global they use when the caller
knows it, and at most `max_clusters` clusters per wave (a note says how many more). The PR comment's "Sync order"
(compiler/diff/report.py) uses it; `status` reads the same objects (`read`, `by_cluster`) for its table and draws
them in its own fleet chart (compiler/build/status.py), one node per cluster wave there.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from compiler import catalog
from compiler.build.argocd import CAVE, WAVE_SETUP, WAVES
from compiler.build.compile import WAVE, WORKLOAD_WAVE
from compiler.mermaid import Edge, Flowchart, Group, Node
from compiler.spec.yamlio import YAMLError, load_manifests

CLUSTER_LABEL, COMPONENT_LABEL = catalog.CLUSTER_LABEL, catalog.COMPONENT_LABEL
# Clusters a diagram draws: status's fleet chart in all, wave_chart in each wave; a note counts the others. 25: a
# fleet of 20 clusters (the size the diagrams are made readable for) is drawn whole.
MAX_CLUSTERS = 25
MORE_HINT = "see status --format markdown"
# What a cluster's CAVE Application applies, in the sync waves compile.py (and base/materializationengine's
# migration hook) annotate its objects with: Argo CD applies each wave once the previous one is healthy.
# tests/build/test_waves.py checks these against overlays/minnie/ and base/.
IN_CLUSTER_ORDER: tuple[tuple[int, str], ...] = (
    (-3, "secret store"),
    (-2, "configs, Secrets, ServiceAccounts"),
    (-1, "database migration hook"),
    (int(WORKLOAD_WAVE), "workloads"),
)
MARK_PREFIX = {"added": "+ ", "removed": "− ", "changed": "~ "}
STYLES = {  # our own CSS for the marks of a diff (never spec text)
    "added": "fill:#dafbe1,stroke:#1a7f37",
    "removed": "fill:#ffebe9,stroke:#cf222e",
    "changed": "fill:#fff8c5,stroke:#9a6700",
}
_KIND_OF_WAVE = {wave: kind for kind, waves in WAVES.items() for wave in waves}


@dataclass(frozen=True)
class WaveApp:
    """An object of overlays/argocd/ and the sync wave Argo CD applies it in."""

    kind: str  # Application, AppProject, ConfigMap (argocd-cm)
    name: str
    cluster: str | None  # the cave.io/cluster label; None for the setup objects and the app-of-apps
    wave: int  # the sync-wave annotation (0 when absent or not a number, as Argo CD takes it)
    what: str  # an add-on ("cert-manager", METRICS_ADAPTER, ...), CAVE, "app-of-apps", "project", "health check"
    destination: str  # "<cluster name or server>/<namespace>" of an Application; "" for the others

    def as_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "name": self.name, "cluster": self.cluster, "wave": self.wave, "what": self.what,
                "destination": self.destination}

    @property
    def title(self) -> str:
        """What it installs, as a diagram shows it: an add-on's name, "CAVE", or kind and name of a setup object."""
        if self.cluster is None:
            return f"{self.kind} {self.name} ({self.what})" if self.what != self.name else f"{self.kind} {self.name}"
        return "CAVE" if self.what == CAVE else self.what


def _get(obj: Any, *path: str) -> Any:
    for part in path:
        if not isinstance(obj, Mapping):
            return None
        obj = obj.get(part)
    return obj


def _wave(value: Any) -> int:
    try:
        return int(str(value).strip())
    except ValueError:
        return 0


def _what(obj: Mapping[str, Any], kind: str, name: str) -> str:
    component = _get(obj, "metadata", "labels", COMPONENT_LABEL)
    if isinstance(component, str) and component:
        return component
    if kind == "AppProject":
        return "project"
    if kind == "ConfigMap" and name == "argocd-cm":
        return "health check"
    return name


def _destination(obj: Mapping[str, Any]) -> str:
    dest = _get(obj, "spec", "destination")
    if not isinstance(dest, Mapping):
        return ""
    where = str(dest.get("name") or dest.get("server") or "")
    namespace = dest.get("namespace")
    return f"{where}/{namespace}" if namespace else where


def parse(files: Iterable[bytes | str]) -> list[WaveApp]:
    """The objects of overlays/argocd/ files (every YAML document with a kind and a name, Kustomizations left out),
    sorted by wave, then cluster (setup objects first), then the order the files list them. A file that is not
    YAML is skipped (build never writes one; diff and validate say more)."""
    docs: list[Any] = []
    for data in files:
        try:
            docs += load_manifests(data)
        except YAMLError:
            continue
    return of_objects(docs)


def of_objects(docs: Iterable[Any]) -> list[WaveApp]:
    """parse() of manifests already loaded (plain data), in the order given."""
    out: list[tuple[int, str, int, WaveApp]] = []
    for doc in docs:
        kind, name = _get(doc, "kind"), _get(doc, "metadata", "name")
        if not isinstance(kind, str) or not isinstance(name, str) or kind == "Kustomization":
            continue
        cluster = _get(doc, "metadata", "labels", CLUSTER_LABEL)
        app = WaveApp(kind, name, str(cluster) if cluster is not None else None,
                      _wave(_get(doc, "metadata", "annotations", WAVE)), _what(doc, kind, name),
                      _destination(doc) if kind == "Application" else "")
        out.append((app.wave, app.cluster or "", len(out), app))
    return [app for *_, app in sorted(out, key=lambda t: (t[0], t[1], t[2]))]


def read(directory: Path) -> list[WaveApp]:
    """parse() of the YAML files under `directory` (overlays/argocd/), in path order; [] when it is missing."""
    if not directory.is_dir():
        return []
    files = sorted(p for p in directory.rglob("*") if p.is_file() and p.suffix in (".yaml", ".yml"))
    return parse(p.read_bytes() for p in files)


def from_tree(tree: Mapping[str, bytes]) -> list[WaveApp]:
    """parse() of compile_argocd's tree (path → content), in path order."""
    return parse(tree[rel] for rel in sorted(tree) if rel.endswith((".yaml", ".yml")))


def by_cluster(apps: Iterable[WaveApp]) -> list[tuple[int, str | None, list[WaveApp]]]:
    """(wave, cluster, its objects in that wave) in parse's order: a cluster's Applications of one wave together,
    the setup objects (cluster None) of a wave together. The rows of `status` and the nodes of its diagram."""
    out: dict[tuple[int, str | None], list[WaveApp]] = {}
    for app in apps:
        out.setdefault((app.wave, app.cluster), []).append(app)
    return [(wave, cluster, group) for (wave, cluster), group in out.items()]


def titles(apps: Iterable[WaveApp]) -> str:
    return ", ".join(a.title for a in apps)


# --------------------------------------------------------------------------- the diagram


def in_cluster_note() -> str:
    """The order inside a cluster's CAVE Application (IN_CLUSTER_ORDER), for a note beside the CAVE waves."""
    return "inside each CAVE Application: " + " → ".join(f"{what} ({wave})" for wave, what in IN_CLUSTER_ORDER)


def describe(wave: int, apps: Iterable[WaveApp], global_of: Mapping[str, str | None] | None = None) -> str:
    """What a wave holds: "setup", "add-ons of global clusters", "CAVE of local clusters"... The kind of a cluster
    is `global_of`'s (a global maps to itself) when given, else the one argocd.py's WAVES gives the wave."""
    apps = list(apps)
    clusters = {a.cluster for a in apps if a.cluster is not None}
    if not clusters:
        return "setup" if wave == int(WAVE_SETUP) or apps else f"wave {wave}"
    contents = sorted({"CAVE" if a.what == CAVE else "add-ons" for a in apps if a.cluster is not None})
    if global_of is not None:
        kinds = {"global" if global_of.get(c) == c else "local" for c in clusters}
    else:
        kinds = {_KIND_OF_WAVE[wave]} if wave in _KIND_OF_WAVE else set()
    of = f" of {kinds.pop()} clusters" if len(kinds) == 1 else ""
    return " and ".join(contents) + of


def _label(apps: list[WaveApp], marks: Mapping[str, str]) -> str:
    parts = [MARK_PREFIX.get(marks.get(a.name, ""), "") + a.title for a in apps]
    cluster = apps[0].cluster
    return f"{cluster}: {', '.join(parts)}" if cluster is not None else ", ".join(parts)


def _style(apps: list[WaveApp], marks: Mapping[str, str]) -> str | None:
    found = {marks[a.name] for a in apps if a.name in marks}
    if not found:
        return None
    return found.pop() if len(found) == 1 else "changed"


def plural(n: int, noun: str) -> str:
    """`1 cluster`, `2 clusters`."""
    return f"{n} {noun}{'' if n == 1 else 's'}"


def _counts(apps: list[WaveApp]) -> str:
    """`2 clusters · 8 Applications` (and the other objects of a setup wave)."""
    clusters = len({a.cluster for a in apps if a.cluster is not None})
    applications = sum(1 for a in apps if a.kind == "Application")
    others = len(apps) - applications
    parts = [(clusters, "cluster"), (applications, "Application"), (others, "other object")]
    return " · ".join(plural(n, noun) for i, (n, noun) in enumerate(parts) if n or i == 1)


def _items_noun(items: list[str]) -> str:
    return "cluster" if all(i.startswith("c:") for i in items) else "object"


def _wave_group(wave: int, items: dict[str, list[WaveApp]], global_of: Mapping[str, str | None] | None,
                marks: Mapping[str, str], max_clusters: int, more_hint: str, only_marked: bool) -> Group:
    """One wave of wave_chart: its head node, its clusters (marked first when cut; only the marked ones when
    `only_marked`, the others counted; the locals in a group per global) or setup objects, the notes of what was
    counted or cut and the note of the order inside a CAVE Application."""
    key = f"wave:{wave}"
    wave_apps = [a for group in items.values() for a in group]
    group = Group(key, f"wave {wave}: {describe(wave, wave_apps, global_of)}",
                  nodes=[Node(f"{key}:head", _counts(wave_apps), shape="stadium")])

    def home(item: str) -> str | None:
        cluster = items[item][0].cluster
        return global_of.get(cluster) if global_of is not None and cluster is not None else None

    def marked(item: str) -> bool:
        return any(a.name in marks for a in items[item])

    unchanged = [i for i in items if not marked(i)] if only_marked else []
    ranked = sorted((i for i in items if i not in unchanged), key=lambda i: (not marked(i), home(i) or "", i))
    kept, cut = sorted(ranked[:max_clusters]), ranked[max_clusters:]
    locals_of: dict[str, Group] = {}
    for item in kept:
        apps = items[item]
        node = Node(f"{key}:{item}", _label(apps, marks), style=_style(apps, marks))
        cluster, served_by = apps[0].cluster, home(item)
        if global_of is None or cluster is None or served_by == cluster:
            group.nodes.append(node)
            continue
        sub = f"{key}:locals:{served_by or ''}"
        if sub not in locals_of:
            locals_of[sub] = Group(sub, f"locals of {served_by}" if served_by else "locals of an unknown global")
        locals_of[sub].nodes.append(node)
    group.groups.extend(locals_of[k] for k in sorted(locals_of))
    if cut:
        group.nodes.append(Node(f"{key}:more", f"… and {plural(len(cut), 'more ' + _items_noun(cut))} "
                                               f"({more_hint})", shape="note"))
    if unchanged:
        group.nodes.append(Node(f"{key}:unchanged", plural(len(unchanged), "unchanged " + _items_noun(unchanged)),
                                shape="note"))
    if any(a.what == CAVE and a.cluster is not None for a in wave_apps):
        group.nodes.append(Node(f"{key}:order", in_cluster_note(), shape="note"))
    return group


def wave_chart(apps: Iterable[WaveApp], *, global_of: Mapping[str, str | None] | None = None,
               marks: Mapping[str, str] | None = None, max_clusters: int = MAX_CLUSTERS,
               more_hint: str = MORE_HINT, only_marked: bool = False) -> Flowchart:
    """The sync order as a left-to-right flowchart: one group per wave (in order) headed by a node counting its
    clusters and Applications, an edge from each wave's head to the next one's; in a wave, one node per cluster
    (what its Applications there install) or per setup object, the locals grouped by their global when `global_of`
    (cluster → the global cluster it uses, itself for a global, None when unknown) is given. A wave holding CAVE
    Applications has a note of the order inside a cluster. `marks` (Application name → added, removed, changed)
    prefixes and colours what a change touches; marked clusters are drawn first, and with `only_marked` only they
    are drawn (a note per wave counts the others: "3 unchanged clusters"). At most `max_clusters` clusters (or setup
    objects) per wave; a note counts the others ("… and N more clusters (<more_hint>)")."""
    marks = marks or {}
    by_wave: dict[int, dict[str, list[WaveApp]]] = {}
    for app in apps:
        item = f"c:{app.cluster}" if app.cluster is not None else f"o:{app.kind}/{app.name}"
        by_wave.setdefault(app.wave, {}).setdefault(item, []).append(app)
    chart = Flowchart(direction="LR")
    chart.groups = [_wave_group(w, by_wave[w], global_of, marks, max_clusters, more_hint, only_marked)
                    for w in sorted(by_wave)]
    heads = [f"wave:{w}:head" for w in sorted(by_wave)]
    if not heads:
        chart.nodes.append(Node("none", "no Argo CD object", shape="note"))
    chart.edges = [Edge(before, after, "when healthy") for before, after in itertools.pairwise(heads)]
    used = {n.style for n in chart.all_nodes() if n.style}
    chart.styles = {name: STYLES[name] for name in sorted(used)}
    return chart
