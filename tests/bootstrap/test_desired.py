"""The desired resources agree with what the compiled overlays expect to find in Google Cloud."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from compiler.bootstrap.desired import desired, order
from compiler.bootstrap.model import Ref, Resource
from compiler.spec.derive import derive
from compiler.spec.load import load_environments
from tests.support import REPO

SPECS = load_environments(REPO)
CLUSTERS = sorted(SPECS)


def _docs(path: Path) -> list[dict[str, object]]:
    return [d for d in yaml.safe_load_all(path.read_text()) if d]


def _keys(cluster: str) -> dict[str, Resource]:
    return {r.key: r for r in desired(SPECS[cluster])}


@pytest.mark.parametrize("cluster", CLUSTERS)
def test_dependencies_come_first_and_exist(cluster: str) -> None:
    seen: set[str] = set()
    resources = desired(SPECS[cluster])
    assert len({r.key for r in resources}) == len(resources), "duplicate resource keys"
    for r in resources:
        for dep in r.depends:
            assert dep in seen, f"{r.key} depends on {dep}, which is not planned before it"
        seen.add(r.key)


def test_order_rejects_a_cycle() -> None:
    a = Resource("network", "a", "p", depends=("network/b",))
    b = Resource("network", "b", "p", depends=("network/a",))
    with pytest.raises(ValueError, match="dependency cycle"):
        order([a, b])


@pytest.mark.parametrize("cluster", CLUSTERS)
def test_every_external_secret_has_a_secret(cluster: str) -> None:
    keys = _keys(cluster)
    remote = {d["remoteRef"]["key"]  # type: ignore[index]
              for doc in _docs(REPO / "overlays" / cluster / "secrets.yaml") if doc["kind"] == "ExternalSecret"
              for d in doc["spec"]["data"]}  # type: ignore[index]
    assert remote, "the overlay reads no secret?"
    missing = sorted(name for name in remote if f"secret/{name}" not in keys)
    assert not missing


@pytest.mark.parametrize("cluster", CLUSTERS)
def test_every_workload_identity_account_is_created_and_bound(cluster: str) -> None:
    """Each Kubernetes ServiceAccount annotated with a GCP account (overlay and Argo CD add-ons) gets that
    account and its roles/iam.workloadIdentityUser binding for exactly that namespace/name."""
    spec = SPECS[cluster]
    keys = _keys(cluster)
    pairs: list[tuple[str, str, str]] = []  # (namespace, ksa, gsa email)
    for doc in _docs(REPO / "overlays" / cluster / "serviceaccounts.yaml"):
        meta = doc["metadata"]
        pairs.append((spec.argocd.namespace, meta["name"], meta["annotations"]["iam.gke.io/gcp-service-account"]))  # type: ignore[index]
    addons = (REPO / "overlays" / "argocd" / "clusters" / f"{cluster}.yaml").read_text()
    for doc in yaml.safe_load_all(addons):
        values = (doc or {}).get("spec", {}).get("source", {}).get("helm", {}).get("valuesObject", {})
        sa = values.get("serviceAccount", {})
        email = sa.get("annotations", {}).get("iam.gke.io/gcp-service-account")
        if email:
            namespace = doc["spec"]["destination"]["namespace"]
            pairs.append((namespace, sa.get("name", doc["spec"]["source"]["helm"]["releaseName"]), email))
    assert len(pairs) >= 3
    for namespace, ksa, email in pairs:
        account = email.split("@")[0]
        assert f"service-account/{account}" in keys
        member = f"serviceAccount:{spec.gcp.project}.svc.id.goog[{namespace}/{ksa}]"
        assert f"sa-iam-binding/{email}:roles/iam.workloadIdentityUser:{member}" in keys, (namespace, ksa)


@pytest.mark.parametrize("cluster", CLUSTERS)
def test_every_hostname_has_a_record_in_a_planned_zone(cluster: str) -> None:
    names = derive(SPECS[cluster])
    keys = _keys(cluster)
    for host, zone in zip(names.hostnames, names.hostname_zones, strict=True):
        record = keys[f"dns-record/{host}."]
        assert record.fields["zone"] == zone and f"dns-zone/{zone}" in keys
        assert record.fields["rrdatas"] == [Ref(f"address/{names.cluster_name}", "address")]


@pytest.mark.parametrize("cluster", [c for c in CLUSTERS if SPECS[c].kind == "local"])
def test_every_pubsub_name_the_overlay_uses_is_planned(cluster: str) -> None:
    text = "\n".join(p.read_text() for p in (REPO / "overlays" / cluster).rglob("*") if p.is_file())
    used = set(re.findall(rf"\b{cluster}_[A-Z0-9_]+\b", text))
    assert used, "no Pub/Sub names in the overlay?"
    keys = _keys(cluster)
    planned = {k.split("/", 1)[1] for k in keys if k.startswith(("pubsub-topic/", "pubsub-subscription/"))}
    assert sorted(used - planned) == []
    for key, r in keys.items():
        if r.kind == "pubsub-subscription":
            assert f"pubsub-topic/{r.fields['topic']}" in keys, key


def test_bigtable_has_one_ssd_cluster_and_redis_is_per_cluster() -> None:
    for cluster in CLUSTERS:
        spec = SPECS[cluster]
        resources = desired(spec)
        for r in resources:
            if r.kind == "bigtable-instance":
                assert r.fields["clusters"] == 1 and r.fields["storage_type"] == "SSD"
                assert r.project == spec.data.project  # type: ignore[union-attr]
            if r.kind == "redis":
                assert r.name.endswith(f"-{cluster}"), r.name  # P53: no shared `pcg-cache`


def test_offline_cli_json(tmp_path: Path) -> None:
    proc = subprocess.run([sys.executable, "-m", "compiler", "bootstrap", "minnie", "--offline", "--format", "json"],
                          cwd=REPO, capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stderr
    data = json.loads(proc.stdout)
    assert data["mode"] == "offline" and data["cluster"] == "minnie"
    assert {r["status"] for r in data["resources"]} == {"offline"}
    assert len(data["resources"]) == len(desired(SPECS["minnie"]))
    records = [r for r in data["resources"] if r["kind"] == "dns-record"]
    assert records[0]["fields"]["rrdatas"] == ["<address of address/daf-minnie>"]


def test_bad_spec_and_unknown_cluster(tmp_path: Path) -> None:
    (tmp_path / "environments").mkdir()
    text = (REPO / "environments" / "minnie.yaml").read_text().replace("bigtable_instance: pychunkedgraph",
                                                                       "bigtable_instance: Bad_Name")
    (tmp_path / "environments" / "minnie.yaml").write_text(text)
    proc = subprocess.run([sys.executable, "-m", "compiler", "--root", str(tmp_path), "bootstrap", "minnie",
                           "--offline"], capture_output=True, text=True, check=False, cwd=REPO)
    assert proc.returncode == 2
    assert re.match(r"environments/minnie\.yaml:\d+:\d+: ", proc.stderr), proc.stderr
    assert "Traceback" not in proc.stderr and proc.stdout == ""
    proc = subprocess.run([sys.executable, "-m", "compiler", "bootstrap", "nosuch", "--offline"],
                          capture_output=True, text=True, check=False, cwd=REPO)
    assert proc.returncode == 2 and "unknown cluster 'nosuch'" in proc.stderr
