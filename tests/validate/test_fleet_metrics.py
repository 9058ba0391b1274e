"""metric-source: every HPA metric has a source (the custom-metrics adapter, its identity, a writer that may write)."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
import yaml

from compiler import catalog
from compiler.bootstrap.desired import desired
from compiler.bootstrap.model import Resource
from compiler.render import kustomize
from compiler.spec.load import load_environments
from compiler.validate.fleet import Fleet
from compiler.validate.fleet.metrics import RULE
from compiler.validate.model import Finding
from compiler.validate.schemas import Schemas, kubernetes_schema_version
from tests.support.fleet import REPO, before_fleet, current_fleet, findings

MONITORING = re.compile(r"^[a-z.]+\.googleapis\.com\|")


def _monitored_hpas(fleet: Fleet, cluster: str) -> set[str]:
    """HPAs of the rendered cluster with a metric that is not cpu/memory (counted here, from the objects)."""
    out: set[str] = set()
    for obj in fleet.objects[cluster]:
        if obj.get("kind") != "HorizontalPodAutoscaler":
            continue
        for m in obj["spec"].get("metrics", []):
            body = m.get({"Pods": "pods", "External": "external", "Object": "object"}.get(m["type"], ""), {})
            if MONITORING.match(body.get("metric", {}).get("name", "")):
                out.add(obj["metadata"]["name"])
    return out


def _names(found: list[Finding], kind: str, text: str) -> set[str]:
    return {f.name for f in found if f.kind == kind and text in f.message}


def _drop(fleet: Fleet, cluster: str, keep: Callable[[Resource], bool]) -> None:
    """Replace the cluster's bootstrap plan by the resources `keep(resource)` accepts (an edited plan)."""
    fleet.__dict__["plans"] = {**fleet.plans, cluster: [r for r in fleet.plans[cluster] if keep(r)]}


# --------------------------------------------------------------------------- the fleet as reviewed, and now


def test_before_every_monitored_hpa_of_minnie_lacks_the_adapter(tmp_path: Path) -> None:
    fleet = before_fleet(tmp_path)
    found = [f for f in findings(fleet, RULE) if f.cluster == "minnie"]
    expected = _monitored_hpas(fleet, "minnie")
    assert len(expected) == 15  # P40: 15 of minnie's 22 HPAs
    assert _names(found, "HorizontalPodAutoscaler", "no Argo CD Application installs the adapter") == expected


def test_before_dash_and_tourguide_writers_have_no_identity(tmp_path: Path) -> None:
    found = [f for f in findings(before_fleet(tmp_path), RULE) if f.cluster == "minnie"]
    assert _names(found, "Deployment", "runs as Kubernetes ServiceAccount 'default'") == {"dash", "tourguide"}
    # v0.8.0/v0.9.2 exit under Workload Identity; and the skeleton queue metric had no declared writer
    assert "tourguide" in _names(found, "Deployment", "exits under Workload Identity")
    assert "skeletoncache-worker-scaler" in _names(found, "HorizontalPodAutoscaler", "nothing in the cluster writes")


def test_current_fleet_is_silent(tmp_path: Path) -> None:
    assert findings(current_fleet(tmp_path), RULE) == []


def test_catalogue_knows_every_service_with_a_monitored_hpa(tmp_path: Path) -> None:
    """The build decides from the catalogue which clusters get the adapter: it must cover the rendered HPAs."""
    fleet = current_fleet(tmp_path)
    for cluster in fleet.clusters:
        hpas = _monitored_hpas(fleet, cluster)
        services = {o["metadata"]["labels"]["cave.io/service"] for o in fleet.objects[cluster]
                    if o.get("kind") == "HorizontalPodAutoscaler" and o["metadata"]["name"] in hpas}
        assert services <= catalog.CUSTOM_METRIC_HPA_SERVICES, cluster


# --------------------------------------------------------------------------- focused cases


def _without_adapter_app(root: Path) -> None:
    path = root / "overlays" / "argocd" / "clusters" / "minnie.yaml"
    docs = [d for d in yaml.safe_load_all(path.read_text()) if d]
    kept = [d for d in docs if d["metadata"]["labels"].get("cave.io/component") != "custom-metrics"]
    assert len(kept) == len(docs) - 1
    path.write_text(yaml.safe_dump_all(kept))


def test_adapter_application_removed_is_reported(tmp_path: Path) -> None:
    fleet = current_fleet(tmp_path, _without_adapter_app)
    found = findings(fleet, RULE)
    assert found and {f.cluster for f in found} == {"minnie"}
    assert _names(found, "HorizontalPodAutoscaler", "no Argo CD Application") == _monitored_hpas(fleet, "minnie")


def test_adapter_viewer_role_removed_from_plan_is_reported(tmp_path: Path) -> None:
    fleet = current_fleet(tmp_path)
    _drop(fleet, "fanc", lambda r: not (r.kind == "project-iam-binding" and "daf-metrics-" in r.name))
    found = findings(fleet, RULE)
    assert {f.cluster for f in found} == {"fanc"}
    assert _names(found, "HorizontalPodAutoscaler", "roles/monitoring.viewer") == _monitored_hpas(fleet, "fanc")


def test_metric_writer_role_removed_from_plan_is_reported(tmp_path: Path) -> None:
    fleet = current_fleet(tmp_path)
    _drop(fleet, "minnie", lambda r: not (r.kind == "project-iam-binding" and "daf-tourguide-" in r.name
                                          and r.fields["role"] == "roles/monitoring.metricWriter"))
    found = findings(fleet, RULE)
    assert _names(found, "Deployment", "lacks roles/monitoring.metricWriter") == {"tourguide"}
    assert _names(found, "HorizontalPodAutoscaler", "cannot write it usably") == {"tourguide-scaler"}


def test_workload_identity_binding_removed_is_reported(tmp_path: Path) -> None:
    fleet = current_fleet(tmp_path)
    _drop(fleet, "minnie", lambda r: not (r.kind == "sa-iam-binding" and "[default/dash]" in r.name))
    assert _names(findings(fleet, RULE), "Deployment", "lets no default/dash act as it") == {"dash"}


def _gke_container_sidecars(root: Path) -> None:
    patch = root / "base" / "components" / "uwsgi-metrics" / "patch-deployment.yaml"
    text = patch.read_text()
    assert "--monitored-resource-type-prefix=k8s_" in text
    patch.write_text(text.replace("      - --monitored-resource-type-prefix=k8s_\n", ""))


def test_writer_of_gke_container_series_is_reported(tmp_path: Path) -> None:
    found = findings(current_fleet(tmp_path, _gke_container_sidecars), RULE)
    uwsgi = {"dash", "materialize", "pychunkedgraph", "pychunkedgraph-read"}
    assert _names(found, "Deployment", "writes gke_container series") == uwsgi
    assert {f"{n}-scaler" for n in uwsgi} <= _names(found, "HorizontalPodAutoscaler", "cannot write it usably")


def _no_stats_writer(root: Path) -> None:
    path = root / "base" / "skeletoncache" / "deployment-skeletoncache-stats-exporter.yaml"
    text = path.read_text()
    assert "cave.io/writes-metrics:" in text
    path.write_text(text.replace("cave.io/writes-metrics:", "cave.io/not-a-writer:"))


def test_external_custom_metric_without_writer_is_reported(tmp_path: Path) -> None:
    found = findings(current_fleet(tmp_path, _no_stats_writer), RULE)
    assert {(f.name, f.path) for f in found} == {("skeletoncache-worker-scaler", "spec.metrics[0]"),
                                                 ("skeletoncache-worker-scaler", "spec.metrics[1]")}
    assert all("nothing in the cluster writes it" in f.message for f in found)


# --------------------------------------------------------------------------- the add-on and the plan


def test_adapter_overlay_renders_and_passes_schemas() -> None:
    specs = load_environments(REPO)
    tool = kustomize.find(REPO)
    schemas = Schemas()
    for cluster in ("minnie", "fanc"):
        out = tool.build(REPO / "overlays" / "argocd" / "addons" / cluster / "custom-metrics")
        objs = [d for d in yaml.safe_load_all(out) if d]
        kinds = sorted(o["kind"] for o in objs)
        assert kinds.count("APIService") == 3 and "Deployment" in kinds and "RoleBinding" in kinds
        version = kubernetes_schema_version(specs[cluster].kubernetes_version)
        assert [str(f) for o in objs for f in schemas.check(cluster, o, version)] == []
        account = next(o for o in objs if o["kind"] == "ServiceAccount")
        assert account["metadata"]["annotations"]["iam.gke.io/gcp-service-account"] == (
            f"daf-metrics-{cluster}@{specs[cluster].gcp.project}.iam.gserviceaccount.com")
        image = next(o for o in objs if o["kind"] == "Deployment")["spec"]["template"]["spec"]["containers"][0]["image"]
        assert image == "gcr.io/gke-release/custom-metrics-stackdriver-adapter:v0.16.9-gke.0"
        assert {o["metadata"].get("namespace") for o in objs} == {None, "custom-metrics", "kube-system"}


def test_app_of_apps_allows_the_adapter() -> None:
    docs = {d["kind"] + "/" + d["metadata"]["name"]: d
            for f in ("project.yaml", "clusters/minnie.yaml", "clusters/global.yaml")
            for d in yaml.safe_load_all((REPO / "overlays" / "argocd" / f).read_text()) if d}
    project = docs["AppProject/cave"]["spec"]
    assert {"group": "apiregistration.k8s.io", "kind": "APIService"} in project["clusterResourceWhitelist"]
    assert {"name": "daf-minnie", "namespace": "custom-metrics"} in project["destinations"]
    assert {"name": "daf-minnie", "namespace": "kube-system"} in project["destinations"]
    assert not any(d.get("namespace") == "custom-metrics" and "daf-minnie" not in d.values()
                   and "daf-fanc" not in d.values() for d in project["destinations"])  # global has no such HPA
    app = docs["Application/cave-minnie-custom-metrics"]["spec"]
    assert app["source"]["path"] == "overlays/argocd/addons/minnie/custom-metrics"
    assert app["source"]["repoURL"] in project["sourceRepos"]
    assert "Application/cave-global-custom-metrics" not in docs


@pytest.mark.parametrize("cluster", ["minnie", "fanc"])
def test_bootstrap_plans_the_adapter_account_and_metric_writers(cluster: str) -> None:
    spec = load_environments(REPO)[cluster]
    keys = {r.key for r in desired(spec)}
    p = spec.gcp.project
    sa = f"daf-metrics-{cluster}@{p}.iam.gserviceaccount.com"
    assert f"service-account/daf-metrics-{cluster}" in keys
    assert f"project-iam-binding/{p}:roles/monitoring.viewer:serviceAccount:{sa}" in keys
    assert (f"sa-iam-binding/{sa}:roles/iam.workloadIdentityUser:"
            f"serviceAccount:{p}.svc.id.goog[custom-metrics/custom-metrics-stackdriver-adapter]") in keys
    writer = f"daf-pychunkedgraph-{cluster}@{p}.iam.gserviceaccount.com"
    assert f"project-iam-binding/{p}:roles/monitoring.metricWriter:serviceAccount:{writer}" in keys


def test_bootstrap_offline_cli_shows_the_adapter_and_writers() -> None:
    proc = subprocess.run([sys.executable, "-m", "compiler", "bootstrap", "minnie", "--offline", "--format", "json"],
                          capture_output=True, text=True, check=False, cwd=REPO)
    rows = json.loads(proc.stdout)["resources"]
    grants = {(r["fields"]["member"].split(":", 1)[1].split("@")[0], r["fields"]["role"])
              for r in rows if r["kind"] == "project-iam-binding" and "@" in r["fields"].get("member", "")}
    assert ("daf-metrics-minnie", "roles/monitoring.viewer") in grants
    for writer in ("dash", "tourguide", "pychunkedgraph", "skeleton"):
        assert (f"daf-{writer}-minnie", "roles/monitoring.metricWriter") in grants


def test_global_cluster_gets_no_adapter_account() -> None:
    spec = load_environments(REPO)["global"]
    assert not any("daf-metrics-" in r.name for r in desired(spec))


def test_writer_service_account_in_another_namespace_is_no_identity(tmp_path: Path) -> None:
    fleet = current_fleet(tmp_path)
    objects = [dict(o, metadata={**o["metadata"], "namespace": "elsewhere"})
               if o.get("kind") == "ServiceAccount" and o["metadata"]["name"] == "tourguide" else o
               for o in fleet.objects["minnie"]]
    assert objects != fleet.objects["minnie"]
    fleet.objects = {**fleet.objects, "minnie": objects}
    found = findings(fleet, RULE)
    assert _names(found, "Deployment", "runs as Kubernetes ServiceAccount 'tourguide', which has no Google") == {
        "tourguide"}
    assert _names(found, "HorizontalPodAutoscaler", "cannot write it usably") == {"tourguide-scaler"}
