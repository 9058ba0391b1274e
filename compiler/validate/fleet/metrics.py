"""metric-source: every HPA metric has something in the cluster that provides it.

cpu and memory (Resource metrics) come from GKE's metrics-server. Everything else a CAVE HPA reads lives in
Cloud Monitoring (`custom.googleapis.com|...` Pods metrics, `pubsub.googleapis.com|...` and custom External
metrics) and reaches the HPA controller only through the Custom Metrics Stackdriver Adapter. When a link of that
chain is missing the HPA reports `FailedGetPodsMetric`/`FailedGetExternalMetric` and its workload never leaves
minReplicas (15 of minnie's 22 HPAs, among them every queue-driven worker). The chain, per HPA metric:

1. the adapter add-on: an Argo CD Application installing it on the cluster (overlays/argocd, component
   `custom-metrics`);
2. its Google identity: the bootstrap plan binds the adapter's Kubernetes ServiceAccount
   (custom-metrics/custom-metrics-stackdriver-adapter) by Workload Identity to a GCP service account holding
   roles/monitoring.viewer;
3. for `custom.googleapis.com` metrics, a writer: a container that writes the metric (prometheus-to-sd, whose
   metric prefix is read from its --stackdriver-prefix and --source flags, or a workload annotated
   `cave.io/writes-metrics: <prefix>` whose own code writes) in the HPA's target workload (Pods and Object
   metrics: the series are per pod) or anywhere in the cluster (External metrics), running as a Kubernetes
   ServiceAccount bound to a GCP service account with roles/monitoring.metricWriter in the plan.

Every writer is checked on its own too, read by an HPA or not: its Google identity and metricWriter role, and
for prometheus-to-sd a release that runs under Workload Identity (>= v0.11.4) writing k8s_pod series keyed by
the pod name (what the adapter's new resource model reads; the default gke_container/pod uid series are never
found).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from compiler import catalog
from compiler.bootstrap.model import Resource
from compiler.build.argocd import METRICS_ADAPTER
from compiler.render.manifests import field_path, get
from compiler.spec.derive import derive, workload_identity_member
from compiler.validate.fleet import ClusterView, Fleet, fleet_rule
from compiler.validate.model import Finding, Obj, object_finding
from compiler.validate.rules import ClusterSet

RULE = "metric-source"
ADAPTER_COMPONENT = METRICS_ADAPTER  # cave.io/component of the adapter's Application
ADAPTER_KSA = catalog.ADDON_SERVICE_ACCOUNTS[catalog.METRICS_ROLE]  # (namespace, Kubernetes ServiceAccount)
ANNOTATION = catalog.WORKLOAD_IDENTITY
WRITES_ANNOTATION = "cave.io/writes-metrics"
VIEWER = "roles/monitoring.viewer"
WRITER = "roles/monitoring.metricWriter"
WI_USER = "roles/iam.workloadIdentityUser"
PROM_TO_SD = "prometheus-to-sd"
PROM_TO_SD_MIN = (0, 11, 4)  # first release falling back to instance/hostname (GKE metadata server under WI)
FIX_ADAPTER = ("the build adds Application <project>-<cluster>-custom-metrics for clusters running a service of "
               "catalog.CUSTOM_METRIC_HPA_SERVICES: add the HPA's service there and run `python -m compiler build`")
FIX_WRITER = ("set the service's `service_account` and add catalog.METRIC_WRITER to its `google` entries in "
              "compiler/catalog.py, `serviceAccountName` in its base, then `build` and `bootstrap`")


@dataclass(frozen=True)
class Writer:
    """A container (or a pod's own code) that writes custom metrics under `prefix` (metric type, `/`-separated)."""

    workload: Obj
    container: dict[str, Any] | None  # the prometheus-to-sd container, None for a workload annotated WRITES_ANNOTATION
    name: str
    prefix: str
    pod: dict[str, Any]
    path: str  # dotted path of the pod spec in the workload


def _is_monitoring(name: str) -> bool:
    """A Cloud Monitoring metric in the adapter's syntax (`custom.googleapis.com|http|x`), not cpu/memory."""
    return "|" in name and name.split("|", 1)[0].endswith(".googleapis.com")


def _metric_name(metric: dict[str, Any]) -> tuple[str, str]:
    """(type, metric name) of one HPA metrics entry; name "" for Resource and ContainerResource metrics."""
    kind = str(metric.get("type") or "")
    body = metric.get({"Pods": "pods", "Object": "object", "External": "external"}.get(kind, ""))
    return kind, str(get(body, "metric", "name") or "")


def _flags(args: list[Any]) -> dict[str, str]:
    out: dict[str, str] = {}
    for arg in args:
        if isinstance(arg, str) and arg.startswith("--") and "=" in arg:
            key, value = arg[2:].split("=", 1)
            out.setdefault(key, value)
    return out


def _prefix(container: dict[str, Any]) -> str:
    """The metric-type prefix a prometheus-to-sd container writes: `<stackdriver-prefix>/<component>/`."""
    flags = _flags(list(container.get("command") or []) + list(container.get("args") or []))
    source = flags.get("source", "")
    component = source.split(":", 1)[0] if "://" not in source.split(":", 1)[0] else ""
    base = flags.get("stackdriver-prefix", "container.googleapis.com/master")
    return f"{base}/{component}/" if component else f"{base}/"


def _version(image: str) -> tuple[int, ...] | None:
    m = re.search(r":v?(\d+)\.(\d+)\.(\d+)", image)
    return tuple(int(x) for x in m.groups()) if m else None


def writers(objects: ClusterSet) -> list[Writer]:
    """Every custom-metric writer of a cluster's rendered objects."""
    out: list[Writer] = []
    for template in objects.pod_templates:
        obj, pod = template.owner, template.spec
        declared = get(obj, "metadata", "annotations", WRITES_ANNOTATION)
        if isinstance(declared, str) and declared:
            out.append(Writer(obj, None, str(get(obj, "metadata", "name")), declared, pod,
                              field_path([*template.path, "spec"])))
        for path, c in template.containers():
            if PROM_TO_SD in str(c.get("image") or ""):
                out.append(Writer(obj, c, str(c.get("name")), _prefix(c), pod, path))
    return out


class Plan:
    """The bootstrap plan of one cluster, read as Workload Identity bindings and project roles."""

    def __init__(self, project: str, resources: list[Resource]) -> None:
        self.project = project
        self.bound: dict[str, set[str]] = {}  # Workload Identity member -> GCP service account emails
        self.roles: dict[str, set[str]] = {}  # email -> project roles
        for r in resources:
            role, member = str(r.fields.get("role", "")), str(r.fields.get("member", ""))
            if r.kind == "sa-iam-binding" and role == WI_USER:
                self.bound.setdefault(member, set()).add(str(r.fields.get("account")))
            elif r.kind == "project-iam-binding" and member.startswith("serviceAccount:"):
                self.roles.setdefault(member.removeprefix("serviceAccount:"), set()).add(role)

    def bound_to(self, namespace: str, ksa: str) -> set[str]:
        """The GCP service accounts Kubernetes ServiceAccount namespace/ksa may act as."""
        return self.bound.get(workload_identity_member(self.project, namespace, ksa), set())

    def accounts_with(self, namespace: str, ksa: str, role: str) -> list[str]:
        return sorted(e for e in self.bound_to(namespace, ksa) if role in self.roles.get(e, set()))


def _identity_problem(writer: Writer, view: ClusterView, plan: Plan) -> str | None:
    """Why `writer` cannot write to Cloud Monitoring, or None when it can."""
    namespace = view.namespace(writer.workload)
    ksa, account = view.service_account(writer.workload, writer.pod)
    email = get(account, "metadata", "annotations", ANNOTATION)
    if account is None or not email:
        return (f"runs as Kubernetes ServiceAccount {ksa!r}, which has no Google identity "
                f"({ANNOTATION} annotation), so it cannot write Cloud Monitoring")
    if email not in plan.bound_to(namespace, ksa):
        return (f"runs as {ksa!r} → {email}, but the bootstrap plan lets no {namespace}/{ksa} act as it "
                f"({WI_USER})")
    if WRITER not in plan.roles.get(str(email), set()):
        return f"runs as {ksa!r} → {email}, which lacks {WRITER} in the bootstrap plan"
    return None


def _model_problem(writer: Writer) -> str | None:
    """Why a prometheus-to-sd writer's series are unusable (old release, resource type), or None."""
    container = writer.container
    if container is None:
        return None
    version = _version(str(container.get("image") or ""))
    if version is not None and version < PROM_TO_SD_MIN:
        return (f"prometheus-to-sd {'.'.join(map(str, version))} exits under Workload Identity (it needs the node's "
                f"instance/name, which the GKE metadata server does not serve; use v0.11.4 or newer)")
    flags = _flags(list(container.get("command") or []) + list(container.get("args") or []))
    if flags.get("monitored-resource-type-prefix") != "k8s_":
        return ("prometheus-to-sd writes gke_container series, which the custom-metrics adapter (new resource "
                "model) never reads (add --monitored-resource-type-prefix=k8s_ and --pod-id=$(POD_NAME))")
    pod_id = flags.get("pod-id", "")
    env = {str(e.get("name")): get(e, "valueFrom", "fieldRef", "fieldPath")
           for e in container.get("env") or [] if isinstance(e, dict)}
    var = pod_id[2:-1] if pod_id.startswith("$(") and pod_id.endswith(")") else None
    if var is None or env.get(var) != "metadata.name":
        return (f"prometheus-to-sd --pod-id={pod_id or '<unset>'} is not the pod name: k8s_pod series are keyed by "
                "pod_name (set --pod-id=$(POD_NAME), POD_NAME from fieldRef metadata.name)")
    return None


@fleet_rule(RULE)
def metric_source(fleet: Fleet) -> Iterator[Finding]:
    for view in fleet.views():
        yield from _cluster(fleet, view)


def _cluster(fleet: Fleet, view: ClusterView) -> Iterator[Finding]:
    cluster, spec = view.cluster, view.spec
    plan = Plan(spec.gcp.project, view.plan)
    found = writers(view.objects)

    def works(w: Writer) -> bool:
        return _identity_problem(w, view, plan) is None and _model_problem(w) is None

    apps = [a for a in fleet.applications.get(cluster, [])
            if get(a, "metadata", "labels", catalog.COMPONENT_LABEL) == ADAPTER_COMPONENT]
    adapter_accounts = plan.accounts_with(*ADAPTER_KSA, VIEWER)
    for hpa in view.objects.of_kind("HorizontalPodAutoscaler"):
        name = str(get(hpa, "metadata", "name"))
        metrics = [(i, *_metric_name(m)) for i, m in enumerate(get(hpa, "spec", "metrics") or [])
                   if isinstance(m, dict)]
        monitored = [(i, kind, metric) for i, kind, metric in metrics if _is_monitoring(metric)]
        if not monitored:
            continue
        first, _, first_metric = monitored[0]
        where = f"spec.metrics[{first}]"
        if fleet.settings is not None and not apps:
            yield object_finding(cluster, hpa, where, RULE, (
                f"reads {first_metric} from Cloud Monitoring, which only the custom-metrics Stackdriver adapter "
                f"serves, and no Argo CD Application installs the adapter on {cluster}: {name} stays at minReplicas "
                f"({FIX_ADAPTER})"))
        if not adapter_accounts:
            ns, ksa = ADAPTER_KSA
            yield object_finding(cluster, hpa, where, RULE, (
                f"reads {first_metric} through the custom-metrics adapter, but the bootstrap plan binds no GCP "
                f"service account with {VIEWER} to {ns}/{ksa} (bootstrap plans "
                f"{derive(spec).gcp_service_account(catalog.METRICS_ROLE)} with it "
                f"when a service of catalog.CUSTOM_METRIC_HPA_SERVICES is enabled: add the HPA's service there)"))
        target = get(hpa, "spec", "scaleTargetRef", "name")
        target_kind = get(hpa, "spec", "scaleTargetRef", "kind") or "Deployment"
        for i, kind, metric in monitored:
            if not metric.startswith("custom.googleapis.com|"):
                continue
            mtype = metric.replace("|", "/")
            local = kind in ("Pods", "Object")
            candidates = [w for w in found if mtype.startswith(w.prefix)
                          and (not local or (get(w.workload, "metadata", "name") == target
                                             and w.workload.get("kind") == target_kind))]
            scope = f"{target_kind} {target}" if local else "the cluster"
            if not candidates:
                yield object_finding(cluster, hpa, f"spec.metrics[{i}]", RULE, (
                    f"reads {kind} metric {metric}, but nothing in {scope} writes it (add a prometheus-to-sd "
                    f"sidecar whose --stackdriver-prefix/--source make {mtype}, or annotate the writing workload "
                    f"{WRITES_ANNOTATION}: <prefix>)"))
            elif not any(works(w) for w in candidates):
                names = ", ".join(sorted({f"{get(w.workload, 'metadata', 'name')}/{w.name}" for w in candidates}))
                yield object_finding(cluster, hpa, f"spec.metrics[{i}]", RULE, (
                    f"reads {kind} metric {metric}, but its writers ({names}) cannot write it usably (see their "
                    f"{RULE} findings): {name} never scales on it"))
    for w in found:
        problem = _identity_problem(w, view, plan)
        if problem is not None:
            yield object_finding(cluster, w.workload, w.path, RULE,
                                       f"custom-metric writer {w.name} {problem} ({FIX_WRITER})")
        model = _model_problem(w)
        if model is not None:
            yield object_finding(cluster, w.workload, w.path, RULE, f"custom-metric writer {w.name}: {model}")
