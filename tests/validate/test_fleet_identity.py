"""google-identity: every pod that calls Google runs as a ServiceAccount mapped to a GCP service account that
bootstrap creates, binds for Workload Identity and grants the roles of the APIs the catalogue says it calls."""

from __future__ import annotations

import copy
from pathlib import Path

from compiler.validate.fleet import Fleet
from compiler.validate.model import Finding
from tests.support.fleet import before_fleet, current_fleet, findings

RULE = "google-identity"


def _without(fleet: Fleet, cluster: str, *keys: str) -> Fleet:
    """A copy of `fleet` whose bootstrap plan for `cluster` lacks the resources `keys` (each must be planned)."""
    fleet = copy.copy(fleet)
    plans = dict(fleet.plans)
    planned = {r.key for r in plans[cluster]}
    assert set(keys) <= planned, sorted(set(keys) - planned)
    plans[cluster] = [r for r in plans[cluster] if r.key not in keys]
    fleet.plans = plans  # replaces the cached property's value in the copy
    return fleet


def _on(found: list[Finding], cluster: str, name: str) -> list[Finding]:
    return [f for f in found if f.cluster == cluster and f.name == name]


def test_before_proxy_runs_as_default_without_google_identity(tmp_path: Path) -> None:
    found = findings(before_fleet(tmp_path), RULE)
    [proxy] = _on(found, "fanc", "proxy")
    assert (proxy.kind, proxy.path) == ("Deployment", "spec.template.spec.serviceAccountName")
    assert "'default'" in proxy.message and "storage" in proxy.message
    assert "serviceAccountName" in proxy.message and "base/proxy" in proxy.message


def test_before_materialization_may_not_import_or_export(tmp_path: Path) -> None:
    """The fixture holds no plan: the plan of that day is today's without what the fix added (cloudsql.admin
    for the materialization account, the instance's read on the upload bucket), as bootstrap planned it then."""
    fleet = before_fleet(tmp_path)
    spec = fleet.spec("minnie")
    email = f"daf-pychunkedgraph-minnie@{spec.gcp.project}.iam.gserviceaccount.com"
    admin = f"project-iam-binding/{spec.gcp.project}:roles/cloudsql.admin:serviceAccount:{email}"
    fleet = _without(fleet, "minnie", admin,
                     "bucket-iam-binding/cave-demo-minnie-uploads:roles/storage.objectViewer:cloud-sql-instance")
    found = findings(fleet, RULE)
    materialize = _on(found, "minnie", "materialize")
    assert len(materialize) == 1 and "roles/cloudsql.admin" in materialize[0].message
    assert "Cloud SQL Admin API" in materialize[0].message
    assert {f.name for f in found if f.cluster == "minnie" and "cloudsql.admin" in f.message} >= {
        "celery-producer", "materialize-db-migration"}
    [instance] = [f for f in found if f.where and "cave-demo-minnie-uploads" in f.message]
    assert instance.where.startswith("environments/minnie.yaml:") and "objectViewer" in instance.message


def test_current_fleet_is_silent(now: Fleet) -> None:
    assert findings(now, RULE) == []


def test_annotation_removed_is_reported(tmp_path: Path) -> None:
    def edit(root: Path) -> None:
        path = root / "overlays" / "fanc" / "serviceaccounts.yaml"
        text = path.read_text()
        line = "    iam.gke.io/gcp-service-account: daf-proxy-fanc@cave-demo-fanc.iam.gserviceaccount.com\n"
        assert line in text
        path.write_text(text.replace(line, ""))

    found = findings(current_fleet(tmp_path, edit), RULE)
    assert [(f.cluster, f.kind, f.name) for f in found] == [("fanc", "ServiceAccount", "proxy")]
    assert "no iam.gke.io/gcp-service-account annotation" in found[0].message
    assert "daf-proxy-fanc@cave-demo-fanc.iam.gserviceaccount.com" in found[0].message


def test_role_removed_from_plan_is_reported(now: Fleet) -> None:
    spec = now.spec("fanc")
    email = f"daf-proxy-fanc@{spec.gcp.project}.iam.gserviceaccount.com"
    key = f"bucket-iam-binding/fanc-public-data:roles/storage.objectViewer:serviceAccount:{email}"
    found = findings(_without(now, "fanc", key), RULE)
    [f] = found
    assert (f.cluster, f.name) == ("fanc", "proxy")
    assert "roles/storage.objectViewer on bucket gs://fanc-public-data" in f.message


def test_data_project_grant_removed_is_reported(now: Fleet) -> None:
    spec = now.spec("minnie")
    data = spec.data.project  # type: ignore[union-attr]
    email = f"daf-pychunkedgraph-minnie@{spec.gcp.project}.iam.gserviceaccount.com"
    found = findings(_without(now, "minnie", f"project-iam-binding/{data}:roles/bigtable.user:serviceAccount:{email}"),
                     RULE)
    assert found and all(f.cluster == "minnie" and f"project {data}" in f.message for f in found)
    assert {"pychunkedgraph", "meshworker", "materialize"} <= {f.name for f in found}


def test_workload_identity_binding_removed_is_reported(now: Fleet) -> None:
    spec = now.spec("fanc")
    p = spec.gcp.project
    wi = f"serviceAccount:{p}.svc.id.goog[{spec.argocd.namespace}/proxy]"
    found = findings(_without(now, "fanc", f"sa-iam-binding/daf-proxy-fanc@{p}.iam.gserviceaccount.com:"
                                           f"roles/iam.workloadIdentityUser:{wi}"), RULE)
    [f] = found
    assert f.name == "proxy" and "roles/iam.workloadIdentityUser" in f.message and wi in f.message


def test_service_account_must_be_in_the_workload_namespace(now: Fleet) -> None:
    """A ServiceAccount of the same name in another namespace is not the one the pods run as."""
    fleet = copy.copy(now)
    objects = [copy.deepcopy(o) if o.get("kind") == "ServiceAccount" and o["metadata"]["name"] == "proxy" else o
               for o in now.objects["fanc"]]
    [account] = [o for o in objects if o.get("kind") == "ServiceAccount" and o["metadata"]["name"] == "proxy"]
    account["metadata"]["namespace"] = "elsewhere"
    fleet.objects = {**now.objects, "fanc": objects}
    found = findings(fleet, RULE)
    assert [(f.cluster, f.name) for f in found] == [("fanc", "proxy")]
    assert "'proxy', which the cluster does not have" in found[0].message
