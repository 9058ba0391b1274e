"""Argo CD's first sync of a fleet, modelled: which objects get applied and how healthy each becomes, given
the Secret Manager secrets that have a version (the "world"). The fleet rule `first-sync` (firstsync.py) and the
bring-up test run it.

It replays what Argo CD does (facts: gitops-engine `pkg/sync`, `pkg/health`, argo-cd `controller/health.go`):
- The root Application (overlays/argocd) applies its Applications wave by wave; each Application syncs its
  objects phase by phase (PreSync, Sync, PostSync) and wave by wave inside a phase.
- A wave goes on only when every task of it is Healthy or has no health check. Progressing (and Missing,
  Suspended, Unknown) waits forever; Degraded fails the operation: later waves are never applied, and the
  retries start again from the first wave and fail the same way, after which automated sync stops.
- The last wave of the last phase is not waited for when it holds no hook: the operation succeeds once it is
  applied. Hooks are always waited for.
- An Application's health (the root reads it through the health Lua of overlays/argocd) is the worst health of
  its resources (controller/health.go setApplicationHealth), skipping hooks, resources without a health check
  and live resources annotated `argocd.argoproj.io/ignore-healthcheck: "true"`. A resource not applied yet whose
  kind has a health check (HEALTH_KINDS) counts as Missing: the annotation is read from the live object only.
- Health per kind, given the Secret Manager secrets that have a version (the "world"): an ExternalSecret is
  Ready when its store is and every remote key it reads has a version (Degraded otherwise), and then makes its
  target Secret; a workload is Healthy when every Secret, ConfigMap and ServiceAccount its pods need exists (a
  Deployment whose pods cannot start turns Degraded at progressDeadlineSeconds, a Job or StatefulSet stays
  Progressing); a CronJob is Healthy once applied (argo-cd's CronJob Lua: Degraded only after an earlier success);
  a Certificate is Ready when its Issuer is; an Issuer, ClusterSecretStore or Ingress needs its
  add-on (cert-manager, external-secrets, ingress-nginx) synced; an HPA is Healthy when its target is (without
  pods it reports FailedGetResourceMetric: Degraded); Service and the other kinds of HEALTH_KINDS are Healthy once
  applied; ConfigMap, Secret, RBAC and the rest: no health. Add-on
  Applications (charts, not rendered here) count as Healthy once applied.

`simulate(fleet, existing_secrets)` is the model for one world; the bring-up test calls it. What does not depend
on the world (plans, pod needs, who makes each Secret) is computed once (`SyncContext`), and
`simulate_world(context, world)` replays one world with it: the rule replays several.

One module on purpose (over 500 lines): one model of one controller, whose parts (waves, phases, health per
kind, what makes each Secret) only make sense together; the rule that reads its results is firstsync.py.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

from compiler import catalog
from compiler.build.argocd import ADDONS
from compiler.build.compile import IGNORE_HEALTH, WAVE
from compiler.paths import ARGOCD_DIR, overlay_rel
from compiler.render.manifests import field_path, get, object_id
from compiler.spec.derive import secret_keys, secret_manager_name
from compiler.spec.fleet import serving_global
from compiler.validate.fleet import Fleet
from compiler.validate.model import Obj
from compiler.validate.rules import ClusterSet, config_refs, external_secret_target
from compiler.validate.schemas import POD_TEMPLATE_PATHS

HOOK = "argocd.argoproj.io/hook"
HELM_HOOK = "helm.sh/hook"
HELM_WEIGHT = "helm.sh/hook-weight"
PHASES = {"PreSync": -1, "Sync": 0, "PostSync": 1}
PHASE_NAMES = {v: k for k, v in PHASES.items()}
HELM_PHASES = {"pre-install": "PreSync", "pre-upgrade": "PreSync", "post-install": "PostSync",
               "post-upgrade": "PostSync"}
# Best to worst (gitops-engine health.go healthOrder); "none" = no health check.
ORDER = ("Healthy", "Suspended", "Progressing", "Missing", "Degraded", "Unknown")
WAITED = ("Progressing", "Missing", "Suspended", "Unknown")
# Operator secrets made with a service of the fleet: secrets key -> the object of the global cluster whose UI
# makes it (catalog.AUTH_TOKENS, created in the global auth admin UI). The others (OAuth client, Slack
# token) are made outside the fleet, so the operator can add them at any time.
MADE_WITH: dict[str, tuple[str, str]] = dict.fromkeys(sorted(catalog.AUTH_TOKENS), ("Deployment", "auth"))
_ADDON_NAMES = {a.key: a.name for a in ADDONS}  # the add-on Applications carry cave.io/component: <name>
ADDON_OF_KIND = {
    **dict.fromkeys(("ClusterSecretStore", "SecretStore", "ExternalSecret"), _ADDON_NAMES["external_secrets"]),
    **dict.fromkeys(("Issuer", "ClusterIssuer", "Certificate"), _ADDON_NAMES["cert_manager"]),
    "Ingress": _ADDON_NAMES["ingress_nginx"],
}
# Kinds with a health check: gitops-engine's built-in Go checks, and the Lua of argo-cd resource_customizations
# (plus the project's own for Application, overlays/argocd/argocd-cm.yaml). Any other kind has no health.
HEALTH_KINDS = frozenset({
    "Deployment", "StatefulSet", "DaemonSet", "ReplicaSet", "Pod", "Job", "Service", "Ingress",
    "PersistentVolumeClaim", "HorizontalPodAutoscaler", "APIService", "Workflow",
    "ExternalSecret", "SecretStore", "ClusterSecretStore", "Certificate", "Issuer", "ClusterIssuer", "CronJob",
    "Application",
})
CLUSTER_KINDS = ("ClusterSecretStore", "ClusterIssuer")  # cluster-scoped kinds the health checks refer to
ROOT_PATH = overlay_rel(ARGOCD_DIR)  # overlays/argocd, the app-of-apps


# --------------------------------------------------------------------------- results


@dataclass
class ObjectResult:
    """One object of an Application after the simulated sync: applied or not, its health and why."""

    cluster: str
    app: str
    obj: Obj
    phase: int
    wave: int
    hook: bool
    applied: bool = False
    health: str = "Missing"  # one of ORDER, or "none" (no health check)
    reason: str = ""  # why it is not Healthy: a chain of causes, "a ← b ← c"
    waits: frozenset[str] = frozenset()  # Secret Manager secrets without a version at the end of the chain
    kind: str = field(init=False)
    namespace: str = field(init=False)
    name: str = field(init=False)

    def __post_init__(self) -> None:
        _, self.kind, self.namespace, self.name = object_id(self.obj)

    @property
    def counted(self) -> bool:
        """Part of its Application's health (argo-cd controller/health.go setApplicationHealth): a hook never; an
        object not applied yet as Missing when its kind has a health check (the ignore-healthcheck annotation is
        read from the live object only; a Missing child Application is skipped); a live object unless it is
        annotated ignore-healthcheck or has no health check."""
        if self.hook:
            return False
        if not self.applied:
            return self.kind in HEALTH_KINDS and self.kind != "Application"
        ignored = _annotations(self.obj).get(IGNORE_HEALTH) == "true"
        return not ignored and self.health != "none"

    @property
    def ok(self) -> bool:
        return self.applied and self.health in ("Healthy", "none")

    @property
    def label(self) -> str:
        where = f"{PHASE_NAMES[self.phase]} hook, wave {self.wave}" if self.hook else f"wave {self.wave}"
        return f"{self.kind}/{self.name} ({where})"


@dataclass
class AppResult:
    """One Application: did the root apply it, did its own sync complete, is it Healthy."""

    name: str
    cluster: str
    component: str  # "cave", an add-on chart name, or "app-of-apps"
    root_wave: int
    obj: Obj
    reached: bool = False
    operation: str = "not started"  # Succeeded, Failed (after its retries), Running (waits forever)
    stuck: str = ""  # the step the operation stopped at, e.g. "wave -2"
    blockers: list[ObjectResult] = field(default_factory=list)  # the tasks it stopped on
    health: str = "Missing"
    causes: list[ObjectResult] = field(default_factory=list)  # the counted objects that make it not Healthy
    objects: list[ObjectResult] = field(default_factory=list)
    by_obj: dict[int, list[ObjectResult]] = field(default_factory=dict)  # id(object) -> its tasks

    @property
    def synced(self) -> bool:
        return self.operation == "Succeeded"

    @property
    def healthy(self) -> bool:
        return self.health == "Healthy"

    def set_objects(self, objects: list[ObjectResult]) -> None:
        self.objects = objects
        self.by_obj = {}
        for r in objects:
            self.by_obj.setdefault(id(r.obj), []).append(r)

    def results_of(self, obj: Obj | None) -> list[ObjectResult]:
        """The tasks `obj` (an object of this Application's cluster) becomes, applied ones first."""
        found = self.by_obj.get(id(obj), []) if obj is not None else []
        return found if len(found) < 2 else sorted(found, key=lambda r: not r.applied)  # a hook: one per phase

    def find(self, kind: str, name: str) -> ObjectResult | None:
        return next((o for o in self.objects if o.kind == kind and o.name == name), None)

    def why(self) -> str:
        """Why this Application's sync did not complete, or why the root never applied it."""
        if not self.reached:
            return f"Application {self.name} is never applied"
        if self.operation == "Succeeded":
            return ""
        what = "fails" if self.operation == "Failed" else "waits forever"
        first = self.blockers[0] if self.blockers else None
        on = f" on {first.label} {first.health}: {first.reason}" if first is not None else ""
        return f"the sync of {self.name} {what} at {self.stuck}{on}"


@dataclass
class SyncResult:
    """The first sync of the fleet in one world (the Secret Manager secrets that have a version)."""

    world: frozenset[str]
    root: AppResult
    apps: dict[str, AppResult]

    def objects(self) -> Iterator[ObjectResult]:
        for app in self.apps.values():
            yield from app.objects

    def app_of(self, cluster: str) -> AppResult | None:
        return next((a for a in self.apps.values() if a.cluster == cluster and a.component == "cave"), None)

    def not_ok(self) -> list[ObjectResult]:
        """Every object of a CAVE Application that is not applied, or applied and not Healthy."""
        return [o for o in self.objects() if not o.ok]

    @property
    def all_reached(self) -> bool:
        return all(a.reached for a in self.apps.values())

    @property
    def everything_healthy(self) -> bool:
        return (self.root.synced and all(a.reached and a.synced and a.healthy for a in self.apps.values())
                and not self.not_ok())


# --------------------------------------------------------------------------- the secrets of the plans


@dataclass(frozen=True)
class PlanSecret:
    cluster: str
    name: str  # Secret Manager secret id
    key: str  # the spec's `secrets:` key
    operator: bool  # only an operator can store its value


def plan_secrets(fleet: Fleet) -> dict[str, PlanSecret]:
    """Secret Manager secret name -> what the bootstrap plans say of it (generated, or made by an operator)."""
    out: dict[str, PlanSecret] = {}
    for cluster in fleet.clusters:
        spec = fleet.spec(cluster)
        for key in secret_keys(spec):
            name = secret_manager_name(spec, key)
            out[name] = PlanSecret(cluster, name, key, catalog.is_operator_secret(key))
    return out


def _generated(secrets: dict[str, PlanSecret]) -> frozenset[str]:
    return frozenset(n for n, s in secrets.items() if not s.operator)


def _operator(secrets: dict[str, PlanSecret]) -> frozenset[str]:
    return frozenset(n for n, s in secrets.items() if s.operator)


def generated_secrets(fleet: Fleet) -> frozenset[str]:
    """The secrets that have a version once `bootstrap --apply` ran: the world of the first sync."""
    return _generated(plan_secrets(fleet))


def operator_secrets(fleet: Fleet) -> frozenset[str]:
    """The secrets only an operator can store (the runbook names them)."""
    return _operator(plan_secrets(fleet))


# --------------------------------------------------------------------------- parsing


def _annotations(obj: Obj) -> dict[str, str]:
    value = get(obj, "metadata", "annotations")
    return value if isinstance(value, dict) else {}


def _int(value: object, default: int = 0) -> int:
    try:
        return int(str(value))
    except ValueError:
        return default


def _tasks(obj: Obj) -> list[tuple[int, int, bool]]:
    """(phase, wave, is hook) of each sync task the object becomes; [] for a Skip hook or a helm test."""
    ann = _annotations(obj)
    wave = _int(ann.get(WAVE, ann.get(HELM_WEIGHT, 0)))
    if HOOK in ann:
        phases = [p.strip() for p in ann[HOOK].split(",")]
        return [(PHASES[p], wave, True) for p in phases if p in PHASES]
    if HELM_HOOK in ann:
        phases = sorted({HELM_PHASES[p.strip()] for p in ann[HELM_HOOK].split(",") if p.strip() in HELM_PHASES})
        return [(PHASES[p], wave, True) for p in phases]
    return [(PHASES["Sync"], wave, False)]


def _remote_name(key: str) -> str:
    """The Secret Manager secret id of a gcpsm remoteRef key (an id, or projects/P/secrets/ID[/versions/V])."""
    match = re.match(r"projects/[^/]+/secrets/([^/]+)", key)
    return match.group(1) if match else key


@dataclass(frozen=True)
class Need:
    kind: str  # Secret, ConfigMap, ServiceAccount
    name: str
    keys: tuple[str, ...]  # the keys it reads (env keyRefs, volume items); () for the whole object
    path: str


Made = tuple[Obj, frozenset[str] | None]  # an object that makes a Secret/ConfigMap/ServiceAccount, and its keys


def _made(objects: list[Obj]) -> dict[tuple[str, str, str], list[Made]]:
    """(kind, namespace, name) of every Secret, ConfigMap and ServiceAccount the objects make -> who makes it."""
    out: dict[tuple[str, str, str], list[Made]] = {}
    for obj in objects:
        _, kind, namespace, name = object_id(obj)
        made: tuple[str, str, str] | None = None
        keys: frozenset[str] | None = None
        if kind in ("Secret", "ConfigMap"):
            fields = ("data", "stringData") if kind == "Secret" else ("data", "binaryData")
            made, keys = (kind, namespace, name), frozenset(str(k) for f in fields for k in obj.get(f) or {})
        elif kind == "ServiceAccount":
            made = (kind, namespace, name)
        elif kind == "ExternalSecret":
            namespace, target, found = external_secret_target(obj)
            made, keys = ("Secret", namespace, target), None if found is None else frozenset(found)
        elif kind == "Certificate" and isinstance(get(obj, "spec", "secretName"), str):
            made, keys = ("Secret", namespace, obj["spec"]["secretName"]), frozenset({"tls.crt", "tls.key", "ca.crt"})
        if made is not None:
            out.setdefault(made, []).append((obj, keys))
    return out


class SyncContext:
    """What one run of the rule computes once: the plans' secrets, who makes each operator secret, and per
    cluster its objects (ClusterSet), the needs of each workload and who makes each Secret/ConfigMap."""

    def __init__(self, fleet: Fleet) -> None:
        self.fleet = fleet
        self.secrets = plan_secrets(fleet)
        self.generated = _generated(self.secrets)
        self.operator = _operator(self.secrets)
        specs = {c: fleet.spec(c) for c in fleet.clusters}
        self.makers: dict[str, tuple[str, str, str]] = {}  # operator secret -> (cluster, kind, name) of its maker
        for name, s in self.secrets.items():
            owner = serving_global(s.cluster, specs) if s.operator and s.key in MADE_WITH else None
            if owner is not None:
                self.makers[name] = (owner, *MADE_WITH[s.key])
        self.makers_text = {n: f" in the UI of {k}/{o} of {c}" for n, (c, k, o) in self.makers.items()}
        self.sets = {c: ClusterSet(c, objects) for c, objects in fleet.objects.items()}
        self.made = {c: _made(objects) for c, objects in fleet.objects.items()}
        self.tasks = {c: [(o, *t) for o in objects for t in _tasks(o)] for c, objects in fleet.objects.items()}
        self.needs: dict[int, list[Need]] = {}  # id(workload) -> what its pods need
        for cs in self.sets.values():
            for t in cs.pod_templates:
                needs = [Need(r.kind, r.name, r.keys, r.path) for r in config_refs(t) if not r.optional]
                account = t.spec.get("serviceAccountName") or "default"
                if account != "default":
                    path = field_path([*t.path, "spec", "serviceAccountName"])
                    needs.append(Need("ServiceAccount", str(account), (), path))
                self.needs[id(t.owner)] = needs

    def needs_of(self, r: ObjectResult) -> list[Need]:
        return self.needs.get(id(r.obj), [])

    def makers_of(self, app: AppResult, r: ObjectResult, need: Need) -> \
            list[tuple[ObjectResult, frozenset[str] | None]]:
        """The tasks of `app` that make what `r` needs (in r's namespace), with the keys they give (None: unknown)."""
        found = self.made.get(app.cluster, {}).get((need.kind, r.namespace, need.name), [])
        return [(m, keys) for obj, keys in found for m in app.results_of(obj)[:1]]

    def objects(self, app: AppResult) -> list[ObjectResult]:
        """A fresh result for every sync task of the objects `app` deploys."""
        return [ObjectResult(app.cluster, app.name, o, phase, w, hook) for o, phase, w, hook in self.tasks[app.cluster]]


# --------------------------------------------------------------------------- one cluster's health


Health = tuple[str, str, frozenset[str]]  # (status, reason, missing Secret Manager secrets behind it)
OK: Health = ("Healthy", "", frozenset())
NONE: Health = ("none", "", frozenset())


def _worse(a: Health, b: Health) -> Health:
    return b if ORDER.index(b[0]) > ORDER.index(a[0]) else a


class _Cluster:
    """Health of the applied objects of one CAVE Application, given the world and the add-ons synced."""

    def __init__(self, ctx: SyncContext, app: AppResult, world: frozenset[str], addons: set[str]) -> None:
        self.ctx = ctx
        self.app = app
        self.cluster = app.cluster
        self.set = ctx.sets[app.cluster]
        self.world = world
        self.addons = addons
        self.memo: dict[int, Health] = {}

    def reset(self) -> None:
        self.memo = {}

    def _find(self, kind: str, namespace: str, name: str) -> ObjectResult | None:
        """The task of the object `kind/name` (namespace-aware; cluster-scoped kinds have none), applied first."""
        found = self.app.results_of(self.set.find(kind, "" if kind in CLUSTER_KINDS else namespace, name))
        return found[0] if found else None

    def health(self, r: ObjectResult) -> Health:
        if id(r) not in self.memo:
            self.memo[id(r)] = ("Progressing", "(depends on itself)", frozenset())
            self.memo[id(r)] = self._health(r)
        return self.memo[id(r)]

    def _addon(self, kind: str) -> str | None:
        addon = ADDON_OF_KIND.get(kind)
        return addon if addon is not None and addon not in self.addons else None

    def _health(self, r: ObjectResult) -> Health:
        kind, obj = r.kind, r.obj
        if kind not in HEALTH_KINDS:
            return NONE
        if kind in ("ClusterSecretStore", "SecretStore", "Issuer", "ClusterIssuer"):
            missing = self._addon(kind)
            return OK if missing is None else ("Degraded", f"the {missing} add-on is not synced (its CRDs and "
                                                           "controller are missing)", frozenset())
        if kind == "Ingress":
            missing = self._addon(kind)
            return OK if missing is None else ("Progressing", "no load-balancer address: the ingress-nginx add-on "
                                                              "is not synced", frozenset())
        if kind == "ExternalSecret":
            return self._external_secret(r)
        if kind == "Certificate":
            missing = self._addon(kind)
            if missing is not None:
                return "Degraded", "the cert-manager add-on is not synced", frozenset()
            ref = get(obj, "spec", "issuerRef") or {}
            issuer = self._find(str(ref.get("kind") or "Issuer"), r.namespace, str(ref.get("name") or ""))
            if issuer is None or not issuer.applied:
                what = "missing" if issuer is None else f"{issuer.label} not applied yet"
                return "Progressing", f"its issuer {ref.get('kind') or 'Issuer'}/{ref.get('name')} is {what}", \
                    frozenset()
            status, reason, waits = self.health(issuer)
            return OK if status == "Healthy" else ("Progressing", f"{issuer.label} {status}: {reason}", waits)
        if kind == "HorizontalPodAutoscaler":
            ref = get(obj, "spec", "scaleTargetRef") or {}
            target = self._find(str(ref.get("kind")), r.namespace, str(ref.get("name")))
            if target is None or not target.applied:
                return "Degraded", f"FailedGetScale: {ref.get('kind')}/{ref.get('name')} is not applied", frozenset()
            status, reason, waits = self.health(target)
            if status in ("Healthy", "none"):
                return OK
            return "Degraded", f"FailedGetResourceMetric: {target.label} has no running pods ({reason})", waits
        if kind == "CronJob":
            # argo-cd's CronJob Lua: Progressing only without a status (the API server gives a new CronJob
            # `status: {}`), Healthy when never scheduled, never succeeded or active; Degraded only when the last
            # success is older than the last schedule, which needs an earlier success: never on a first sync.
            return OK
        if kind in POD_TEMPLATE_PATHS:
            return self._workload(r)
        return OK  # Service, PVC, APIService, ...: Healthy once applied here

    def _external_secret(self, r: ObjectResult) -> Health:
        obj = r.obj
        ref = get(obj, "spec", "secretStoreRef") or {}
        store_kind, store_name = str(ref.get("kind") or "SecretStore"), str(ref.get("name") or "")
        store = self._find(store_kind, r.namespace, store_name)
        if store is None or not store.applied:
            what = "missing" if store is None else f"{store.label} not applied yet"
            return "Degraded", f"its store {store_kind}/{store_name} is {what}", frozenset()
        status, reason, waits = self.health(store)
        if status != "Healthy":
            return "Degraded", f"{store.label} {status}: {reason}", waits
        keys = [str(get(d, "remoteRef", "key")) for d in get(obj, "spec", "data") or []]
        keys += [str(get(d, "extract", "key")) for d in get(obj, "spec", "dataFrom") or [] if get(d, "extract", "key")]
        missing = sorted({_remote_name(k) for k in keys} - self.world)
        if not missing:
            return OK
        return "Degraded", "; ".join(self._why_missing(m) for m in missing), frozenset(missing)

    def _why_missing(self, name: str) -> str:
        plan = self.ctx.secrets.get(name)
        if plan is None:
            origin = "no bootstrap plan creates it"
        elif plan.operator:
            origin = f"made by an operator{self.ctx.makers_text.get(name, '')}"
        else:
            origin = f"bootstrap --apply of {plan.cluster} generates it"
        return f"Secret Manager {name} has no version ({origin})"

    def need(self, r: ObjectResult, need: Need) -> Health:
        """Healthy when some maker of what `r` needs is applied, Healthy and gives the keys; else the worst of
        what each maker lacks."""
        makers = self.ctx.makers_of(self.app, r, need)
        if not makers:
            return "Degraded", f"no object of {self.cluster} makes {need.kind} {need.name}", frozenset()
        worst: Health | None = None
        for maker, keys in makers:
            found: Health
            lacking = [k for k in need.keys if keys is not None and k not in keys]
            if not maker.applied:
                found = ("Progressing", f"{need.kind} {need.name} ← {maker.label} is not applied yet", frozenset())
            else:
                status, reason, waits = self.health(maker)
                if status not in ("Healthy", "none"):
                    found = ("Progressing", f"{need.kind} {need.name} ← {maker.label} {status}: {reason}", waits)
                elif lacking:
                    found = ("Degraded", f"{need.kind} {need.name} has no key {', '.join(lacking)} ({maker.label} "
                                         f"gives {', '.join(sorted(keys or ())) or 'none'})", frozenset())
                else:
                    return OK
            worst = found if worst is None else _worse(worst, found)
        assert worst is not None
        return worst

    def _workload(self, r: ObjectResult) -> Health:
        problems = [h for h in (self.need(r, n) for n in self.ctx.needs_of(r)) if h[0] != "Healthy"]
        if not problems:
            return OK
        reason = "; ".join(f"waits for {h[1]}" for h in problems)
        waits = frozenset().union(*(h[2] for h in problems))
        if r.kind == "Deployment":
            return "Degraded", f"{reason} (pods cannot start: Progressing, Degraded at progressDeadlineSeconds)", waits
        return "Progressing", f"{reason} (pods cannot start)", waits


# --------------------------------------------------------------------------- Applications


def _worst(statuses: Iterable[str]) -> str:
    found = [s for s in statuses if s in ORDER]
    return max(found, key=ORDER.index) if found else "Healthy"


def _sync(results: list[ObjectResult], model: _Cluster) -> tuple[str, str, list[ObjectResult]]:
    """Replay one Application's sync operation: (operation, step it stopped at, the tasks it stopped on)."""
    steps = sorted({(r.phase, r.wave) for r in results})
    for i, (phase, wave) in enumerate(steps):
        tasks = [r for r in results if (r.phase, r.wave) == (phase, wave)]
        for r in tasks:
            r.applied = True
        model.reset()
        last = i == len(steps) - 1
        if last and not any(r.hook for r in tasks):
            return "Succeeded", "", []
        states = [(r, model.health(r)) for r in tasks]
        failed = [r for r, h in states if h[0] == "Degraded" or (r.hook and h[0] == "Unknown")]
        step = f"{PHASE_NAMES[phase]} wave {wave}" if phase != 0 else f"wave {wave}"
        if failed:
            return "Failed", step, failed
        waiting = [r for r, h in states if h[0] in WAITED]
        if waiting:
            return "Running", step, waiting
    return "Succeeded", "", []


def _finish(app: AppResult, model: _Cluster) -> None:
    """Record every object's final health and the Application's health (as the root's Lua reads it)."""
    model.reset()
    for r in app.objects:
        if r.applied:
            r.health, r.reason, r.waits = model.health(r)
        else:
            r.health, r.reason = "Missing", "not applied: " + app.why()
    counted = [r for r in app.objects if r.counted]
    app.health = _worst(r.health for r in counted)
    app.causes = [r for r in counted if r.health == app.health and app.health != "Healthy"]


def simulate(fleet: Fleet, existing_secrets: Iterable[str], *, reach_all: bool = False) -> SyncResult:
    """Argo CD's first sync of the fleet when the Secret Manager secrets `existing_secrets` have a version.

    With `reach_all`, every Application is synced as if the app-of-apps had gone on (its add-ons Healthy), to
    see what each would do once reached; `root` still says where the app-of-apps really stops."""
    return simulate_world(SyncContext(fleet), frozenset(existing_secrets), reach_all=reach_all)


def simulate_world(ctx: SyncContext, world: frozenset[str], *, reach_all: bool = False) -> SyncResult:
    fleet = ctx.fleet
    apps: dict[str, AppResult] = {}
    root: AppResult | None = None
    for obj in fleet.argocd:
        if obj.get("kind") != "Application":
            continue
        name = str(get(obj, "metadata", "name"))
        labels = get(obj, "metadata", "labels") or {}
        path = str(get(obj, "spec", "source", "path") or "")
        wave = _int(_annotations(obj).get(WAVE, 0))
        if path == ROOT_PATH:
            root = AppResult(name, "", "app-of-apps", wave, obj)
            continue
        chart = get(obj, "spec", "source", "chart")
        cluster = str(labels.get(catalog.CLUSTER_LABEL) or path.rsplit("/", 1)[-1])
        if path == overlay_rel(cluster) and cluster in fleet.objects:
            component = "cave"  # syncs the cluster's overlay, which the model replays
        else:  # an add-on: a chart, or a folder of overlays/argocd/addons/
            component = str(labels.get(catalog.COMPONENT_LABEL) or get(obj, "spec", "source", "helm", "releaseName")
                            or chart or path.rsplit("/", 1)[-1])
        apps[name] = AppResult(name, cluster, component, wave, obj)
    if root is None:  # no app-of-apps in overlays/argocd: model its waves all the same
        root = AppResult("(none)", "", "app-of-apps", 0, {})
    # The root's own sync: the steps of every object of overlays/argocd (not only its Applications), so that its
    # last step, which it does not wait for, is the real one.
    steps = sorted({(phase, w) for o in fleet.argocd for phase, w, _ in _tasks(o)} |
                   {(PHASES["Sync"], a.root_wave) for a in apps.values()})
    hooked = {(phase, w) for o in fleet.argocd for phase, w, hook in _tasks(o) if hook}
    root.operation = "Succeeded"
    root.reached = True
    for i, (phase, wave) in enumerate(steps):
        batch = [a for a in apps.values() if phase == PHASES["Sync"] and a.root_wave == wave]
        for app in sorted(batch, key=lambda a: a.component == "cave"):
            app.reached = True
            if app.component != "cave":
                app.operation, app.health = "Succeeded", "Healthy"  # a chart: not rendered here
                continue
            addons = {a.component for a in apps.values() if a.cluster == app.cluster and a.component != "cave"
                      and a.reached and a.healthy}
            app.set_objects(ctx.objects(app))
            model = _Cluster(ctx, app, world, addons)
            app.operation, app.stuck, app.blockers = _sync(app.objects, model)
            _finish(app, model)
        if i == len(steps) - 1 and (phase, wave) not in hooked:
            break  # the root's last step: not waited for
        failed = [a for a in batch if a.health == "Degraded"]
        waiting = [a for a in batch if a.health in WAITED]
        if (failed or waiting) and root.operation == "Succeeded":
            root.operation = "Failed" if failed else "Running"
            step = f"{PHASE_NAMES[phase]} wave {wave}" if phase != PHASES["Sync"] else f"wave {wave}"
            root.stuck = f"{step} ({', '.join(f'{a.name} is {a.health}' for a in failed or waiting)})"
        if root.operation != "Succeeded" and not reach_all:
            break
    for app in apps.values():
        if not app.reached:
            app.set_objects(ctx.objects(app))
            for r in app.objects:
                r.reason = f"not applied: the app-of-apps {root.name} stops at {root.stuck}"
    return SyncResult(world, root, dict(sorted(apps.items())))
