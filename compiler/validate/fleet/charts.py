"""The pods the cluster add-ons run, read from their Argo CD Application (chart, values) and a chart catalogue.

The add-on charts are rendered by Argo CD, not by this repository, so their pod templates are not among a
cluster's rendered objects. What decides where those pods can run is a handful of Helm values per pod:
nodeSelector, tolerations, affinity and resource requests. This module knows, for each chart version the
repository pins (gitops.yaml), which value paths feed each pod template, their defaults, how a chart-wide
`global` value falls back, and which pods are Helm hooks (Argo CD PreSync/PostSync hooks, which a sync waits on).
Facts read from the charts' templates and values at the pinned tags:

- ingress-nginx 4.14.1: no global placement values. controller: `controller.nodeSelector` (default
  `kubernetes.io/os: linux`), `controller.tolerations`, `controller.affinity`, requests 100m / 90Mi; a
  Deployment, a DaemonSet or both (`controller.kind`). Admission Jobs (when `controller.admissionWebhooks.enabled`
  and `.patch.enabled` and not `.certManager.enabled`): create-secret (Helm pre-install, so Argo CD PreSync) and
  patch-webhook (post-install, PostSync), both placed by `controller.admissionWebhooks.patch.{nodeSelector,
  tolerations}` with requests from `...createSecretJob.resources` / `...patchWebhookJob.resources`.
  defaultBackend (off by default): `defaultBackend.*`.
- cert-manager v1.19.0: `global.nodeSelector` is used only where a component's own nodeSelector is empty
  (`coalesce`); there is no global toleration or affinity. controller (top-level `nodeSelector`, `tolerations`,
  `affinity`, `resources`), `webhook.*`, `cainjector.*` (`cainjector.enabled`) and the `startupapicheck.*` Job
  (`startupapicheck.enabled`, Helm post-install weight 1: Argo CD PostSync). Component nodeSelectors default to
  `kubernetes.io/os: linux`; no requests by default.
- external-secrets 1.1.1: `global.{nodeSelector,tolerations,affinity}` apply to a component only when its own
  value is empty (`| default`). controller (top-level values, `createOperator`), `webhook.*` (`webhook.create`),
  `certController.*` (`certController.create`, and only without `webhook.certManager.enabled`). No defaults.
- redis (Bitnami; not pinned in gitops.yaml, not read at a tag): `master.*` StatefulSet, and `replica.*` when
  `architecture` is `replication` (the chart's default). Requests as the values give them; the chart's
  resource presets are not modelled.

Helm merges user values over the chart's: mappings merge key by key, a null removes a key, anything else
(lists included) replaces. So `controller.nodeSelector: {pool: x}` keeps the default `kubernetes.io/os: linux`.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from compiler.render.manifests import get
from compiler.spec.yamlio import yaml_load
from compiler.validate.model import Obj

LINUX = {"kubernetes.io/os": "linux"}
CRITICAL_ADDONS_ONLY = {"key": "CriticalAddonsOnly", "operator": "Exists"}


@dataclass(frozen=True)
class AddonPod:
    """One pod template an add-on (or GKE itself) runs, with what decides where it can be scheduled."""

    source: str  # chart name, or "gke" for GKE's own kube-system pods
    component: str  # the chart's component, e.g. "controller", "webhook"
    name: str  # the workload's name as the chart names it (release name "<chart>")
    kind: str  # Deployment, DaemonSet, StatefulSet or Job
    namespace: str
    hook: str | None = None  # Argo CD hook phase (PreSync, PostSync) of a Helm hook, else None
    node_selector: Mapping[str, str] = field(default_factory=dict)
    tolerations: tuple[Mapping[str, Any], ...] = ()
    affinity: Mapping[str, Any] = field(default_factory=dict)
    requests: Mapping[str, str] = field(default_factory=dict)  # of its one container: cpu, memory
    values: str = ""  # the Helm value prefix that places it, e.g. "controller" (messages name it)

    def pod_spec(self) -> dict[str, Any]:
        """A pod spec with this pod's placement and requests, to match against nodes like any rendered pod."""
        return {
            "nodeSelector": dict(self.node_selector),
            "tolerations": [dict(t) for t in self.tolerations],
            "affinity": copy.deepcopy(dict(self.affinity)),
            "containers": [{"name": self.component, "resources": {"requests": dict(self.requests)}}],
        }


# --------------------------------------------------------------------------- values


def helm_merge(base: Any, override: Any) -> Any:
    """`override` merged over `base` as Helm merges values: maps key by key, null deletes, the rest replaces."""
    if not isinstance(base, dict) or not isinstance(override, dict):
        return copy.deepcopy(override)
    out = copy.deepcopy(base)
    for key, value in override.items():
        if value is None:
            out.pop(key, None)
        elif isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = helm_merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def application_values(app: Obj) -> dict[str, Any]:
    """The Helm values an Argo CD Application gives its chart: `helm.valuesObject` when it is set, else
    `helm.values` (YAML text). Argo CD uses one or the other, never both (ApplicationSourceHelm.ValuesYAML).
    `helm.parameters` (--set) and `helm.valueFiles` are not read: the generated Applications use neither."""
    helm = get(app, "spec", "source", "helm")
    if not isinstance(helm, dict):
        return {}
    obj = helm.get("valuesObject")
    if obj is not None:
        return copy.deepcopy(obj) if isinstance(obj, dict) else {}
    text = helm.get("values")
    loaded = yaml_load(text) if isinstance(text, str) and text.strip() else None
    return loaded if isinstance(loaded, dict) else {}


def _map(value: Any) -> dict[str, Any]:
    return dict(value) if isinstance(value, dict) else {}


def _list(value: Any) -> tuple[Mapping[str, Any], ...]:
    return tuple(t for t in value if isinstance(t, dict)) if isinstance(value, list) else ()


def _requests(values: Any, resources: Path) -> dict[str, str]:
    requests = get(values, *resources, "requests")
    return {str(k): str(v) for k, v in sorted(requests.items()) if v is not None} if isinstance(requests, dict) else {}


def _first_set(*candidates: Any) -> Any:
    """Helm's `coalesce` / `| default`: the first value that is not empty."""
    for value in candidates:
        if value not in (None, "", {}, [], 0, False):
            return value
    return None


# --------------------------------------------------------------------------- the charts


Path = tuple[str, ...]  # a path into the values


def _path(dotted: str) -> Path:
    return tuple(dotted.split(".")) if dotted else ()


@dataclass(frozen=True)
class _Pod:
    component: str
    suffix: str  # appended to the release's full name
    kind: str
    prefix: str  # dotted value path holding nodeSelector/tolerations/affinity ("" = top level)
    resources: str  # dotted value path of `resources`
    hook: str | None = None


def _pod(chart: str, release: str, namespace: str, values: dict[str, Any], spec: _Pod,
         fallback: str | None = None, fallback_keys: tuple[str, ...] = ()) -> AddonPod:
    """The pod `spec` describes, its placement read from `values`; `fallback` names the chart's global values
    used for `fallback_keys` when the pod's own value is empty."""
    where = _path(spec.prefix)

    def value(key: str) -> Any:
        own = get(values, *where, key)
        if fallback is not None and key in fallback_keys:
            return _first_set(own, get(values, fallback, key))
        return own

    full = release if chart in release else f"{release}-{chart}"
    return AddonPod(
        source=chart, component=spec.component, name=f"{full}{spec.suffix}", kind=spec.kind, namespace=namespace,
        hook=spec.hook, node_selector={str(k): str(v) for k, v in _map(value("nodeSelector")).items()},
        tolerations=_list(value("tolerations")), affinity=_map(value("affinity")),
        requests=_requests(values, _path(spec.resources)), values=spec.prefix,
    )


INGRESS_NGINX_DEFAULTS: dict[str, Any] = {
    "controller": {
        "kind": "Deployment", "nodeSelector": dict(LINUX), "tolerations": [], "affinity": {},
        "resources": {"requests": {"cpu": "100m", "memory": "90Mi"}},
        "admissionWebhooks": {
            "enabled": True, "certManager": {"enabled": False},
            "patch": {"enabled": True, "nodeSelector": dict(LINUX), "tolerations": []},
            "createSecretJob": {"resources": {}}, "patchWebhookJob": {"resources": {}},
        },
    },
    "defaultBackend": {"enabled": False, "nodeSelector": dict(LINUX), "tolerations": [], "affinity": {},
                       "resources": {}},
}


def _ingress_nginx(release: str, namespace: str, user: dict[str, Any]) -> list[AddonPod]:
    v = helm_merge(INGRESS_NGINX_DEFAULTS, user)
    pods: list[_Pod] = []
    kind = str(get(v, "controller", "kind") or "Deployment")
    if kind in ("Deployment", "Both"):
        pods.append(_Pod("controller", "-controller", "Deployment", "controller", "controller.resources"))
    if kind in ("DaemonSet", "Both"):
        pods.append(_Pod("controller", "-controller", "DaemonSet", "controller", "controller.resources"))
    hooks = "controller.admissionWebhooks"
    webhooks = get(v, *_path(hooks))
    if (get(webhooks, "enabled") and get(webhooks, "patch", "enabled")
            and not get(webhooks, "certManager", "enabled")):
        pods.append(_Pod("admission-create", "-admission-create", "Job", f"{hooks}.patch",
                         f"{hooks}.createSecretJob.resources", hook="PreSync"))
        pods.append(_Pod("admission-patch", "-admission-patch", "Job", f"{hooks}.patch",
                         f"{hooks}.patchWebhookJob.resources", hook="PostSync"))
    if get(v, "defaultBackend", "enabled"):
        pods.append(_Pod("default-backend", "-defaultbackend", "Deployment", "defaultBackend",
                         "defaultBackend.resources"))
    return [_pod("ingress-nginx", release, namespace, v, p) for p in pods]


CERT_MANAGER_DEFAULTS: dict[str, Any] = {
    "global": {"nodeSelector": {}},
    "nodeSelector": dict(LINUX), "tolerations": [], "affinity": {}, "resources": {},
    "webhook": {"nodeSelector": dict(LINUX), "tolerations": [], "affinity": {}, "resources": {}},
    "cainjector": {"enabled": True, "nodeSelector": dict(LINUX), "tolerations": [], "affinity": {}, "resources": {}},
    "startupapicheck": {"enabled": True, "nodeSelector": dict(LINUX), "tolerations": [], "affinity": {},
                        "resources": {}},
}


def _cert_manager(release: str, namespace: str, user: dict[str, Any]) -> list[AddonPod]:
    v = helm_merge(CERT_MANAGER_DEFAULTS, user)
    pods = [_Pod("controller", "", "Deployment", "", "resources"),
            _Pod("webhook", "-webhook", "Deployment", "webhook", "webhook.resources")]
    if get(v, "cainjector", "enabled"):
        pods.append(_Pod("cainjector", "-cainjector", "Deployment", "cainjector", "cainjector.resources"))
    if get(v, "startupapicheck", "enabled"):
        pods.append(_Pod("startupapicheck", "-startupapicheck", "Job", "startupapicheck",
                         "startupapicheck.resources", hook="PostSync"))
    return [_pod("cert-manager", release, namespace, v, p, "global", ("nodeSelector",)) for p in pods]


EXTERNAL_SECRETS_DEFAULTS: dict[str, Any] = {
    "global": {"nodeSelector": {}, "tolerations": [], "affinity": {}},
    "createOperator": True, "nodeSelector": {}, "tolerations": [], "affinity": {}, "resources": {},
    "webhook": {"create": True, "certManager": {"enabled": False}, "nodeSelector": {}, "tolerations": [],
                "affinity": {}, "resources": {}},
    "certController": {"create": True, "nodeSelector": {}, "tolerations": [], "affinity": {}, "resources": {}},
}


def _external_secrets(release: str, namespace: str, user: dict[str, Any]) -> list[AddonPod]:
    v = helm_merge(EXTERNAL_SECRETS_DEFAULTS, user)
    pods = []
    if get(v, "createOperator"):
        pods.append(_Pod("controller", "", "Deployment", "", "resources"))
    if get(v, "webhook", "create"):
        pods.append(_Pod("webhook", "-webhook", "Deployment", "webhook", "webhook.resources"))
    if get(v, "certController", "create") and not get(v, "webhook", "certManager", "enabled"):
        pods.append(_Pod("cert-controller", "-cert-controller", "Deployment", "certController",
                         "certController.resources"))
    keys = ("nodeSelector", "tolerations", "affinity")
    return [_pod("external-secrets", release, namespace, v, p, "global", keys) for p in pods]


REDIS_DEFAULTS: dict[str, Any] = {
    "architecture": "replication",
    "master": {"nodeSelector": {}, "tolerations": [], "affinity": {}, "resources": {}},
    "replica": {"nodeSelector": {}, "tolerations": [], "affinity": {}, "resources": {}},
}


def _redis(release: str, namespace: str, user: dict[str, Any]) -> list[AddonPod]:
    v = helm_merge(REDIS_DEFAULTS, user)
    pods = [_Pod("master", "-master", "StatefulSet", "master", "master.resources")]
    if get(v, "architecture") == "replication":
        pods.append(_Pod("replica", "-replicas", "StatefulSet", "replica", "replica.resources"))
    return [_pod("redis", release, namespace, v, p) for p in pods]


CHARTS: dict[str, Callable[[str, str, dict[str, Any]], list[AddonPod]]] = {
    "ingress-nginx": _ingress_nginx,
    "cert-manager": _cert_manager,
    "external-secrets": _external_secrets,
    "redis": _redis,
}


def addon_pods(app: Obj) -> list[AddonPod] | None:
    """The pod templates of an add-on Application's chart with its values; None for a chart not catalogued."""
    chart = get(app, "spec", "source", "chart")
    pods_of = CHARTS.get(str(chart))
    if pods_of is None:
        return None
    release = get(app, "spec", "source", "helm", "releaseName") or get(app, "metadata", "name") or chart
    namespace = get(app, "spec", "destination", "namespace") or "default"
    return pods_of(str(release), str(namespace), application_values(app))


# --------------------------------------------------------------------------- GKE's own pods

# GKE's add-on manager owns these and reverts changes to them (kubernetes/kubernetes#57659), so no value of
# this repository can add a toleration. Upstream manifests (cluster/addons/...) as the public proxy of GKE's:
# they tolerate CriticalAddonsOnly (konnectivity-agent also every NoExecute taint), none a custom NoSchedule taint.
# Requests: kube-dns 100m+150m+10m / 70Mi+20Mi+20Mi, konnectivity-agent 50m; metrics-server's are not modelled.
GKE_SYSTEM_PODS: tuple[AddonPod, ...] = (
    AddonPod("gke", "kube-dns", "kube-dns", "Deployment", "kube-system", node_selector=dict(LINUX),
             tolerations=(CRITICAL_ADDONS_ONLY,), requests={"cpu": "260m", "memory": "110Mi"}),
    AddonPod("gke", "metrics-server", "metrics-server", "Deployment", "kube-system", node_selector=dict(LINUX),
             tolerations=(CRITICAL_ADDONS_ONLY,)),
    AddonPod("gke", "konnectivity-agent", "konnectivity-agent", "DaemonSet", "kube-system",
             node_selector=dict(LINUX), requests={"cpu": "50m"},
             tolerations=(CRITICAL_ADDONS_ONLY, {"operator": "Exists", "effect": "NoExecute"})),
)
