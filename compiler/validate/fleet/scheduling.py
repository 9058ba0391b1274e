"""Fleet rule `schedulable`: every pod template of every cluster fits at least one node pool of its spec.

A pod that fits no pool stays Pending, and Argo CD waits on it: a Deployment is Progressing until its progress
deadline, a StatefulSet, DaemonSet or Job is Progressing forever, so the sync wave never ends and no retry is
triggered (Argo CD's health checks). The review found exactly that on fanc: all its pools were tainted
`pool=<name>:NoSchedule`, and neither the add-ons nor GKE's kube-dns tolerate such a taint.

Which pods: every pod template of the rendered overlay (Deployments, StatefulSets, DaemonSets, Jobs, CronJobs),
of the add-on overlays its Argo CD Applications sync from this repository (`Fleet.addon_objects`: the metrics
adapter), the pods of the add-on charts its Applications install (`charts.addon_pods`) and GKE's own kube-system
pods (`charts.GKE_SYSTEM_PODS`). A DaemonSet is judged per pool (`verdict`): it runs a pod on every node it
tolerates and selects, so it must fit every such pool, and admitted by none it runs nowhere (Healthy, 0 pods).
Which nodes: the node pools bootstrap plans from the spec, with their taints
(`pool=<name>:NoSchedule` unless `tainted: false`) and the labels GKE certainly puts on their nodes.

A pod fits a pool when (as the Kubernetes scheduler decides, for an empty node):
- every NoSchedule/NoExecute taint of the pool is tolerated (same key and Equal value, or Exists; an empty key
  with Exists tolerates every taint; an empty effect matches every effect);
- its nodeSelector is a subset of the pool's labels, and its required node affinity has a term whose
  matchExpressions (In, NotIn, Exists, DoesNotExist, Gt, Lt) all hold for those labels;
- its requests fit the machine type's allocatable CPU and memory. A pod requests the larger of its
  containers' sum and each init container's, native sidecars (init containers with restartPolicy Always)
  counting for everything after them; a container without requests but with limits requests its limits.

Allocatable follows GKE's reservations (cluster-autoscaler's gce/reserved.go):
CPU reserves 6% of the first core, 1% of the second, 0.5% of cores 3-4, 0.25% above (shared-core e2-micro,
e2-small and e2-medium get 940m, as if one core); memory reserves 255 MiB for 1000 MiB or less, else 25% of
the first 4000 MiB, 20% of the next 4000, 10% of the next 8000, 6% up to 128000 and 2% above, plus the
kubelet's 100 MiB eviction threshold, from a capacity the kernel has already taken its share of (estimated
as memory/64 + 16 MiB, + 64 MiB above 3 GiB). The result is within about 1% of real nodes. Per-node
DaemonSets (kube-proxy, logging, GKE's metadata server) take more and are not modelled: a pod that barely
fits here may still not fit.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from compiler import catalog
from compiler.bootstrap.model import Resource
from compiler.build.argocd import ADDONS
from compiler.render.manifests import field_path, get, object_id
from compiler.validate.fleet import Fleet, fleet_rule
from compiler.validate.fleet.charts import GKE_SYSTEM_PODS, AddonPod, addon_pods
from compiler.validate.model import Finding, Obj, object_finding
from compiler.validate.rules import ClusterSet, PodTemplate

RULE = "schedulable"
TAINT_EFFECTS = ("NoSchedule", "NoExecute")  # PreferNoSchedule only discourages
MIB = 2**20
UNTAINTED_HINT = "`- {name: core-pool, machine_type: e2-standard-2, min_nodes: 1, max_nodes: 4, tainted: false}`"

# --------------------------------------------------------------------------- machine types

# Predefined families: memory GiB per vCPU and the vCPU counts Compute Engine offers (GCE machine-type docs).
FAMILIES: dict[str, tuple[float, frozenset[int]]] = {
    "e2-standard": (4, frozenset({2, 4, 8, 16, 32})),
    "e2-highmem": (8, frozenset({2, 4, 8, 16})),
    "e2-highcpu": (1, frozenset({2, 4, 8, 16, 32})),
    "n1-standard": (3.75, frozenset({1, 2, 4, 8, 16, 32, 64, 96})),
    "n1-highmem": (6.5, frozenset({2, 4, 8, 16, 32, 64, 96})),
    "n1-highcpu": (0.9, frozenset({2, 4, 8, 16, 32, 64, 96})),
    "n2-standard": (4, frozenset({2, 4, 8, 16, 32, 48, 64, 80, 96, 128})),
    "n2-highmem": (8, frozenset({2, 4, 8, 16, 32, 48, 64, 80, 96, 128})),
    "n2-highcpu": (1, frozenset({2, 4, 8, 16, 32, 48, 64, 80, 96})),
    "n2d-standard": (4, frozenset({2, 4, 8, 16, 32, 48, 64, 80, 96, 128, 224})),
    "n2d-highmem": (8, frozenset({2, 4, 8, 16, 32, 48, 64, 80, 96})),
    "n2d-highcpu": (1, frozenset({2, 4, 8, 16, 32, 48, 64, 80, 96, 128, 224})),
    "t2d-standard": (4, frozenset({1, 2, 4, 8, 16, 32, 48, 60})),
}
MEMORY_EXCEPTIONS_GIB = {"n2-highmem-128": 864}
# Shared-core E2 types: 2 vCPUs that share a core (GCE reports 2); GKE's allocatable is 940m for e2-medium
# (observed) and is taken to be the same for e2-small and e2-micro.
SHARED_CORE_MIB = {"e2-micro": 1024, "e2-small": 2048, "e2-medium": 4096}
SHARED_CORE_CPU_M = 940
_CUSTOM = re.compile(r"^(?:(?:e2|n2|n2d)-)?custom-(\d+|micro|small|medium)-(\d+)(?:-ext)?$")


@dataclass(frozen=True)
class Machine:
    """A machine type's size: vCPUs, nominal memory (MiB), whether its cores are shared."""

    cpus: int
    memory_mib: int
    shared_core: bool = False


def machine(machine_type: str) -> Machine | None:
    """The size of a GCE machine type (predefined or custom-<cpus>-<MiB>), None when not known here."""
    if machine_type in SHARED_CORE_MIB:
        return Machine(2, SHARED_CORE_MIB[machine_type], shared_core=True)
    custom = _CUSTOM.match(machine_type)
    if custom:
        cpus, memory = custom.group(1), int(custom.group(2))
        return Machine(2, memory, shared_core=True) if not cpus.isdigit() else Machine(int(cpus), memory)
    family, _, count = machine_type.rpartition("-")
    if family in FAMILIES and count.isdigit() and int(count) in FAMILIES[family][1]:
        gib = MEMORY_EXCEPTIONS_GIB.get(machine_type, FAMILIES[family][0] * int(count))
        return Machine(int(count), round(gib * 1024))
    return None


def _brackets(amount: float, brackets: tuple[tuple[float, float], ...], rest: float) -> float:
    """Marginal reservation: `rate` of each slice up to its bound, `rest` of what lies above the last bound."""
    reserved, low = 0.0, 0.0
    for bound, rate in brackets:
        reserved += max(0.0, min(amount, bound) - low) * rate
        low = bound
    return reserved + max(0.0, amount - low) * rest


def allocatable(m: Machine) -> tuple[float, float]:
    """GKE's allocatable (CPU millicores, memory MiB) of a node of this size (module docstring: the formula)."""
    cpu = float(SHARED_CORE_CPU_M) if m.shared_core else (
        m.cpus * 1000 - _brackets(m.cpus * 1000, ((1000, 0.06), (2000, 0.01), (4000, 0.005)), 0.0025))
    nominal = float(m.memory_mib)
    if nominal <= 1000:
        reserved = 255.0
    else:
        reserved = _brackets(nominal, ((4000, 0.25), (8000, 0.20), (16000, 0.10), (128000, 0.06)), 0.02)
    kernel = nominal / 64 + 16 + (64 if nominal > 3072 else 0)
    return cpu, nominal - kernel - reserved - 100


# --------------------------------------------------------------------------- quantities and requests

_QUANTITY = re.compile(r"^([+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?)(Ki|Mi|Gi|Ti|Pi|Ei|m|k|M|G|T|P|E)?$")
_FACTORS = {"": 1.0, "m": 1e-3, "k": 1e3, "M": 1e6, "G": 1e9, "T": 1e12, "P": 1e15, "E": 1e18,
            "Ki": 2.0**10, "Mi": 2.0**20, "Gi": 2.0**30, "Ti": 2.0**40, "Pi": 2.0**50, "Ei": 2.0**60}


def quantity(value: Any) -> float | None:
    """A Kubernetes quantity as a number (cpu in cores, memory in bytes); None when it is not one."""
    match = _QUANTITY.match(str(value).strip()) if value is not None else None
    return float(match.group(1)) * _FACTORS[match.group(2) or ""] if match else None


def _container_request(container: Obj, resource: str) -> float:
    resources = container.get("resources") if isinstance(container.get("resources"), dict) else {}
    value = get(resources, "requests", resource)
    if value is None:
        value = get(resources, "limits", resource)  # Kubernetes defaults requests to limits
    return quantity(value) or 0.0


def pod_request(spec: Obj, resource: str) -> float:
    """What the scheduler reserves for a pod: max(containers + sidecars, each init container + sidecars before)."""
    sidecars, init_peak = 0.0, 0.0
    for c in spec.get("initContainers") or []:
        if not isinstance(c, dict):
            continue
        if c.get("restartPolicy") == "Always":
            sidecars += _container_request(c, resource)
        else:
            init_peak = max(init_peak, sidecars + _container_request(c, resource))
    regular = sum(_container_request(c, resource) for c in spec.get("containers") or [] if isinstance(c, dict))
    return max(init_peak, regular + sidecars)


def _number(value: float) -> str:
    return f"{value:.1f}".removesuffix(".0")


def _cpu(cores: float) -> str:
    return f"{_number(cores * 1000)}m"


def _mem(mib: float) -> str:
    return f"{_number(mib)}Mi"


# --------------------------------------------------------------------------- node pools


@dataclass(frozen=True)
class Taint:
    key: str
    value: str
    effect: str

    def __str__(self) -> str:
        return f"{self.key}={self.value}:{self.effect}" if self.value else f"{self.key}:{self.effect}"


def parse_taint(text: str) -> Taint:
    """`key=value:Effect` (gcloud's --node-taints form) as a Taint."""
    kv, _, effect = text.rpartition(":")
    key, _, value = kv.partition("=")
    return Taint(key, value, effect)


@dataclass(frozen=True)
class Pool:
    """A node pool as the scheduler sees its nodes: labels, taints, allocatable (None: machine type unknown)."""

    index: int  # in the spec's node_pools
    name: str
    machine_type: str
    labels: Mapping[str, str]
    taints: tuple[Taint, ...]
    cpu_m: float | None = None
    memory_mib: float | None = None


def pool_of(index: int, resource: Resource) -> Pool:
    """The Pool of a planned `node-pool` resource (bootstrap's fields: machine_type, location, taints, ...)."""
    fields = resource.fields
    machine_type = str(fields.get("machine_type", ""))
    location = str(fields.get("location", ""))
    labels = {
        "cloud.google.com/gke-nodepool": resource.name,
        "kubernetes.io/os": "linux",
        "node.kubernetes.io/instance-type": machine_type,
    }
    if location:
        labels["topology.kubernetes.io/zone"] = location
        labels["topology.kubernetes.io/region"] = location.rsplit("-", 1)[0]
    if fields.get("preemptible"):
        labels["cloud.google.com/gke-preemptible"] = "true"
    size = machine(machine_type)
    if size is not None:
        labels["kubernetes.io/arch"] = "amd64"  # every family known here is x86
    cpu, memory = allocatable(size) if size is not None else (None, None)
    taints = tuple(parse_taint(str(t)) for t in fields.get("taints") or [])
    return Pool(index, resource.name, machine_type, labels, taints, cpu, memory)


def pools(fleet: Fleet, cluster: str) -> list[Pool]:
    """The cluster's node pools, in spec order, as bootstrap plans them."""
    order = {p.name: i for i, p in enumerate(fleet.spec(cluster).node_pools)}
    planned = [r for r in fleet.plans[cluster] if r.kind == "node-pool"]
    return sorted((pool_of(order.get(r.name, len(order)), r) for r in planned), key=lambda p: p.index)


# --------------------------------------------------------------------------- matching


def tolerates(toleration: Mapping[str, Any], taint: Taint) -> bool:
    """Whether a toleration tolerates a taint (Kubernetes' ToleratesTaint)."""
    effect = toleration.get("effect") or ""
    if effect and effect != taint.effect:
        return False
    key, operator = toleration.get("key") or "", toleration.get("operator") or "Equal"
    if not key:
        return bool(operator == "Exists")
    if key != taint.key:
        return False
    return operator == "Exists" or str(toleration.get("value") or "") == taint.value


def _expression_holds(expr: Mapping[str, Any], labels: Mapping[str, str]) -> bool:
    key, op = str(expr.get("key") or ""), expr.get("operator")
    values = [str(v) for v in expr.get("values") or []]
    present, value = key in labels, labels.get(key)
    if op == "In":
        return present and value in values
    if op == "NotIn":
        return not present or value not in values
    if op == "Exists":
        return present
    if op == "DoesNotExist":
        return not present
    if op in ("Gt", "Lt") and present and len(values) == 1:
        try:
            mine, theirs = int(str(value)), int(values[0])
        except ValueError:
            return False
        return mine > theirs if op == "Gt" else mine < theirs
    return False


def affinity_holds(affinity: Any, labels: Mapping[str, str]) -> bool:
    """Required node affinity: some nodeSelectorTerm has all its matchExpressions hold (no terms: nothing)."""
    required = get(affinity, "nodeAffinity", "requiredDuringSchedulingIgnoredDuringExecution")
    if not isinstance(required, dict):
        return True
    for term in required.get("nodeSelectorTerms") or []:
        expressions = term.get("matchExpressions") if isinstance(term, dict) else None
        fields = term.get("matchFields") if isinstance(term, dict) else None
        if not expressions and not fields:
            continue  # an empty term matches no node
        # matchFields select node names, unknown before the nodes exist: not held against a pool
        if all(_expression_holds(e, labels) for e in expressions or [] if isinstance(e, dict)):
            return True
    return False


def misfits(spec: Obj, pool: Pool) -> list[str]:
    """Why a pod with this spec cannot run on a node of `pool` (empty: it can)."""
    return placement_misfits(spec, pool) + request_misfits(spec, pool)


def placement_misfits(spec: Obj, pool: Pool) -> list[str]:
    """The taints, nodeSelector and required node affinity that keep a pod off `pool` (empty: none)."""
    reasons: list[str] = []
    tolerations = [t for t in spec.get("tolerations") or [] if isinstance(t, dict)]
    for taint in pool.taints:
        if taint.effect in TAINT_EFFECTS and not any(tolerates(t, taint) for t in tolerations):
            reasons.append(f"taint {taint} is not tolerated")
    selector = spec.get("nodeSelector")
    selector = selector if isinstance(selector, dict) else {}
    for key, value in sorted(selector.items()):
        if pool.labels.get(key) != str(value):
            has = f"its label is {pool.labels[key]}" if key in pool.labels else "no such label"
            reasons.append(f"nodeSelector {key}={value} does not match ({has})")
    if not affinity_holds(spec.get("affinity"), pool.labels):
        reasons.append("its required node affinity matches none of the pool's labels")
    return reasons


def request_misfits(spec: Obj, pool: Pool) -> list[str]:
    """Why a pod's requests exceed a node of `pool` (empty: they fit, or the machine type is unknown)."""
    reasons: list[str] = []
    if pool.cpu_m is not None and pool.memory_mib is not None:
        cpu, memory = pod_request(spec, "cpu"), pod_request(spec, "memory") / MIB
        if cpu * 1000 > pool.cpu_m:
            reasons.append(f"requests cpu {_cpu(cpu)} > allocatable {_cpu(pool.cpu_m / 1000)} of {pool.machine_type}")
        if memory > pool.memory_mib:
            reasons.append(f"requests memory {_mem(memory)} > allocatable {_mem(pool.memory_mib)} "
                           f"of {pool.machine_type}")
    return reasons


def why_not(spec: Obj, node_pools: list[Pool]) -> dict[str, list[str]] | None:
    """None when the pod fits some pool, else pool name -> why it does not fit there."""
    out: dict[str, list[str]] = {}
    for pool in node_pools:
        reasons = misfits(spec, pool)
        if not reasons:
            return None
        out[pool.name] = reasons
    return out


@dataclass(frozen=True)
class Verdict:
    """Why a pod template's pods do not all run: `nowhere` (a DaemonSet whose taints, selector and affinity
    exclude every pool: it creates no pod) or Pending pods; pool name -> the reasons."""

    nowhere: bool
    reasons: dict[str, list[str]]


def verdict(kind: str, spec: Obj, node_pools: list[Pool]) -> Verdict | None:
    """None when the pods of a `kind` workload with this pod spec run, else why not.

    A DaemonSet puts one pod on every node its tolerations, nodeSelector and affinity admit, and none elsewhere:
    admitted by no pool, it runs nowhere (and is Healthy, with 0 pods); admitted by a pool whose nodes its
    requests exceed, its pods there stay Pending, whatever the other pools. Any other pod needs one pool."""
    if kind != "DaemonSet":
        reasons = why_not(spec, node_pools)
        return None if reasons is None else Verdict(False, reasons)
    placement = {pool.name: placement_misfits(spec, pool) for pool in node_pools}
    eligible = [pool for pool in node_pools if not placement[pool.name]]
    if not eligible:
        return Verdict(True, placement)
    pending = {pool.name: why for pool in eligible if (why := request_misfits(spec, pool))}
    return Verdict(False, pending) if pending else None


def _explain(reasons: dict[str, list[str]]) -> str:
    return "; ".join(f"{name}: {', '.join(why)}" for name, why in reasons.items()) or "the spec has no node pool"


def _too_small(reasons: dict[str, list[str]]) -> list[str]:
    """Pools where only the requests are in the way."""
    return [name for name, why in reasons.items() if all(w.startswith("requests ") for w in why)]


# --------------------------------------------------------------------------- the rule


def _addon_apps(fleet: Fleet, cluster: str) -> list[Obj]:
    return [a for a in fleet.applications.get(cluster, []) if get(a, "spec", "source", "chart")]


ADDON_KEYS = {addon.name: addon.key for addon in ADDONS}  # cave.io/component -> gitops.yaml addons.<key>


def _addon_key(app: Obj) -> str:
    """gitops.yaml's key of an add-on Application (cave.io/component cert-manager -> cert_manager)."""
    component = str(get(app, "metadata", "labels", catalog.COMPONENT_LABEL))
    return ADDON_KEYS.get(component, component)


def _outcome(kind: str, what: str, found: Verdict, fix: str) -> str:
    """`what` (a `kind` workload) and why its pods do not all run, worded for what Argo CD then sees."""
    if found.nowhere:
        return (f"{what} runs on no node pool: {_explain(found.reasons)} (a DaemonSet creates no pod on nodes it "
                f"does not tolerate or select, so it is Healthy with 0 pods and never runs: {fix})")
    if kind == "DaemonSet":
        return (f"{what}'s pods on {', '.join(found.reasons)} would stay Pending: {_explain(found.reasons)} "
                f"(the DaemonSet never becomes ready and Argo CD waits on it: {fix})")
    return f"{what} fits no node pool: {_explain(found.reasons)} (it would stay Pending: {fix})"


def _addon_message(app: Obj | None, pod: AddonPod, found: Verdict) -> str:
    what = f"{pod.kind} {pod.namespace}/{pod.name}"
    if app is None:
        head = f"GKE's {pod.component} ({what})"
        fix = ("GKE's add-on manager owns it and it tolerates no custom taint: add a pool with `tainted: false`, "
               f"e.g. {UNTAINTED_HINT}")
    else:
        hook = f", a {pod.hook} hook the Application's sync waits on" if pod.hook else ""
        name = get(app, "metadata", "name")
        head = f"{pod.source} {pod.component} ({what}{hook}; Application {name})"
        prefix = f"{pod.values}." if pod.values else ""
        fix = (f"add a pool with `tainted: false` (GKE's system pods tolerate no custom taint either), e.g. "
               f"{UNTAINTED_HINT}, or give it tolerations and a nodeSelector in gitops.yaml "
               f"addons.{_addon_key(app)}.values: {prefix}tolerations, {prefix}nodeSelector")
    small = _too_small(found.reasons)
    if small:
        fix += f"; or a larger machine_type for {', '.join(small)}"
    return _outcome(pod.kind, head, found, fix)


def _workload_message(owner: Obj, found: Verdict, addon: str | None = None) -> str:
    """The finding of a rendered workload: of the cluster's overlay, or of an add-on overlay (`addon`: its path)."""
    _, kind, _, name = object_id(owner)
    small = _too_small(found.reasons)
    if small:
        where = "" if addon else " in the spec"
        fix = f"lower its requests{where} or choose a larger machine_type for {', '.join(small)}"
    elif addon is not None:
        fix = (f"add a pool with `tainted: false`, e.g. {UNTAINTED_HINT}, or give it tolerations and a nodeSelector "
               f"in the base {addon} renders")
    else:
        fix = ("give the spec a node pool it selects and tolerates (cave.io/pool places CAVE workloads on "
               "<role>-pool, base/components/node-pools)")
    what = f"{kind} {name}" + (f" (add-on {addon})" if addon else "")
    if kind == "DaemonSet":
        return _outcome(kind, what, found, fix)
    return f"{what}'s pods fit no node pool: {_explain(found.reasons)} (they would stay Pending: {fix})"


@fleet_rule(RULE)
def schedulable(fleet: Fleet) -> Iterator[Finding]:
    """Every pod template (CAVE workloads, add-ons, GKE's kube-system) fits at least one node pool."""
    for cluster in fleet.clusters:
        node_pools = pools(fleet, cluster)
        for pool in node_pools:
            if pool.cpu_m is None:
                yield fleet.spec_finding(
                    cluster, ("node_pools", pool.index, "machine_type"), RULE,
                    f"node pool {pool.name}: machine type {pool.machine_type!r} is not known here, so no pod's "
                    "requests are checked against it (use a predefined e2/n1/n2/n2d/t2d type or "
                    "<family>-custom-<vCPUs>-<MiB>, or add the type to compiler/validate/fleet/scheduling.py)")
        addon = ", ".join(fleet.addon_paths.get(cluster, []))
        rendered: list[tuple[PodTemplate, str | None]] = [
            (template, None) for template in ClusterSet(cluster, fleet.objects.get(cluster, [])).pod_templates]
        rendered += [(template, addon)
                     for template in ClusterSet(cluster, fleet.addon_objects.get(cluster, [])).pod_templates]
        for template, source in rendered:
            found = verdict(str(template.owner.get("kind")), template.spec, node_pools)
            if found is not None:
                yield object_finding(cluster, template.owner, field_path([*template.path, "spec"]), RULE,
                                     _workload_message(template.owner, found, source))
        addons: list[tuple[Obj | None, AddonPod]] = [
            (app, pod) for app in _addon_apps(fleet, cluster) for pod in addon_pods(app) or []]
        addons += [(None, pod) for pod in GKE_SYSTEM_PODS]
        for app, pod in addons:
            found = verdict(pod.kind, pod.pod_spec(), node_pools)
            if found is not None:
                yield fleet.spec_finding(cluster, ("node_pools",), RULE, _addon_message(app, pod, found), key=True)
