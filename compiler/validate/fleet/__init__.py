"""Fleet rules: deployability checks that look at the whole fleet at once.

A per-object check cannot see that a pod tolerates none of its cluster's node pools, that an HPA reads a
metric nothing in the cluster provides, or that Argo CD's first sync would wait forever on a secret only an
operator can make once a later wave runs. These rules see, together: every cluster's rendered objects, the
Argo CD app-of-apps (add-on charts and their values, sync waves, the health checks), the specs (node pools,
DNS, projects: findings point at `environments/<cluster>.yaml:LINE:COL` where a spec value is the cause) and
each cluster's bootstrap plan (Google service accounts, roles, secrets, DNS zones).

Each rule is a function `Fleet -> Iterator[Finding]` registered with `@fleet_rule(name)` in a module of this
package; `compiler.validate.fleet.rules` imports them all and runs them (`check_fleet`).
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from compiler.bootstrap.desired import desired
from compiler.bootstrap.model import Resource
from compiler.catalog import CLUSTER_LABEL
from compiler.paths import ARGOCD_DIR, OVERLAYS
from compiler.render import kustomize
from compiler.render.cache import default_cache
from compiler.render.hashing import InputHasher
from compiler.render.jobs import Rendered, RenderJob, make_job, render_clusters, render_jobs
from compiler.render.manifests import get, object_id
from compiler.render.sources import list_clusters, worktree_source
from compiler.spec.load import Loaded, load_all
from compiler.spec.model import ClusterSpec
from compiler.spec.settings import LoadedSettings, load_settings
from compiler.spec.yamlio import Loc
from compiler.validate.model import Finding, Obj
from compiler.validate.rules import ClusterSet

FleetRule = Callable[["Fleet"], Iterator[Finding]]
FLEET_RULES: dict[str, FleetRule] = {}


def fleet_rule(name: str) -> Callable[[FleetRule], FleetRule]:
    """Register a fleet rule under the name its findings carry."""

    def register(func: FleetRule) -> FleetRule:
        FLEET_RULES[name] = func
        return func

    return register


@dataclass
class Fleet:
    """Everything the fleet rules look at, for every cluster of the repository."""

    root: Path
    loaded: dict[str, Loaded]  # cluster -> spec and its document (positions)
    settings: LoadedSettings | None  # gitops.yaml, when the repository has one
    objects: dict[str, list[Obj]]  # cluster -> its rendered overlay
    argocd: list[Obj]  # the rendered overlays/argocd (empty without gitops.yaml)
    # cluster -> what its add-on Applications with a repository path install (the metrics adapter's overlay
    # overlays/argocd/addons/<cluster>/custom-metrics), rendered; Helm-chart add-ons: validate/fleet/charts.py
    addon_objects: dict[str, list[Obj]] = field(default_factory=dict)

    def spec(self, cluster: str) -> ClusterSpec:
        return self.loaded[cluster].spec

    @property
    def clusters(self) -> list[str]:
        return sorted(self.loaded)

    def views(self) -> Iterator[ClusterView]:
        """Every cluster's rendered objects with its spec and plan, in cluster order."""
        for cluster in self.clusters:
            yield ClusterView(cluster, self.spec(cluster), ClusterSet(cluster, self.objects.get(cluster, [])),
                              self.plans[cluster])

    @functools.cached_property
    def plans(self) -> dict[str, list[Resource]]:
        """cluster -> the resources `bootstrap` plans for it (offline, from the spec alone)."""
        return {c: desired(self.spec(c)) for c in self.clusters}

    def where(self, cluster: str, loc: Loc, *, key: bool = False) -> str:
        """`environments/<cluster>.yaml:LINE:COL` of a spec value (the closest enclosing key if it is absent)."""
        doc = self.loaded[cluster].doc
        line, col = doc.position(loc, key=key)
        return f"{doc.path}:{line}:{col}"

    def spec_finding(self, cluster: str, loc: Loc, rule: str, message: str, *, key: bool = False) -> Finding:
        """A finding caused by a spec value: reported at its file:line:col."""
        return Finding(cluster, "", "", "", "", rule, message, where=self.where(cluster, loc, key=key))

    def argocd_objects(self, kind: str) -> list[Obj]:
        return [o for o in self.argocd if o.get("kind") == kind]

    @functools.cached_property
    def addon_paths(self) -> dict[str, list[str]]:
        """cluster -> the repository paths under overlays/argocd/ its add-on Applications sync (not charts)."""
        return addon_paths(self.argocd)

    @functools.cached_property
    def applications(self) -> dict[str, list[Obj]]:
        """cluster -> its Argo CD Applications (label cave.io/cluster), by name."""
        out: dict[str, list[Obj]] = {}
        for app in self.argocd_objects("Application"):
            cluster = get(app, "metadata", "labels", CLUSTER_LABEL)
            if isinstance(cluster, str):
                out.setdefault(cluster, []).append(app)
        return {c: sorted(apps, key=lambda a: str(get(a, "metadata", "name"))) for c, apps in out.items()}


@dataclass
class ClusterView:
    """One cluster of the fleet as the rules over its pods read it: spec, rendered objects, bootstrap plan."""

    cluster: str
    spec: ClusterSpec
    objects: ClusterSet
    plan: list[Resource]

    def namespace(self, obj: Obj) -> str:
        """The namespace an object is applied in: its own, else its Argo CD Application's destination."""
        return object_id(obj)[2] or self.spec.argocd.namespace

    @functools.cached_property
    def _accounts(self) -> dict[tuple[str, str], Obj]:
        return {(self.namespace(o), object_id(o)[3]): o for o in self.objects.of_kind("ServiceAccount")}

    def service_account(self, owner: Obj, pod: Obj) -> tuple[str, Obj | None]:
        """The Kubernetes ServiceAccount pod spec `pod` of workload `owner` runs as: its name, and the object in
        the workload's namespace (None when the cluster has none)."""
        name = str(pod.get("serviceAccountName") or "default")
        return name, self._accounts.get((self.namespace(owner), name))


def addon_paths(argocd: list[Obj]) -> dict[str, list[str]]:
    """cluster -> the repository paths under overlays/argocd/ its add-on Applications sync (not charts)."""
    out: dict[str, list[str]] = {}
    for app in argocd:
        path = get(app, "spec", "source", "path")
        cluster = get(app, "metadata", "labels", CLUSTER_LABEL)
        if (app.get("kind") == "Application" and isinstance(path, str) and isinstance(cluster, str)
                and path.startswith(f"{OVERLAYS}/{ARGOCD_DIR}/")):
            out.setdefault(cluster, []).append(path)
    return {c: sorted(paths) for c, paths in sorted(out.items())}


@dataclass(frozen=True)
class FleetRenders:
    """Every render the fleet rules read, as text (parsed only when the rules run): each cluster's overlay, the
    app-of-apps (None without gitops.yaml) and, by cluster, the add-on overlays its Applications sync."""

    clusters: dict[str, Rendered]
    argocd: Rendered | None
    addons: dict[str, list[Rendered]]

    def digests(self) -> dict[str, str]:
        """label → sha256 of the rendered text, for every render (validate/cache.py keys the fleet rules by it)."""
        out = {f"cluster {c}": r.digest for c, r in self.clusters.items()}
        if self.argocd is not None:
            out[f"path {self.argocd.label}"] = self.argocd.digest
        out |= {f"path {r.label}": r.digest for rs in self.addons.values() for r in rs}
        return out


def fleet_renders(root: Path, *, use_cache: bool = True,
                  rendered: Mapping[str, Rendered] | None = None) -> FleetRenders:
    """Render (or read from the cache) everything the fleet rules read; `rendered`: clusters already rendered."""
    clusters = list_clusters(root)
    have = dict(rendered or {})
    have |= render_clusters(root, [c for c in clusters if c not in have], use_cache=use_cache)
    argocd_dir = root / OVERLAYS / ARGOCD_DIR
    if load_settings(root) is None or not argocd_dir.is_dir():
        return FleetRenders({c: have[c] for c in clusters}, None, {})
    tool = kustomize.find(root)
    cache = default_cache(root) if use_cache else None
    hasher = InputHasher(worktree_source(root.absolute()), parsed=cache.parsed if cache is not None else None)

    def job(path: str) -> RenderJob:
        return make_job(hasher, path, path, (root / path).absolute(), tool.version)

    [argocd] = render_jobs([job(f"{OVERLAYS}/{ARGOCD_DIR}")], tool, cache)
    paths = {c: [p for p in ps if (root / p).is_dir()] for c, ps in addon_paths(argocd.objects).items()
             if c in clusters}
    by_path = {r.label: r for r in render_jobs([job(p) for ps in paths.values() for p in ps], tool, cache)}
    addons = {c: [by_path[p] for p in ps] for c, ps in paths.items()}
    return FleetRenders({c: have[c] for c in clusters}, argocd, addons)


def load_fleet(root: Path, *, use_cache: bool = True, rendered: Mapping[str, Rendered] | None = None,
               loaded: dict[str, Loaded] | None = None, renders: FleetRenders | None = None) -> Fleet:
    """The whole fleet of the repository at `root`: specs, settings, every rendered overlay (cached).

    `rendered`, `loaded` and `renders` hold what the caller already has (renders it may have parsed, the specs it
    loaded, fleet_renders' result): only the rest is rendered or read.
    """
    if loaded is None:
        loaded = load_all(root, for_fleet_rules=True)  # a build-time check a fleet rule reports must not stop it
    if renders is None:
        renders = fleet_renders(root, use_cache=use_cache, rendered=rendered)
    clusters = [c for c in renders.clusters if c in loaded]
    argocd = list(renders.argocd.objects) if renders.argocd is not None else []
    addon_objects = {c: [o for r in rs for o in r.objects] for c, rs in renders.addons.items() if c in loaded}
    return Fleet(root, loaded, load_settings(root), {c: list(renders.clusters[c].objects) for c in clusters}, argocd,
                 addon_objects)
