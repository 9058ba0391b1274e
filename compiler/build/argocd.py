"""Compile the Argo CD app-of-apps (overlays/argocd/) from gitops.yaml and every spec, in memory.

One Application per cluster syncs overlays/<cluster>/; one Application per cluster and add-on installs a pinned
Helm chart (ingress-nginx, cert-manager, External Secrets, Redis on request). A root Application syncs this
directory itself. Sync waves on the Applications order the first sync and every change to them: add-ons before
their cluster's CAVE Application, the global cluster before the local ones. Argo CD waits for an Application to be
healthy before the next wave only with the Application health check that argocd-cm.yaml restores.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from compiler import catalog
from compiler.build.compile import WAVE, header
from compiler.errors import Problem, UserError
from compiler.paths import ARGOCD_DIR, ENV_DIR, OVERLAYS, SETTINGS_FILE
from compiler.spec.derive import Names, derive
from compiler.spec.load import Loaded
from compiler.spec.model import ClusterSpec, LocalCluster, enabled_services
from compiler.spec.settings import Chart, LoadedSettings, Settings
from compiler.spec.yamlio import Document, Loc, dump_yaml

API_VERSION = "argoproj.io/v1alpha1"
IN_CLUSTER = "https://kubernetes.default.svc"
NAME_MAX = 63  # Argo CD's label tracking puts the Application name in a label value
WAVE_SETUP = "-1"  # the AppProject and the health check, before any Application
# (add-ons, CAVE) waves by cluster kind: every global Application before every local one
WAVES = {"global": (0, 1), "local": (2, 3)}
CAVE = "cave"  # the component label (catalog.COMPONENT_LABEL) of a cluster's CAVE Application
RETRY = {"limit": 5, "backoff": {"duration": "10s", "factor": 2, "maxDuration": "5m"}}
WORKLOAD_IDENTITY = catalog.WORKLOAD_IDENTITY
# Google service accounts daf-<role>-<cluster> the add-ons act as (Workload Identity); `name` (compiler/spec/
# rules.py gke_names) keeps every catalog.ADDON_SERVICE_ACCOUNTS id within GCP_SA_ID_MAX.
DNS_ROLE = catalog.DNS_ROLE
SECRETS_ROLE = catalog.SECRETS_ROLE
# The ClusterSecretStore (compile.py) authenticates as this ServiceAccount, which the add-on creates with Workload
# Identity.
ESO_NAMESPACE, ESO_SERVICE_ACCOUNT = catalog.ADDON_SERVICE_ACCOUNTS[SECRETS_ROLE]
IN_CLUSTER_REDIS = "redis-master.redis.svc.cluster.local"
# The Custom Metrics Stackdriver Adapter has no Helm chart. It is a hand-written base in this repository,
# rendered per cluster by a generated overlay (overlays/argocd/addons/<cluster>/custom-metrics/: the image pinned
# in gitops.yaml, the ServiceAccount's Workload Identity annotation) that its Application syncs: offline-renderable
# with the repository's kustomize (tests and `validate` see what Argo CD applies), no egress to GitHub from the
# repo-server, and no Application-level kustomize patches to trust. Only clusters whose HPAs read Cloud
# Monitoring metrics get it (catalog.needs_metrics_adapter); `bootstrap` plans its account daf-metrics-<cluster>.
METRICS_ADAPTER = catalog.ADDON_SERVICE_ACCOUNTS[catalog.METRICS_ROLE][0]  # namespace, Application suffix, folder
METRICS_ADAPTER_BASE = "base/addons/custom-metrics-stackdriver-adapter"
METRICS_ADAPTER_IMAGE = "custom-metrics-stackdriver-adapter"  # the base's image placeholder
# The adapter's RoleBinding to extension-apiserver-authentication-reader lives in kube-system.
METRICS_ADAPTER_NAMESPACES = (METRICS_ADAPTER, "kube-system")
HEALTH_KEY = "resource.customizations.health.argoproj.io_Application"
# Argo CD >= 1.8 reports no health for Application resources, so a wave of Applications would count as done as
# soon as they exist. This restores the check (operator manual, "Resource Health", Argo CD App).
HEALTH_LUA = """\
hs = {}
hs.status = "Progressing"
hs.message = ""
if obj.status ~= nil and obj.status.health ~= nil then
  hs.status = obj.status.health.status
  if obj.status.health.message ~= nil then
    hs.message = obj.status.health.message
  end
end
return hs
"""
# Cluster-scoped kinds the Applications may create: the overlays' ClusterSecretStore, the Namespaces of
# CreateNamespace, and what the add-on charts install (CRDs, RBAC, webhooks, the nginx IngressClass).
CLUSTER_RESOURCES = (
    ("", "Namespace"),
    ("admissionregistration.k8s.io", "MutatingWebhookConfiguration"),
    ("admissionregistration.k8s.io", "ValidatingWebhookConfiguration"),
    ("apiextensions.k8s.io", "CustomResourceDefinition"),
    ("apiregistration.k8s.io", "APIService"),  # the custom-metrics adapter's custom/external metrics APIs
    ("external-secrets.io", "ClusterSecretStore"),
    ("networking.k8s.io", "IngressClass"),
    ("rbac.authorization.k8s.io", "ClusterRole"),
    ("rbac.authorization.k8s.io", "ClusterRoleBinding"),
)
# Webhook certificates are injected at run time (cainjector, cert-controller, the admission patch Job): comparing
# them would show the add-ons OutOfSync forever and self-heal would fight the injector.
WEBHOOK_CA_BUNDLES = [
    {"group": "admissionregistration.k8s.io", "kind": "MutatingWebhookConfiguration",
     "jqPathExpressions": [".webhooks[]?.clientConfig.caBundle"]},
    {"group": "admissionregistration.k8s.io", "kind": "ValidatingWebhookConfiguration",
     "jqPathExpressions": [".webhooks[]?.clientConfig.caBundle"]},
]
CRD_CA_BUNDLES = [
    {"group": "apiextensions.k8s.io", "kind": "CustomResourceDefinition",
     "jqPathExpressions": [".spec.conversion.webhook.clientConfig.caBundle"]},
]

Tree = dict[str, bytes]


# --------------------------------------------------------------------------- add-ons


def _ingress_nginx(spec: ClusterSpec, names: Names) -> dict[str, Any]:
    # The static IP attaches only through the controller Service's loadBalancerIP (an Ingress annotation does nothing);
    # tuning goes into the controller's own ConfigMap through `controller.config` (docs/pitfalls.md#p46).
    return {"controller": {
        "service": {"loadBalancerIP": str(spec.static_ip), "externalTrafficPolicy": "Local"},
        "config": {"proxy-read-timeout": "600", "client-body-timeout": "60"},
    }}


def _cert_manager(spec: ClusterSpec, names: Names) -> dict[str, Any]:
    # The overlay's Issuer solves DNS-01 with Cloud DNS as daf-clouddns-<env> through Workload Identity: ambient
    # credentials, which cert-manager grants to a namespaced Issuer only with --issuer-ambient-credentials.
    return {
        "crds": {"enabled": True, "keep": True},
        "global": {"leaderElection": {"namespace": "cert-manager"}},
        "extraArgs": ["--issuer-ambient-credentials"],
        "serviceAccount": {"annotations": {WORKLOAD_IDENTITY: names.gcp_service_account(DNS_ROLE)}},
    }


def _external_secrets(spec: ClusterSpec, names: Names) -> dict[str, Any]:
    return {
        "installCRDs": True,
        "serviceAccount": {"name": ESO_SERVICE_ACCOUNT,
                           "annotations": {WORKLOAD_IDENTITY: names.gcp_service_account(SECRETS_ROLE)}},
    }


def _redis(spec: ClusterSpec, names: Names) -> dict[str, Any]:
    # No AUTH: the services' configs connect without a password, as they do to Memorystore.
    return {
        "architecture": "standalone",
        "auth": {"enabled": False},
        "master": {"persistence": {"size": "8Gi"},
                   "resources": {"requests": {"cpu": "100m", "memory": "850Mi"}}},
    }


@dataclass(frozen=True)
class Addon:
    """A cluster add-on: its gitops.yaml key, Helm release and namespace name, and what the compiler sets."""

    key: str
    name: str
    values: Callable[[ClusterSpec, Names], dict[str, Any]]
    crds: bool = False  # ships CRDs: too large for client-side apply's last-applied annotation, CA bundles injected
    webhooks: bool = False  # has admission webhooks whose CA bundle is injected at run time


ADDONS = (
    Addon("cert_manager", "cert-manager", _cert_manager, crds=True, webhooks=True),
    Addon("external_secrets", ESO_NAMESPACE, _external_secrets, crds=True, webhooks=True),
    Addon("ingress_nginx", "ingress-nginx", _ingress_nginx, webhooks=True),
    Addon("redis", "redis", _redis),
)


def addons_of(spec: ClusterSpec) -> list[Addon]:
    """The add-ons a cluster gets: all but Redis, which only a spec with redis.in_cluster asks for."""
    return [a for a in ADDONS if a.key != "redis" or spec.redis.in_cluster]


def _chart(settings: Settings, addon: Addon) -> Chart:
    chart: Chart | None = getattr(settings.addons, addon.key)
    assert chart is not None  # checked by problems()
    return chart


def merged(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    """`override` deep-merged over `base` (mappings merge, everything else is replaced), keys sorted."""
    out = copy.deepcopy(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = merged(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return {k: merged(v, {}) if isinstance(v, dict) else v for k, v in sorted(out.items())}


# --------------------------------------------------------------------------- names and destinations


def app_name(settings: Settings, cluster: str, addon: Addon | str | None = None) -> str:
    """`<project>-<cluster>` (the CAVE Application), `<project>-<cluster>-<add-on>` (an add-on's: an Addon, or
    the name of one not in ADDONS such as METRICS_ADAPTER)."""
    project = settings.argocd.project
    if addon is None:
        return f"{project}-{cluster}"
    return f"{project}-{cluster}-{addon if isinstance(addon, str) else addon.name}"


def app_addons(spec: ClusterSpec) -> list[Addon | str]:
    """What each Application of a cluster installs besides CAVE: the chart add-ons, then the metrics adapter."""
    return [*addons_of(spec), *([METRICS_ADAPTER] if needs_metrics_adapter(spec) else [])]


def root_name(settings: Settings) -> str:
    return f"{settings.argocd.project}-apps"


def destination(spec: ClusterSpec, namespace: str) -> dict[str, str]:
    where = {"server": spec.argocd.server} if spec.argocd.server else {"name": str(spec.argocd.name)}
    return {**where, "namespace": namespace}


def _cluster_id(spec: ClusterSpec) -> str:
    return f"server {spec.argocd.server}" if spec.argocd.server else f"name {spec.argocd.name}"


# --------------------------------------------------------------------------- problems across files


def problems(loaded_settings: LoadedSettings, loaded: dict[str, Loaded]) -> list[Problem]:
    """What keeps the app-of-apps from being generated: missing destinations and addresses, clashes."""
    settings = loaded_settings.settings
    out: list[Problem] = []
    root_app = root_name(settings)
    dests: dict[str, list[tuple[Document, Loc]]] = {}  # Argo CD destination -> the specs deploying to it
    apps: dict[str, list[Document]] = {}  # Application name -> the specs it would be generated for
    for cluster in sorted(loaded):
        spec, doc = loaded[cluster].spec, loaded[cluster].doc
        out.extend(_cluster_problems(settings, spec, doc))
        if spec.argocd.server or spec.argocd.name:
            field = "server" if spec.argocd.server else "name"
            dests.setdefault(_cluster_id(spec), []).append((doc, ("argocd", field)))
        # Two specs with one static_ip: compiler/spec/sharing.py (check_all) reports it at both files.
        for addon in [None, *app_addons(spec)]:
            name = app_name(settings, cluster, addon)
            if name == root_app:
                out.append(doc.problem(("name",), f"Argo CD Application {name!r} would also be generated for "
                                                  f"{SETTINGS_FILE} (rename the cluster)"))
            elif len(name) > NAME_MAX:
                out.append(doc.problem(("name",), f"Argo CD Application name {name!r} is longer than {NAME_MAX} "
                                                  "characters (shorten `name` or argocd.project in gitops.yaml)"))
            apps.setdefault(name, []).append(doc)
    # A clash is reported in every spec involved, each naming the others: the one to fix may be either.
    for key, where in dests.items():
        # Two specs in one cluster would install the add-ons and the ClusterSecretStore twice.
        for doc, loc in where:
            others = [_where(d, at) for d, at in where if d is not doc]
            if others:
                out.append(doc.problem(loc, f"argocd: {key} is already the cluster of {' and '.join(others)} "
                                            "(each spec deploys a cluster of its own: use the name or server its "
                                            "cluster has in Argo CD)"))
    for name, docs in apps.items():
        for doc in docs:
            others = sorted({d.path for d in docs if d is not doc}) or [doc.path]
            if len(docs) > 1:
                out.append(doc.problem(("name",), f"Argo CD Application {name!r} would also be generated for "
                                                  f"{' and '.join(others)} (rename the cluster)"))
    return out


def _where(doc: Document, loc: Loc) -> str:
    line, col = doc.position(loc)
    return f"{doc.path}:{line}:{col}"


def _cluster_problems(settings: Settings, spec: ClusterSpec, doc: Document) -> Iterator[Problem]:
    if not spec.argocd.server and not spec.argocd.name:
        yield doc.problem(("argocd",), "argocd: no destination: set `argocd: {name: <cluster name in Argo CD>}` or "
                                       f"`argocd: {{server: <API server URL>}}` ({IN_CLUSTER} for the cluster "
                                       "Argo CD runs in)")
    if spec.static_ip is None:
        yield doc.problem(("static_ip",), f"static_ip: not set: ingress-nginx needs the regional address "
                                          f"daf-{spec.name} (add `static_ip: <address>`; `gcloud compute addresses "
                                          f"describe daf-{spec.name} --region {spec.gcp.region}` prints it)")
    if needs_metrics_adapter(spec) and settings.addons.custom_metrics_adapter is None:
        yield doc.problem(("services",), "the HPAs of these services read Cloud Monitoring metrics, which need the "
                                         "Custom Metrics Stackdriver Adapter: add addons.custom_metrics_adapter "
                                         "(image, tag) to gitops.yaml")
    if spec.redis.in_cluster:
        where = ("redis", "in_cluster")
        if settings.addons.redis is None:
            yield doc.problem(where, "redis.in_cluster needs the Redis chart: add addons.redis (repo_url, chart, "
                                     "version) to gitops.yaml")
        hosts = [spec.redis.celery_host, spec.redis.pcg_host] if isinstance(spec, LocalCluster) else [spec.redis.host]
        if IN_CLUSTER_REDIS not in hosts:
            yield doc.problem(where, f"redis.in_cluster: no Redis host points at the in-cluster Redis "
                                     f"(set a host to {IN_CLUSTER_REDIS})")


# --------------------------------------------------------------------------- the objects


def _metadata(settings: Settings, name: str, wave: str | int, labels: dict[str, str]) -> dict[str, Any]:
    return {"name": name, "namespace": settings.argocd.namespace,
            "labels": {"app.kubernetes.io/managed-by": "cave-gitops", **labels},
            "annotations": {WAVE: str(wave)}}


def _sync_policy(spec: ClusterSpec, options: list[str]) -> dict[str, Any]:
    policy: dict[str, Any] = {
        "automated": {"prune": spec.argocd.prune, "selfHeal": spec.argocd.self_heal},
        "retry": copy.deepcopy(RETRY),
    }
    if options:
        policy["syncOptions"] = options
    return policy


def cave_application(settings: Settings, cluster: str, spec: ClusterSpec) -> dict[str, Any]:
    argo = settings.argocd
    return {
        "apiVersion": API_VERSION, "kind": "Application",
        "metadata": _metadata(settings, app_name(settings, cluster), WAVES[spec.kind][1],
                              {catalog.CLUSTER_LABEL: cluster, catalog.COMPONENT_LABEL: CAVE}),
        "spec": {
            "project": argo.project,
            "source": {"repoURL": argo.repo_url, "targetRevision": argo.target_revision,
                       "path": f"{OVERLAYS}/{cluster}"},
            "destination": destination(spec, spec.argocd.namespace),
            # Old content-hashed ConfigMaps go only after the new pods are up.
            "syncPolicy": _sync_policy(spec, ["PruneLast=true"]),
        },
    }


def addon_application(settings: Settings, cluster: str, spec: ClusterSpec, addon: Addon) -> dict[str, Any]:
    chart = _chart(settings, addon)
    options = ["CreateNamespace=true"]
    if addon.crds:
        options.append("ServerSideApply=true")
    if addon.webhooks or addon.crds:
        options.append("RespectIgnoreDifferences=true")  # self-heal leaves the injected CA bundles alone
    body: dict[str, Any] = {
        "project": settings.argocd.project,
        "source": {
            "repoURL": chart.repo_url, "chart": chart.chart, "targetRevision": chart.version,
            "helm": {"releaseName": addon.name,
                     "valuesObject": merged(addon.values(spec, derive(spec)), chart.values)},
        },
        "destination": destination(spec, addon.name),
        "syncPolicy": _sync_policy(spec, options),
    }
    ignored = [*(WEBHOOK_CA_BUNDLES if addon.webhooks else []), *(CRD_CA_BUNDLES if addon.crds else [])]
    if ignored:
        body["ignoreDifferences"] = copy.deepcopy(ignored)
    return {
        "apiVersion": API_VERSION, "kind": "Application",
        "metadata": _metadata(settings, app_name(settings, cluster, addon), WAVES[spec.kind][0],
                              {catalog.CLUSTER_LABEL: cluster, catalog.COMPONENT_LABEL: addon.name}),
        "spec": body,
    }


def project(settings: Settings, loaded: dict[str, Loaded]) -> dict[str, Any]:
    repos = {settings.argocd.repo_url}
    destinations: list[dict[str, str]] = []
    for cluster in sorted(loaded):
        spec = loaded[cluster].spec
        repos.update(_chart(settings, a).repo_url for a in addons_of(spec))
        namespaces = {spec.argocd.namespace, *(a.name for a in addons_of(spec))}
        if needs_metrics_adapter(spec):
            namespaces.update(METRICS_ADAPTER_NAMESPACES)
        destinations.extend(destination(spec, ns) for ns in sorted(namespaces))
    return {
        "apiVersion": API_VERSION, "kind": "AppProject",
        "metadata": _metadata(settings, settings.argocd.project, WAVE_SETUP, {}),
        "spec": {
            "description": f"CAVE clusters and their add-ons, generated from {ENV_DIR}/ and {SETTINGS_FILE}",
            "sourceRepos": sorted(repos),
            "destinations": destinations,
            "clusterResourceWhitelist": [{"group": g, "kind": k} for g, k in CLUSTER_RESOURCES],
        },
    }


def needs_metrics_adapter(spec: ClusterSpec) -> bool:
    """Whether the cluster gets the custom-metrics Stackdriver adapter (an enabled service's HPA reads Cloud
    Monitoring)."""
    return catalog.needs_metrics_adapter(enabled_services(spec))


def metrics_adapter_dir(cluster: str) -> str:
    """The adapter overlay of a cluster, relative to overlays/argocd/."""
    return f"addons/{cluster}/{METRICS_ADAPTER}"


def metrics_adapter_overlay(settings: Settings, spec: ClusterSpec) -> dict[str, Any]:
    """The kustomization that renders the adapter base for one cluster: pinned image, Workload Identity."""
    namespace, ksa = catalog.ADDON_SERVICE_ACCOUNTS[catalog.METRICS_ROLE]
    pinned = settings.addons.custom_metrics_adapter
    assert pinned is not None  # checked by problems()
    up = "../" * (len(f"{OVERLAYS}/{ARGOCD_DIR}/{metrics_adapter_dir(spec.name)}".split("/")))
    account = {"apiVersion": "v1", "kind": "ServiceAccount",
               "metadata": {"name": ksa, "namespace": namespace,
                            "annotations": {WORKLOAD_IDENTITY: derive(spec).gcp_service_account(catalog.METRICS_ROLE)}}}
    return {
        "apiVersion": "kustomize.config.k8s.io/v1beta1",
        "kind": "Kustomization",
        "labels": [{"pairs": {catalog.CLUSTER_LABEL: spec.name}, "includeSelectors": False}],
        "resources": [f"{up}{METRICS_ADAPTER_BASE}"],
        "images": [{"name": METRICS_ADAPTER_IMAGE, "newName": pinned.image, "newTag": pinned.tag}],
        "patches": [{"patch": dump_yaml(account)}],
    }


def metrics_adapter_application(settings: Settings, cluster: str, spec: ClusterSpec) -> dict[str, Any]:
    argo = settings.argocd
    return {
        "apiVersion": API_VERSION, "kind": "Application",
        "metadata": _metadata(settings, app_name(settings, cluster, METRICS_ADAPTER), WAVES[spec.kind][0],
                              {catalog.CLUSTER_LABEL: cluster, catalog.COMPONENT_LABEL: METRICS_ADAPTER}),
        "spec": {
            "project": argo.project,
            "source": {"repoURL": argo.repo_url, "targetRevision": argo.target_revision,
                       "path": f"{OVERLAYS}/{ARGOCD_DIR}/{metrics_adapter_dir(cluster)}"},
            "destination": destination(spec, METRICS_ADAPTER),
            "syncPolicy": _sync_policy(spec, []),
        },
    }


def root_application(settings: Settings) -> dict[str, Any]:
    argo = settings.argocd
    return {
        "apiVersion": API_VERSION, "kind": "Application",
        "metadata": _metadata(settings, root_name(settings), WAVE_SETUP, {catalog.COMPONENT_LABEL: "app-of-apps"}),
        "spec": {
            # The built-in project: it exists before this root creates the project the other Applications use.
            "project": "default",
            "source": {"repoURL": argo.repo_url, "targetRevision": argo.target_revision,
                       "path": f"{OVERLAYS}/{ARGOCD_DIR}"},
            "destination": {"server": IN_CLUSTER, "namespace": argo.namespace},
            "syncPolicy": {"automated": {"prune": True, "selfHeal": True}, "retry": copy.deepcopy(RETRY)},
        },
    }


def health_config(settings: Settings) -> dict[str, Any]:
    """The argocd-cm keys this repository needs, merged into the existing map by `kubectl apply`."""
    return {
        "apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": "argocd-cm", "namespace": settings.argocd.namespace,
                     "labels": {"app.kubernetes.io/name": "argocd-cm", "app.kubernetes.io/part-of": "argocd"},
                     "annotations": {WAVE: WAVE_SETUP}},
        "data": {HEALTH_KEY: HEALTH_LUA},
    }


def _file(source: str, *docs: Any) -> bytes:
    return (header(source) + "---\n".join(dump_yaml(d) for d in docs)).encode()


def compile_argocd(loaded_settings: LoadedSettings, loaded: dict[str, Loaded]) -> Tree:
    """All files of overlays/argocd/; UserError when a spec lacks what Argo CD needs."""
    found = problems(loaded_settings, loaded)
    if found:
        raise UserError(found)
    settings = loaded_settings.settings
    everything = f"{SETTINGS_FILE} and {ENV_DIR}/"
    files: Tree = {
        "argocd-cm.yaml": _file(SETTINGS_FILE, health_config(settings)),
        "project.yaml": _file(everything, project(settings, loaded)),
        "root.yaml": _file(SETTINGS_FILE, root_application(settings)),
    }
    for cluster in sorted(loaded):
        spec = loaded[cluster].spec
        docs = [addon_application(settings, cluster, spec, a) for a in addons_of(spec)]
        if needs_metrics_adapter(spec):
            docs.append(metrics_adapter_application(settings, cluster, spec))
        docs.append(cave_application(settings, cluster, spec))
        files[f"clusters/{cluster}.yaml"] = _file(f"{SETTINGS_FILE} and {ENV_DIR}/{cluster}.yaml", *docs)
    kustomization = {
        "apiVersion": "kustomize.config.k8s.io/v1beta1",
        "kind": "Kustomization",
        "resources": sorted(files),
    }
    files["kustomization.yaml"] = _file(everything, kustomization)
    for cluster in sorted(loaded):  # rendered by their own Applications, not listed as resources above
        spec = loaded[cluster].spec
        if needs_metrics_adapter(spec):
            files[f"{metrics_adapter_dir(cluster)}/kustomization.yaml"] = _file(
                f"{SETTINGS_FILE} and {ENV_DIR}/{cluster}.yaml", metrics_adapter_overlay(settings, spec))
    return dict(sorted(files.items()))
