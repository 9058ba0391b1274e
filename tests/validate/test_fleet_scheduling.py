"""Fleet rule `schedulable`: every pod (CAVE, add-ons, GKE's kube-system) fits some node pool; the spec rule."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest

from compiler.bootstrap.model import Resource
from compiler.main import main
from compiler.validate.fleet.charts import GKE_SYSTEM_PODS, addon_pods, application_values
from compiler.validate.fleet.scheduling import (
    MIB,
    Machine,
    Pool,
    Verdict,
    _workload_message,
    allocatable,
    machine,
    misfits,
    pod_request,
    pool_of,
    quantity,
    verdict,
    why_not,
)
from tests.support.fleet import REPO, before_fleet, current_fleet, findings

RULE = "schedulable"

# GKE's reservations worked by hand (research notes section 5), not with the module's code:
# e2-standard-2: 2 vCPU, 8 GiB = 8192 MiB.
#   CPU: 6% of 1000m + 1% of 1000m = 60 + 10 = 70m reserved -> 1930m.
#   Memory: kernel 8192/64 + 16 + 64 = 208 MiB; reserved 25% of 4000 + 20% of 4000 + 10% of 192
#   = 1000 + 800 + 19.2 = 1819.2 MiB; eviction 100 MiB -> 8192 - 208 - 1819.2 - 100 = 6064.8 MiB.
E2_STANDARD_2_CPU_M = 1930
E2_STANDARD_2_MIB = 6064.8
# t2d-standard-4: 4 vCPU: 60 + 10 + 0.5% of 2000 = 80m reserved -> 3920m.
T2D_STANDARD_4_CPU_M = 3920
# e2-micro: 1024 MiB: kernel 1024/64 + 16 = 32; reserved 25% of 1024 = 256; 1024 - 32 - 256 - 100 = 636 MiB.
E2_MICRO_MIB = 636


def node_pool(name: str, machine_type: str = "e2-standard-2", *, tainted: bool = True,
              preemptible: bool = False) -> Pool:
    fields = {"machine_type": machine_type, "location": "us-east1-c", "preemptible": preemptible,
              "taints": [f"pool={name}:NoSchedule"] if tainted else []}
    return pool_of(0, Resource("node-pool", name, "p", fields))


def pod(cpu: str = "100m", memory: str = "100Mi", **spec: Any) -> dict[str, Any]:
    return {"containers": [{"name": "c", "resources": {"requests": {"cpu": cpu, "memory": memory}}}], **spec}


def toleration(key: str = "pool", value: str = "standard-pool", **extra: str) -> dict[str, str]:
    return {"key": key, "operator": "Equal", "value": value, "effect": "NoSchedule", **extra}


# --------------------------------------------------------------------------- the fleet


def test_before_fleet_reports_fanc_addons_and_kube_dns(tmp_path: Path) -> None:
    found = findings(before_fleet(tmp_path), RULE)
    assert {f.cluster for f in found} == {"fanc"}
    assert {f.where for f in found} == {"environments/fanc.yaml:27:1"}  # its node_pools key
    messages = "\n".join(f.message for f in found)
    for what in ("GKE's kube-dns", "GKE's metrics-server", "GKE's konnectivity-agent",
                 "ingress-nginx controller", "ingress-nginx admission-create (Job ingress-nginx/ingress-nginx-"
                 "admission-create, a PreSync hook", "cert-manager controller", "cert-manager webhook",
                 "cert-manager cainjector", "cert-manager startupapicheck", "external-secrets controller",
                 "external-secrets webhook", "external-secrets cert-controller"):
        assert what in messages
    assert len(found) == 13  # one per pod template, not per pool
    assert all("taint pool=mesh-pool:NoSchedule is not tolerated" in f.message for f in found)
    assert all("`tainted: false`" in f.message for f in found)


def test_current_fleet_is_silent(tmp_path: Path) -> None:
    assert findings(current_fleet(tmp_path), RULE) == []


def test_too_small_pool_is_an_object_finding_and_unknown_machine_type_a_spec_finding(tmp_path: Path) -> None:
    def edit(root: Path) -> None:
        spec = root / "environments" / "fanc.yaml"
        text = spec.read_text()
        small, mesh = "lightweight-pool, machine_type: e2-small", "mesh-pool, machine_type: t2d-standard-4"
        assert small in text and mesh in text
        text = text.replace(small, "lightweight-pool, machine_type: e2-micro")
        spec.write_text(text.replace(mesh, "mesh-pool, machine_type: zz9-mega-4"))

    found = findings(current_fleet(tmp_path, edit), RULE)
    unknown = [f for f in found if f.where]
    assert [(f.cluster, f.message.split(":")[0]) for f in unknown] == [("fanc", "node pool mesh-pool")]
    assert "'zz9-mega-4' is not known here" in unknown[0].message
    line = next(i for i, text in enumerate((REPO / "environments" / "fanc.yaml").read_text().splitlines(), 1)
                if "name: mesh-pool" in text)
    assert unknown[0].where.startswith(f"environments/fanc.yaml:{line}:")
    [materialize] = [f for f in found if not f.where]  # 938Mi > e2-micro's 636Mi; proxy's 300Mi still fits
    assert (materialize.kind, materialize.name, materialize.path) == ("Deployment", "materialize", "spec.template.spec")
    assert f"requests memory 938Mi > allocatable {E2_MICRO_MIB}Mi of e2-micro" in materialize.message
    assert "larger machine_type for lightweight-pool" in materialize.message


# --------------------------------------------------------------------------- the spec rule


def test_build_refuses_a_cluster_without_untainted_pool(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    shutil.copytree(REPO / "environments", tmp_path / "environments")
    spec = tmp_path / "environments" / "fanc.yaml"
    lines = spec.read_text().splitlines(keepends=True)
    kept = [line for line in lines if "name: core-pool" not in line]
    assert len(kept) == len(lines) - 1
    spec.write_text("".join(kept))
    line = next(i for i, text in enumerate(kept, 1) if text.startswith("node_pools:"))
    assert main(["--root", str(tmp_path), "build"]) == 2
    err = capsys.readouterr().err
    assert f"environments/fanc.yaml:{line}:1: every node pool is tainted" in err
    assert "kube-dns" in err and "tainted: false" in err
    assert not (tmp_path / "overlays").exists()


# --------------------------------------------------------------------------- machines


def test_allocatable_by_hand() -> None:
    cpu, memory = allocatable(Machine(2, 8192))
    assert cpu == E2_STANDARD_2_CPU_M and memory == pytest.approx(E2_STANDARD_2_MIB)
    assert allocatable(Machine(4, 16384))[0] == T2D_STANDARD_4_CPU_M
    assert allocatable(Machine(2, 1024, shared_core=True)) == (940, pytest.approx(E2_MICRO_MIB))


@pytest.mark.parametrize(("name", "size"), [
    ("e2-standard-2", Machine(2, 8192)),
    ("t2d-standard-4", Machine(4, 16384)),
    ("n1-standard-4", Machine(4, 15360)),
    ("n2-highmem-128", Machine(128, 864 * 1024)),
    ("e2-small", Machine(2, 2048, shared_core=True)),
    ("e2-custom-4-16384", Machine(4, 16384)),
    ("custom-2-7680", Machine(2, 7680)),
    ("e2-custom-medium-6144", Machine(2, 6144, shared_core=True)),
    ("e2-standard-3", None),
    ("zz9-mega-4", None),
])
def test_machine_types(name: str, size: Machine | None) -> None:
    assert machine(name) == size


def test_quantities() -> None:
    assert quantity("250m") == pytest.approx(0.25)
    assert quantity("2") == 2
    assert quantity("1Gi") == 2**30
    assert quantity("1.5G") == 1.5e9
    assert quantity("1e3") == 1000
    assert quantity("lots") is None


# --------------------------------------------------------------------------- matching


def test_taints_must_be_tolerated() -> None:
    standard = node_pool("standard-pool")
    assert misfits(pod(), standard) == ["taint pool=standard-pool:NoSchedule is not tolerated"]
    assert misfits(pod(tolerations=[toleration()]), standard) == []
    assert misfits(pod(tolerations=[toleration(value="mesh-pool")]), standard) != []
    assert misfits(pod(tolerations=[toleration(effect="NoExecute")]), standard) != []
    assert misfits(pod(tolerations=[{"key": "pool", "operator": "Exists"}]), standard) == []
    assert misfits(pod(tolerations=[{"operator": "Exists"}]), standard) == []  # empty key + Exists: every taint
    assert misfits(pod(tolerations=[{"key": "other", "operator": "Exists"}]), standard) != []
    assert misfits(pod(), node_pool("core-pool", tainted=False)) == []


def test_gke_system_pods_need_an_untainted_pool() -> None:
    tainted, untainted = node_pool("standard-pool"), node_pool("core-pool", tainted=False)
    for system in GKE_SYSTEM_PODS:
        assert why_not(system.pod_spec(), [tainted]) is not None
        assert why_not(system.pod_spec(), [tainted, untainted]) is None


def test_node_selector_must_match_the_pool_labels() -> None:
    core = node_pool("core-pool", tainted=False, preemptible=True)
    selector = {"cloud.google.com/gke-nodepool": "core-pool", "cloud.google.com/gke-preemptible": "true",
                "kubernetes.io/os": "linux", "kubernetes.io/arch": "amd64"}
    assert misfits(pod(nodeSelector=selector), core) == []
    assert misfits(pod(nodeSelector={"cloud.google.com/gke-nodepool": "mesh-pool"}), core) == [
        "nodeSelector cloud.google.com/gke-nodepool=mesh-pool does not match (its label is core-pool)"]
    assert misfits(pod(nodeSelector={"disk": "ssd"}), core) == ["nodeSelector disk=ssd does not match (no such label)"]


def test_required_node_affinity() -> None:
    def affinity(*expressions: dict[str, Any]) -> dict[str, Any]:
        return {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {
            "nodeSelectorTerms": [{"matchExpressions": list(expressions)}]}}}

    core, other = node_pool("core-pool", tainted=False), node_pool("other-pool", tainted=False)
    not_core = pod(affinity=affinity({"key": "cloud.google.com/gke-nodepool", "operator": "NotIn",
                                      "values": ["core-pool"]}))
    assert misfits(not_core, core) == ["its required node affinity matches none of the pool's labels"]
    assert misfits(not_core, other) == []
    assert why_not(not_core, [core, other]) is None
    spot = pod(affinity=affinity({"key": "cloud.google.com/gke-preemptible", "operator": "Exists"}))
    assert misfits(spot, core) != [] and misfits(spot, node_pool("spot", tainted=False, preemptible=True)) == []
    assert misfits(pod(affinity=affinity({"key": "cloud.google.com/gke-preemptible", "operator": "DoesNotExist"})),
                   core) == []
    empty = {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": []}}}
    assert misfits(pod(affinity=empty), core) != []  # no term matches no node
    preferred = {"nodeAffinity": {"preferredDuringSchedulingIgnoredDuringExecution": [
        {"weight": 1, "preference": {"matchExpressions": [{"key": "x", "operator": "Exists"}]}}]}}
    assert misfits(pod(affinity=preferred), core) == []


def test_requests_must_fit_e2_standard_2() -> None:
    core = node_pool("core-pool", tainted=False)
    assert misfits(pod(cpu=f"{E2_STANDARD_2_CPU_M}m", memory="6064Mi"), core) == []
    assert misfits(pod(cpu=f"{E2_STANDARD_2_CPU_M + 1}m", memory="6065Mi"), core) == [
        f"requests cpu {E2_STANDARD_2_CPU_M + 1}m > allocatable {E2_STANDARD_2_CPU_M}m of e2-standard-2",
        f"requests memory 6065Mi > allocatable {E2_STANDARD_2_MIB}Mi of e2-standard-2",
    ]
    assert misfits(pod(cpu="2"), core)[0].startswith("requests cpu 2000m")
    # an unknown machine type: taints and labels still count, requests are not guessed
    assert misfits(pod(cpu="64", memory="1Ti"), node_pool("big", "zz9-mega-4", tainted=False)) == []


def test_pod_request_counts_init_containers_and_sidecars() -> None:
    def container(cpu: str, **extra: Any) -> dict[str, Any]:
        return {"name": cpu, "resources": {"requests": {"cpu": cpu}}, **extra}

    spec = {"initContainers": [container("500m")], "containers": [container("100m"), container("200m")]}
    assert pod_request(spec, "cpu") == pytest.approx(0.5)  # the init container alone is the peak
    spec["initContainers"] = [container("50m", restartPolicy="Always"), container("400m")]
    assert pod_request(spec, "cpu") == pytest.approx(0.45)  # the sidecar runs beside the later init container
    spec["initContainers"] = [container("250m", restartPolicy="Always")]
    assert pod_request(spec, "cpu") == pytest.approx(0.55)  # ... and beside the containers
    limits_only = {"containers": [{"name": "c", "resources": {"limits": {"memory": "1Gi"}}}]}
    assert pod_request(limits_only, "memory") == 2**30 and pod_request(limits_only, "cpu") == 0
    assert pod_request(limits_only, "memory") / MIB == 1024


# --------------------------------------------------------------------------- the chart catalogue


def application(chart: str, values: dict[str, Any] | None = None, text: str | None = None) -> dict[str, Any]:
    helm: dict[str, Any] = {"releaseName": chart}
    if values is not None:
        helm["valuesObject"] = values
    if text is not None:
        helm["values"] = text
    return {"apiVersion": "argoproj.io/v1alpha1", "kind": "Application", "metadata": {"name": f"cave-x-{chart}"},
            "spec": {"source": {"chart": chart, "helm": helm}, "destination": {"namespace": chart}}}


def test_ingress_nginx_pods_and_values() -> None:
    pods = addon_pods(application("ingress-nginx"))
    assert pods is not None
    assert [(p.name, p.kind, p.hook) for p in pods] == [
        ("ingress-nginx-controller", "Deployment", None),
        ("ingress-nginx-admission-create", "Job", "PreSync"),
        ("ingress-nginx-admission-patch", "Job", "PostSync"),
    ]
    assert pods[0].requests == {"cpu": "100m", "memory": "90Mi"}
    assert pods[0].node_selector == {"kubernetes.io/os": "linux"}
    tolerated = addon_pods(application("ingress-nginx", {"controller": {
        "tolerations": [toleration()], "nodeSelector": {"cloud.google.com/gke-nodepool": "standard-pool"},
        "admissionWebhooks": {"patch": {"tolerations": [{"operator": "Exists"}]}}}}))
    assert tolerated is not None
    standard = node_pool("standard-pool", "t2d-standard-4")
    assert [misfits(p.pod_spec(), standard) for p in tolerated] == [[], [], []]
    assert tolerated[0].node_selector == {"kubernetes.io/os": "linux", "cloud.google.com/gke-nodepool": "standard-pool"}
    nulled = addon_pods(application("ingress-nginx", text="controller:\n  nodeSelector: {kubernetes.io/os: null}\n"))
    assert nulled is not None and nulled[0].node_selector == {}


def test_cert_manager_global_node_selector_is_a_fallback() -> None:
    pods = addon_pods(application("cert-manager", {"global": {"nodeSelector": {"role": "core"}}}))
    assert pods is not None
    assert [(p.name, p.hook) for p in pods] == [("cert-manager", None), ("cert-manager-webhook", None),
                                                ("cert-manager-cainjector", None),
                                                ("cert-manager-startupapicheck", "PostSync")]
    assert all(p.node_selector == {"kubernetes.io/os": "linux"} for p in pods)  # the component default wins
    cleared = addon_pods(application("cert-manager", {"global": {"nodeSelector": {"role": "core"}},
                                                      "webhook": {"nodeSelector": None},
                                                      "startupapicheck": {"enabled": False}}))
    assert cleared is not None
    assert [p.node_selector for p in cleared] == [{"kubernetes.io/os": "linux"}, {"role": "core"},
                                                  {"kubernetes.io/os": "linux"}]


def test_external_secrets_global_tolerations_are_the_default() -> None:
    everywhere = [{"operator": "Exists"}]
    pods = addon_pods(application("external-secrets", {"global": {"tolerations": everywhere},
                                                       "webhook": {"tolerations": [toleration()]}}))
    assert pods is not None
    assert [(p.name, list(p.tolerations)) for p in pods] == [
        ("external-secrets", everywhere), ("external-secrets-webhook", [toleration()]),
        ("external-secrets-cert-controller", everywhere)]
    assert addon_pods(application("some-other-chart")) is None


def test_redis_standalone_has_one_pod_with_the_values_requests() -> None:
    pods = addon_pods(application("redis", {"architecture": "standalone",
                                            "master": {"resources": {"requests": {"cpu": "100m", "memory": "850Mi"}}}}))
    assert pods is not None
    assert [(p.name, p.kind, dict(p.requests)) for p in pods] == [
        ("redis-master", "StatefulSet", {"cpu": "100m", "memory": "850Mi"})]


# --------------------------------------------------------------------------- DaemonSets and add-on overlays


def test_daemonset_runs_on_every_pool_it_admits() -> None:
    core, standard = node_pool("core-pool", "e2-small", tainted=False), node_pool("standard-pool", "t2d-standard-4")
    # tolerates nothing: no pod anywhere but core-pool, where it fits
    assert verdict("DaemonSet", pod(), [core, standard]) is None
    # tolerates standard-pool too and fits it, but its requests exceed e2-small: core-pool's pods stay Pending,
    # though a Deployment of the same pods would run on standard-pool
    big = pod(cpu="1500m", tolerations=[toleration()])
    assert verdict("Deployment", big, [core, standard]) is None
    found = verdict("DaemonSet", big, [core, standard])
    assert found == Verdict(False, {"core-pool": ["requests cpu 1500m > allocatable 940m of e2-small"]})
    message = _workload_message({"kind": "DaemonSet", "metadata": {"name": "agent"}}, found)
    assert message.startswith("DaemonSet agent's pods on core-pool would stay Pending: core-pool: requests cpu")
    # admitted by no pool: it runs nowhere (Healthy with 0 pods), not Pending
    nowhere = verdict("DaemonSet", pod(nodeSelector={"disk": "ssd"}), [core, standard])
    assert nowhere is not None and nowhere.nowhere
    message = _workload_message({"kind": "DaemonSet", "metadata": {"name": "agent"}}, nowhere)
    assert message.startswith("DaemonSet agent runs on no node pool: core-pool: nodeSelector disk=ssd")
    assert "Healthy with 0 pods" in message and "Pending" not in message


def test_before_konnectivity_agent_runs_nowhere(tmp_path: Path) -> None:
    found = findings(before_fleet(tmp_path), RULE)
    [agent] = [f for f in found if "konnectivity-agent" in f.message]
    assert agent.message.startswith("GKE's konnectivity-agent (DaemonSet kube-system/konnectivity-agent) runs on "
                                    "no node pool: ")
    assert "Healthy with 0 pods" in agent.message and "Pending" not in agent.message


def test_metrics_adapter_overlay_pods_are_checked(tmp_path: Path) -> None:
    def edit(root: Path) -> None:
        deployment = root / "base" / "addons" / "custom-metrics-stackdriver-adapter" / "deployment.yaml"
        text = deployment.read_text()
        assert text.count("cpu: 250m") == 2
        deployment.write_text(text.replace("cpu: 250m", "cpu: 64"))

    fleet = current_fleet(tmp_path, edit)
    assert {c: sorted(o["kind"] for o in objects if o["kind"] == "Deployment")
            for c, objects in fleet.addon_objects.items()} == {"fanc": ["Deployment"], "minnie": ["Deployment"]}
    found = findings(fleet, RULE)
    assert [(f.cluster, f.kind, f.name) for f in found] == [
        ("fanc", "Deployment", "custom-metrics-stackdriver-adapter"),
        ("minnie", "Deployment", "custom-metrics-stackdriver-adapter")]
    assert "(add-on overlays/argocd/addons/fanc/custom-metrics)" in found[0].message
    assert "requests cpu 64000m > allocatable" in found[0].message


def test_valuesobject_replaces_values() -> None:
    """Argo CD gives the chart valuesObject when it is set and ignores values (ApplicationSourceHelm.ValuesYAML)."""
    app = application("ingress-nginx", {"controller": {"tolerations": [toleration()]}},
                      text="controller:\n  nodeSelector: {disk: ssd}\n")
    assert application_values(app) == {"controller": {"tolerations": [toleration()]}}
    pods = addon_pods(app)
    assert pods is not None and pods[0].node_selector == {"kubernetes.io/os": "linux"}
