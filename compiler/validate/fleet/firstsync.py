"""Fleet rule `first-sync`: Argo CD's first sync of an empty fleet completes, with no health deadlock.

The model replays what Argo CD does (facts: gitops-engine `pkg/sync`, `pkg/health`, argo-cd `controller/health.go`):
- The root Application (overlays/argocd) applies its Applications wave by wave; each Application syncs its
  objects phase by phase (PreSync, Sync, PostSync) and wave by wave inside a phase.
- A wave goes on only when every task of it is Healthy or has no health check. Progressing (and Missing,
  Suspended, Unknown) waits forever; Degraded fails the operation: later waves are never applied, and the
  retries start again from the first wave and fail the same way, after which automated sync stops.
- The last wave of the last phase is not waited for when it holds no hook: the operation succeeds once it is
  applied. Hooks are always waited for.
- An Application's health (the root reads it through the health Lua of overlays/argocd) is the worst health of
  its live resources, skipping hooks, resources without a health check, resources not applied yet (Missing) and
  resources annotated `argocd.argoproj.io/ignore-healthcheck: "true"`.
- Health per kind, given the Secret Manager secrets that have a version (the "world"): an ExternalSecret is
  Ready when its store is and every remote key it reads has a version (Degraded otherwise), and then makes its
  target Secret; a workload is Healthy when every Secret, ConfigMap and ServiceAccount its pods need exists (a
  Deployment whose pods cannot start turns Degraded at progressDeadlineSeconds, a Job or StatefulSet stays
  Progressing); a Certificate is Ready when its Issuer is; an Issuer, ClusterSecretStore or Ingress needs its
  add-on (cert-manager, external-secrets, ingress-nginx) synced; an HPA is Healthy when its target is (without
  pods it reports FailedGetResourceMetric: Degraded); ConfigMap, Secret, Service, RBAC: no health. Add-on
  Applications (charts, not rendered here) count as Healthy once applied.

The world starts with the secrets `bootstrap --apply` generates (plan rows `value: generate`). An operator adds
the others (rows `value: operator`) as soon as they can be made: the OAuth client and the Slack token at once,
a CAVE token only once the global `auth` runs (its admin UI makes it). `bring_up` repeats the simulation, adding
every secret that can be made, until nothing changes. Findings:
- deadlock: a secret that can never be made, because what makes it waits (through the waves) on that secret;
- an operator step blocks other objects: with only the generated secrets, an object waiting for an operator
  secret stops an Application's sync (later waves never applied) or keeps an Application that the app-of-apps
  waits for from being Healthy;
- never healthy: once every secret that can be made exists, an object or Application still does not come up.

`simulate(fleet, existing_secrets)` is the model for one world; the bring-up test calls it.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from compiler import catalog
from compiler.render.manifests import get
from compiler.spec.fleet import serving_global
from compiler.validate.fleet import Fleet, fleet_rule
from compiler.validate.model import Finding, Obj, object_finding

RULE = "first-sync"
WAVE = "argocd.argoproj.io/sync-wave"
HOOK = "argocd.argoproj.io/hook"
HELM_HOOK = "helm.sh/hook"
HELM_WEIGHT = "helm.sh/hook-weight"
IGNORE_HEALTH = "argocd.argoproj.io/ignore-healthcheck"
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
ADDON_OF_KIND = {"ClusterSecretStore": "external-secrets", "SecretStore": "external-secrets",
                 "ExternalSecret": "external-secrets", "Issuer": "cert-manager", "ClusterIssuer": "cert-manager",
                 "Certificate": "cert-manager", "Ingress": "ingress-nginx"}
POD_SPEC = {"Deployment": ("spec", "template", "spec"), "StatefulSet": ("spec", "template", "spec"),
            "DaemonSet": ("spec", "template", "spec"), "ReplicaSet": ("spec", "template", "spec"),
            "Job": ("spec", "template", "spec"), "CronJob": ("spec", "jobTemplate", "spec", "template", "spec"),
            "Pod": ("spec",)}
NO_HEALTH = ("ConfigMap", "Secret", "ServiceAccount", "Service", "Role", "RoleBinding", "ClusterRole",
             "ClusterRoleBinding", "Namespace", "NetworkPolicy", "PodDisruptionBudget", "AppProject",
             "CustomResourceDefinition", "IngressClass", "PriorityClass", "ResourceQuota", "LimitRange")
ROOT_PATH = "overlays/argocd"


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

    @property
    def kind(self) -> str:
        return str(self.obj.get("kind", ""))

    @property
    def name(self) -> str:
        return str(get(self.obj, "metadata", "name") or "")

    @property
    def counted(self) -> bool:
        """Part of its Application's health (argo-cd controller/health.go)."""
        ignored = (get(self.obj, "metadata", "annotations") or {}).get(IGNORE_HEALTH) == "true"
        return self.applied and not self.hook and not ignored and self.health != "none"

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

    @property
    def synced(self) -> bool:
        return self.operation == "Succeeded"

    @property
    def healthy(self) -> bool:
        return self.health == "Healthy"

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
    hint: str


def plan_secrets(fleet: Fleet) -> dict[str, PlanSecret]:
    """Secret Manager secret name -> what the bootstrap plans say of it (generated, or made by an operator)."""
    out: dict[str, PlanSecret] = {}
    for cluster in fleet.clusters:
        for res in fleet.plans[cluster]:
            if res.kind != "secret" or res.owner:
                continue
            key = res.note.split()[0].removeprefix("secrets.") if res.note else ""
            out[res.name] = PlanSecret(cluster, res.name, key, res.params.get("value") == "operator",
                                       str(res.params.get("hint", "")))
    return out


def generated_secrets(fleet: Fleet) -> frozenset[str]:
    """The secrets that have a version once `bootstrap --apply` ran: the world of the first sync."""
    return frozenset(n for n, s in plan_secrets(fleet).items() if not s.operator)


def operator_secrets(fleet: Fleet) -> frozenset[str]:
    """The secrets only an operator can store (the runbook names them)."""
    return frozenset(n for n, s in plan_secrets(fleet).items() if s.operator)


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
    key: str | None
    path: str


def pod_needs(obj: Obj) -> list[Need]:
    """The Secrets, ConfigMaps and ServiceAccount a workload's pods cannot start without (optional refs skipped)."""
    spec = get(obj, *POD_SPEC.get(str(obj.get("kind")), ("-",)))
    if not isinstance(spec, dict):
        return []
    needs: list[Need] = []

    def add(kind: str, ref: Any, name_key: str, path: str, key: Any = None) -> None:
        if isinstance(ref, dict) and not ref.get("optional") and isinstance(ref.get(name_key), str):
            needs.append(Need(kind, ref[name_key], key if isinstance(key, str) else None, path))

    for i, vol in enumerate(spec.get("volumes") or []):
        add("Secret", vol.get("secret"), "secretName", f"volumes[{i}].secret")
        add("ConfigMap", vol.get("configMap"), "name", f"volumes[{i}].configMap")
        for j, src in enumerate(get(vol, "projected", "sources") or []):
            add("Secret", src.get("secret"), "name", f"volumes[{i}].projected.sources[{j}].secret")
            add("ConfigMap", src.get("configMap"), "name", f"volumes[{i}].projected.sources[{j}].configMap")
    for group in ("initContainers", "containers"):
        for i, c in enumerate(spec.get(group) or []):
            for j, src in enumerate(c.get("envFrom") or []):
                add("Secret", src.get("secretRef"), "name", f"{group}[{i}].envFrom[{j}].secretRef")
                add("ConfigMap", src.get("configMapRef"), "name", f"{group}[{i}].envFrom[{j}].configMapRef")
            for j, env in enumerate(c.get("env") or []):
                ref = get(env, "valueFrom", "secretKeyRef")
                add("Secret", ref, "name", f"{group}[{i}].env[{j}]", get(ref, "key"))
                ref = get(env, "valueFrom", "configMapKeyRef")
                add("ConfigMap", ref, "name", f"{group}[{i}].env[{j}]", get(ref, "key"))
    account = spec.get("serviceAccountName") or "default"
    if account != "default":
        needs.append(Need("ServiceAccount", str(account), None, "serviceAccountName"))
    return needs


# --------------------------------------------------------------------------- one cluster's health


def makers_of(results: list[ObjectResult], kind: str, name: str) -> list[tuple[ObjectResult, frozenset[str] | None]]:
    """Objects that make Secret/ConfigMap/ServiceAccount `name`, with the keys they give (None: unknown)."""
    out: list[tuple[ObjectResult, frozenset[str] | None]] = []
    for r in results:
        obj = r.obj
        if r.kind == kind and r.name == name and kind in ("Secret", "ConfigMap", "ServiceAccount"):
            data = {**(obj.get("data") or {}), **(obj.get("stringData") or {}), **(obj.get("binaryData") or {})}
            out.append((r, frozenset(data) if kind != "ServiceAccount" else None))
        elif kind == "Secret" and r.kind == "ExternalSecret" and (get(obj, "spec", "target", "name") or r.name) == name:
            template = get(obj, "spec", "target", "template", "data")
            if isinstance(template, dict):
                out.append((r, frozenset(template)))
            elif get(obj, "spec", "dataFrom"):
                out.append((r, None))
            else:
                out.append((r, frozenset(str(d.get("secretKey")) for d in get(obj, "spec", "data") or [])))
        elif kind == "Secret" and r.kind == "Certificate" and get(obj, "spec", "secretName") == name:
            out.append((r, frozenset({"tls.crt", "tls.key", "ca.crt"})))
    return out


Health = tuple[str, str, frozenset[str]]  # (status, reason, missing Secret Manager secrets behind it)
OK: Health = ("Healthy", "", frozenset())
NONE: Health = ("none", "", frozenset())


class _Cluster:
    """Health of the applied objects of one CAVE Application, given the world and the add-ons synced."""

    def __init__(self, cluster: str, results: list[ObjectResult], world: frozenset[str],
                 addons: set[str], secrets: dict[str, PlanSecret], makers: dict[str, str]) -> None:
        self.cluster = cluster
        self.results = results
        self.world = world
        self.addons = addons
        self.secrets = secrets
        self.makers = makers  # operator secret -> what it is made with (text)
        self.memo: dict[int, Health] = {}

    def reset(self) -> None:
        self.memo = {}

    def _all(self, kind: str, name: str) -> list[ObjectResult]:
        return [r for r in self.results if r.kind == kind and r.name == name]

    def _find(self, kind: str, name: str) -> ObjectResult | None:
        found = self._all(kind, name)
        return next((r for r in found if r.applied), found[0] if found else None)

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
        if kind in NO_HEALTH:
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
            issuer = self._find(str(ref.get("kind") or "Issuer"), str(ref.get("name") or ""))
            if issuer is None or not issuer.applied:
                what = "missing" if issuer is None else f"{issuer.label} not applied yet"
                return "Progressing", f"its issuer {ref.get('kind') or 'Issuer'}/{ref.get('name')} is {what}", \
                    frozenset()
            status, reason, waits = self.health(issuer)
            return OK if status == "Healthy" else ("Progressing", f"{issuer.label} {status}: {reason}", waits)
        if kind == "HorizontalPodAutoscaler":
            ref = get(obj, "spec", "scaleTargetRef") or {}
            target = self._find(str(ref.get("kind")), str(ref.get("name")))
            if target is None or not target.applied:
                return "Degraded", f"FailedGetScale: {ref.get('kind')}/{ref.get('name')} is not applied", frozenset()
            status, reason, waits = self.health(target)
            if status in ("Healthy", "none"):
                return OK
            return "Degraded", f"FailedGetResourceMetric: {target.label} has no running pods ({reason})", waits
        if kind in POD_SPEC:
            return self._workload(r)
        if kind == "Application":
            return NONE
        return NONE  # a kind without a health check here (a CRD instance without Lua)

    def _external_secret(self, r: ObjectResult) -> Health:
        obj = r.obj
        ref = get(obj, "spec", "secretStoreRef") or {}
        store_kind, store_name = str(ref.get("kind") or "SecretStore"), str(ref.get("name") or "")
        store = self._find(store_kind, store_name)
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
        plan = self.secrets.get(name)
        if plan is None:
            origin = "no bootstrap plan creates it"
        elif plan.operator:
            origin = f"made by an operator{self.makers.get(name, '')}"
        else:
            origin = f"bootstrap --apply of {plan.cluster} generates it"
        return f"Secret Manager {name} has no version ({origin})"

    def exists(self, need: Need) -> Health:
        makers = makers_of(self.results, need.kind, need.name)
        if not makers:
            return "Degraded", f"no object of {self.cluster} makes {need.kind} {need.name}", frozenset()
        worst: Health | None = None
        for maker, keys in makers:
            if not maker.applied:
                found: Health = ("Progressing", f"{need.kind} {need.name} ← {maker.label} is not applied yet",
                                 frozenset())
            else:
                status, reason, waits = self.health(maker)
                if status not in ("Healthy", "none"):
                    found = ("Progressing", f"{need.kind} {need.name} ← {maker.label} {status}: {reason}", waits)
                elif need.key is not None and keys is not None and need.key not in keys:
                    found = ("Degraded", f"{need.kind} {need.name} has no key {need.key} ({maker.label} "
                                         f"gives {', '.join(sorted(keys)) or 'none'})", frozenset())
                else:
                    return OK
            worst = worst or found
        assert worst is not None
        return worst

    def _workload(self, r: ObjectResult) -> Health:
        problems = [(need, self.exists(need)) for need in pod_needs(r.obj)]
        problems = [(n, h) for n, h in problems if h[0] != "Healthy"]
        if not problems:
            return OK
        reason = "; ".join(f"waits for {h[1]}" for _, h in problems)
        waits = frozenset().union(*(h[2] for _, h in problems))
        if r.kind == "Deployment":
            return "Degraded", f"{reason} (pods cannot start: Progressing, Degraded at progressDeadlineSeconds)", waits
        if r.kind == "CronJob":
            return "Degraded", f"{reason} (its Jobs cannot start)", waits
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


def _finish(app: AppResult, cluster: _Cluster | None) -> None:
    """Record every object's final health and the Application's health (as the root's Lua reads it)."""
    if cluster is not None:
        cluster.reset()
    for r in app.objects:
        if r.applied and cluster is not None:
            r.health, r.reason, r.waits = cluster.health(r)
    for r in app.objects:
        if not r.applied:
            r.health, r.reason = "Missing", "not applied: " + app.why()
    counted = [r for r in app.objects if r.counted]
    if app.objects and not any(r.applied and not r.hook for r in app.objects):
        app.health = "Missing"
        return
    app.health = _worst(r.health for r in counted)
    app.causes = [r for r in counted if r.health == app.health and app.health != "Healthy"]


def _makers_text(fleet: Fleet, secrets: dict[str, PlanSecret]) -> dict[str, tuple[str, str, str]]:
    """operator secret -> (cluster, kind, name) of the object whose UI makes it (MADE_WITH), when in the fleet."""
    specs = {c: fleet.spec(c) for c in fleet.clusters}
    out: dict[str, tuple[str, str, str]] = {}
    for name, s in secrets.items():
        if not s.operator or s.key not in MADE_WITH:
            continue
        owner = serving_global(s.cluster, specs)
        if owner is not None:
            out[name] = (owner, *MADE_WITH[s.key])
    return out


def simulate(fleet: Fleet, existing_secrets: Iterable[str], *, reach_all: bool = False) -> SyncResult:
    """Argo CD's first sync of the fleet when the Secret Manager secrets `existing_secrets` have a version.

    With `reach_all`, every Application is synced as if the app-of-apps had gone on (its add-ons Healthy), to
    see what each would do once reached; `root` still says where the app-of-apps really stops."""
    world = frozenset(existing_secrets)
    secrets = plan_secrets(fleet)
    makers = {n: f" in the UI of {k}/{o} of {c}" for n, (c, k, o) in _makers_text(fleet, secrets).items()}
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
        cluster = str(labels.get("cave.io/cluster") or path.rsplit("/", 1)[-1])
        if path == f"overlays/{cluster}" and cluster in fleet.objects:
            component = "cave"  # syncs the cluster's overlay, which the model replays
        else:  # an add-on: a chart, or a folder of overlays/argocd/addons/
            component = str(labels.get("cave.io/component") or get(obj, "spec", "source", "helm", "releaseName")
                            or chart or path.rsplit("/", 1)[-1])
        apps[name] = AppResult(name, cluster, component, wave, obj)
    if root is None:  # no app-of-apps in overlays/argocd: model its waves all the same
        root = AppResult("(none)", "", "app-of-apps", 0, {})
    order = sorted({a.root_wave for a in apps.values()})
    root.operation = "Succeeded"
    root.reached = True
    for i, wave in enumerate(order):
        batch = [a for a in apps.values() if a.root_wave == wave]
        for app in sorted(batch, key=lambda a: a.component == "cave"):
            app.reached = True
            if app.component != "cave":
                app.operation, app.health = "Succeeded", "Healthy"  # a chart: not rendered here
                continue
            addons = {a.component for a in apps.values() if a.cluster == app.cluster and a.component != "cave"
                      and a.reached and a.healthy}
            app.objects = [ObjectResult(app.cluster, app.name, o, phase, w, hook)
                           for o in fleet.objects.get(app.cluster, []) for phase, w, hook in _tasks(o)]
            model = _Cluster(app.cluster, app.objects, world, addons, secrets, makers)
            app.operation, app.stuck, app.blockers = _sync(app.objects, model)
            _finish(app, model)
        if i == len(order) - 1:
            break  # the root's last wave: not waited for
        failed = [a for a in batch if a.health == "Degraded"]
        waiting = [a for a in batch if a.health in WAITED]
        if (failed or waiting) and root.operation == "Succeeded":
            root.operation = "Failed" if failed else "Running"
            root.stuck = f"wave {wave} ({', '.join(f'{a.name} is {a.health}' for a in failed or waiting)})"
        if root.operation != "Succeeded" and not reach_all:
            break
    for app in apps.values():
        if not app.reached:
            app.objects = [ObjectResult(app.cluster, app.name, o, phase, w, hook)
                           for o in fleet.objects.get(app.cluster, []) for phase, w, hook in _tasks(o)]
            for r in app.objects:
                r.reason = f"not applied: the app-of-apps {root.name} stops at {root.stuck}"
    return SyncResult(world, root, dict(sorted(apps.items())))


# --------------------------------------------------------------------------- the operator's steps


@dataclass
class BringUp:
    """The first sync, then the operator adding each secret as soon as it can be made, until nothing changes."""

    rounds: list[SyncResult]  # rounds[0]: only what bootstrap generates
    added: list[list[str]]  # the secrets added before rounds[i + 1]
    never: dict[str, str]  # operator secret that can never be made -> why

    @property
    def first(self) -> SyncResult:
        return self.rounds[0]

    @property
    def last(self) -> SyncResult:
        return self.rounds[-1]


def _maker_state(result: SyncResult, maker: tuple[str, str, str]) -> tuple[bool, str]:
    """(does the object an operator makes a secret with run, and if not why) in one simulated sync."""
    cluster, kind, name = maker
    app = result.app_of(cluster)
    if app is None:
        return False, f"{kind}/{name} of {cluster} runs, but the fleet has no Application for {cluster}"
    obj = app.find(kind, name)
    if obj is None:
        return False, f"{kind}/{name} of {cluster} runs, but {app.name} deploys none"
    if obj.ok:
        return True, ""
    state = f"is {obj.health}: {obj.reason}" if obj.applied else f"is {obj.reason}"
    return False, f"{kind}/{name} of {cluster} runs, and {obj.label} of {app.name} {state}"


def bring_up(fleet: Fleet) -> BringUp:
    secrets = plan_secrets(fleet)
    makers = _makers_text(fleet, secrets)
    pending = sorted(operator_secrets(fleet))
    world = generated_secrets(fleet)
    rounds = [simulate(fleet, world)]
    added: list[list[str]] = []
    while True:
        ready = [s for s in pending if s not in world and (s not in makers or _maker_state(rounds[-1], makers[s])[0])]
        if not ready:
            break
        world = world | frozenset(ready)
        added.append(ready)
        rounds.append(simulate(fleet, world))
    never = {s: _maker_state(rounds[-1], makers[s])[1] for s in pending if s not in world and s in makers}
    return BringUp(rounds, added, never)


# --------------------------------------------------------------------------- the rule


def _finding(r: ObjectResult, message: str) -> Finding:
    return object_finding(r.cluster, r.obj, "", RULE, message)


@fleet_rule(RULE)
def first_sync(fleet: Fleet) -> Iterator[Finding]:
    if not fleet.argocd:
        return
    up = bring_up(fleet)
    secrets = plan_secrets(fleet)
    reported: set[tuple[str, str, str]] = set()
    yield from _deadlocks(fleet, up, reported)
    every = simulate(fleet, up.first.world, reach_all=True)
    yield from _wave_deadlocks(every, reported)
    yield from _operator_blocks(fleet, every, reported)
    yield from _never_healthy(up, secrets, reported)


def _deadlocks(fleet: Fleet, up: BringUp, reported: set[tuple[str, str, str]]) -> Iterator[Finding]:
    """A secret made with something that waits, through the waves, for that very secret."""
    if not up.never:
        return
    final = simulate(fleet, up.last.world, reach_all=True)
    for secret, why in sorted(up.never.items()):
        waiting = [r for r in final.objects() if secret in r.waits and r.applied]
        if not waiting:
            continue
        shown = waiting[0]
        reported.add((shown.cluster, shown.kind, shown.name))
        others = f" (and {len(waiting) - 1} more objects wait for it)" if len(waiting) > 1 else ""
        yield _finding(shown, (
            f"deadlock on the first sync: {shown.label} of {shown.app} is {shown.health}: {shown.reason}{others}; "
            f"but {secret} can only be made once {why}: it never comes up (put what waits for an operator secret "
            "in the Application's last wave, out of its health: README \"First sync and operator secrets\")"))


def _wave_deadlocks(every: SyncResult, reported: set[tuple[str, str, str]]) -> Iterator[Finding]:
    """A wave that waits for what only a later wave of the same Application makes: the later wave never starts."""
    for app in every.apps.values():
        for b in app.blockers:
            later = [(need, m) for need in pod_needs(b.obj) for m, _ in makers_of(app.objects, need.kind, need.name)
                     if (m.phase, m.wave) > (b.phase, b.wave) and not m.applied]
            if not later or (b.cluster, b.kind, b.name) in reported:
                continue
            reported.add((b.cluster, b.kind, b.name))
            chain = "; ".join(f"{need.kind} {need.name} ({need.path}) is made only by {m.label}" for need, m in later)
            yield _finding(b, (
                f"deadlock on the first sync: the sync of {app.name} waits at {app.stuck} for {b.label}, and {chain}, "
                f"a later wave that starts only once {b.label} is Healthy (move the maker to an earlier wave, or "
                f"make {b.kind}/{b.name} not need it)"))


def _consumers(app: AppResult, r: ObjectResult) -> list[ObjectResult]:
    """The workloads of `app` that need the Secret `r` (an ExternalSecret) makes."""
    if r.kind != "ExternalSecret":
        return []
    target = get(r.obj, "spec", "target", "name") or r.name
    return [o for o in app.objects if any(n.kind == "Secret" and n.name == target for n in pod_needs(o.obj))]


def _operator_blocks(fleet: Fleet, every: SyncResult, reported: set[tuple[str, str, str]]) -> Iterator[Finding]:
    """With only the generated secrets: objects waiting for an operator secret that hold back other objects."""
    operator = operator_secrets(fleet)
    root_last = max((a.root_wave for a in every.apps.values()), default=0)
    for app in every.apps.values():
        if app.component != "cave":
            continue
        if app.operation != "Succeeded":
            later = [o for o in app.objects if not o.applied]
            names = ", ".join(f"{o.kind}/{o.name}" for o in later[:4]) + (" ..." if len(later) > 4 else "")
            for b in app.blockers:
                if not b.waits & operator or (b.cluster, b.kind, b.name) in reported:
                    continue
                reported.add((b.cluster, b.kind, b.name))
                waits = ", ".join(sorted(b.waits & operator))
                users = _consumers(app, b)
                used = f"; {len(users)} workloads need the Secret it makes" if users else ""
                yield _finding(b, (
                    f"an operator step blocks other objects: the sync of {app.name} "
                    f"{'fails' if app.operation == 'Failed' else 'waits forever'} at {app.stuck} on {b.label}, "
                    f"{b.health}: {b.reason}{used}; {len(later)} objects of later waves are never applied ({names}) "
                    f"until an operator stores {waits} (put it in the last wave with what needs it, or make the "
                    f"others not need {waits})"))
        counted = [c for c in app.causes if c.waits & operator]
        if app.root_wave < root_last and not app.healthy and counted:
            held = sorted(a.name for a in every.apps.values() if a.root_wave > app.root_wave)
            for c in counted:
                if (c.cluster, c.kind, c.name) in reported:
                    continue
                reported.add((c.cluster, c.kind, c.name))
                yield _finding(c, (
                    f"an operator step blocks other objects: {c.label} counts in the health of {app.name} and is "
                    f"{c.health} until an operator stores {', '.join(sorted(c.waits & operator))} ({c.reason}); the "
                    f"app-of-apps waits for {app.name} to be Healthy before {', '.join(held)} (annotate it "
                    f"{IGNORE_HEALTH}: \"true\")"))


def _never_healthy(up: BringUp, secrets: dict[str, PlanSecret], reported: set[tuple[str, str, str]]) -> \
        Iterator[Finding]:
    """What still does not come up once the operator stored every secret that can be made (deadlocks aside)."""
    last = up.last
    deadlocked = set(up.never)
    for app in last.apps.values():
        if app.component != "cave":
            continue
        if not app.reached:
            yield object_finding("argocd", app.obj, "", RULE, (
                f"never applied on the first sync: the app-of-apps {last.root.name} {last.root.operation.lower()} "
                f"at {last.root.stuck}, before wave {app.root_wave} of {app.name}"))
            continue
        blockers = [b for b in app.blockers if not (b.waits and b.waits <= deadlocked)]
        if app.operation != "Succeeded" and blockers and (blockers[0].cluster, blockers[0].kind,
                                                          blockers[0].name) not in reported:
            b = blockers[0]
            reported.add((b.cluster, b.kind, b.name))
            yield _finding(b, f"the first sync of {app.name} never completes, even once the operator stored every "
                              f"secret: it {'fails' if app.operation == 'Failed' else 'waits forever'} at "
                              f"{app.stuck} on {b.label}, {b.health}: {b.reason}")
        for r in app.objects:
            if r.ok or not r.applied or (r.cluster, r.kind, r.name) in reported or \
                    (r.waits and r.waits <= deadlocked):
                continue
            reported.add((r.cluster, r.kind, r.name))
            missing = sorted(r.waits - set(secrets))
            hint = f" (no bootstrap plan creates {', '.join(missing)})" if missing else ""
            yield _finding(r, f"never healthy on the first sync, even once the operator stored every secret: "
                              f"{r.label} of {r.app} is {r.health}: {r.reason}{hint}")
