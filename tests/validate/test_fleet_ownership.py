"""Fleet rule `secret-owner` (issue 12 f): no two objects make one Secret; and `shared-data` (g) as findings."""

from __future__ import annotations

import dataclasses
import shutil
from pathlib import Path
from typing import Any

from compiler.spec.load import Loaded, load_all
from compiler.validate.fleet import Fleet
from tests.support.fleet import REPO, before_fleet, findings

Obj = dict[str, Any]


def _with_objects(fleet: Fleet, cluster: str, *extra: Obj) -> Fleet:
    """The fleet with objects added to one cluster's rendered overlay (as if its overlay held them)."""
    return dataclasses.replace(fleet, objects={**fleet.objects, cluster: [*fleet.objects[cluster], *extra]})


def _external_secret(name: str, target: str | None) -> Obj:
    spec: Obj = {"secretStoreRef": {"kind": "ClusterSecretStore", "name": "gcp-secret-manager"}, "data": []}
    if target is not None:
        spec["target"] = {"name": target}
    return {"apiVersion": "external-secrets.io/v1", "kind": "ExternalSecret", "metadata": {"name": name},
            "spec": spec}


# --------------------------------------------------------------------------- secret-owner


def test_before_fleet_reports_the_ingress_shim_certificate_on_every_cluster(tmp_path: Path) -> None:
    found = findings(before_fleet(tmp_path), "secret-owner")
    clusters = {f.cluster for f in found}
    assert clusters == {"global", "minnie", "fanc"}  # every cluster has an Ingress
    for cluster in clusters:
        mine = {(f.kind, f.name, f.path): f.message for f in found if f.cluster == cluster}
        assert set(mine) == {("Certificate", "cave-certificate", "spec.secretName"),
                             ("Ingress", "cave-ingress", "spec.tls[0].secretName")}
        for message in mine.values():
            assert f"Secret default/{cluster}-cert has 2 owners" in message
            assert "Certificate cave-certificate" in message
            assert "ingress-shim, from cert-manager.io/issuer on Ingress cave-ingress" in message
            assert "drop the cert-manager.io/issuer annotation from the Ingress" in message


def test_current_fleet_is_silent(now: Fleet) -> None:
    assert findings(now, "secret-owner") == []
    ingresses = [o for c in now.clusters for o in now.objects[c] if o.get("kind") == "Ingress"]
    assert ingresses and all("cert-manager.io/issuer" not in (o["metadata"].get("annotations") or {})
                             for o in ingresses)


def test_cluster_issuer_annotation_is_ingress_shim_too(now: Fleet) -> None:
    ingress = next(o for o in now.objects["minnie"] if o.get("kind") == "Ingress")
    shimmed = {**ingress, "metadata": {**ingress["metadata"], "name": "other-ingress",
                                       "annotations": {"cert-manager.io/cluster-issuer": "letsencrypt"}}}
    found = findings(_with_objects(now, "minnie", shimmed), "secret-owner")
    assert {(f.kind, f.name) for f in found} == {("Certificate", "cave-certificate"), ("Ingress", "other-ingress")}
    assert "ingress-shim, from cert-manager.io/cluster-issuer on Ingress other-ingress" in found[0].message


def test_two_external_secrets_with_one_target(now: Fleet) -> None:
    found = findings(_with_objects(now, "minnie", _external_secret("copy", "cave-secrets")), "secret-owner")
    assert {(f.kind, f.name, f.path) for f in found} == {("ExternalSecret", "cave-secrets", "spec.target.name"),
                                                          ("ExternalSecret", "copy", "spec.target.name")}
    assert "keep one of them" in found[0].message


def test_external_secret_without_target_owns_its_own_name(now: Fleet) -> None:
    found = findings(_with_objects(now, "global", _external_secret("oauth-client", None)), "secret-owner")
    assert {f.path for f in found} == {"metadata.name", "spec.target.name"}


def test_committed_secret_and_issuer_account_key(now: Fleet) -> None:
    issuer = next(o for o in now.objects["fanc"] if o.get("kind") == "Issuer")
    key = issuer["spec"]["acme"]["privateKeySecretRef"]["name"]
    secret = {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": key}}
    found = findings(_with_objects(now, "fanc", secret), "secret-owner")
    assert {(f.kind, f.path) for f in found} == {("Issuer", "spec.acme.privateKeySecretRef.name"),
                                                 ("Secret", "metadata.name")}


def test_other_namespace_and_other_names_pass(now: Fleet) -> None:
    elsewhere = _external_secret("cave-secrets", None)
    elsewhere["metadata"]["namespace"] = "tools"
    assert findings(_with_objects(now, "minnie", elsewhere, _external_secret("mine", "mine-secret")),
                    "secret-owner") == []


def test_addon_webhook_secret_counts_as_an_owner(now: Fleet) -> None:
    app = next(o for o in now.argocd_objects("Application")
               if o["metadata"].get("labels", {}).get("cave.io/cluster") == "minnie"
               and o["spec"]["source"].get("chart") == "external-secrets")
    ns, release = app["spec"]["destination"]["namespace"], app["spec"]["source"]["helm"]["releaseName"]
    clash = _external_secret("webhook", f"{release}-webhook")
    clash["metadata"]["namespace"] = ns
    found = findings(_with_objects(now, "minnie", clash), "secret-owner")
    assert len(found) == 1 and found[0].name == "webhook"
    assert "the external-secrets add-on" in found[0].message


# --------------------------------------------------------------------------- shared-data (as findings)


def test_shared_data_is_silent_on_the_current_fleet(now: Fleet) -> None:
    assert findings(now, "shared-data") == []


def test_shared_data_reports_a_copied_minnie_at_both_files(now: Fleet, tmp_path: Path) -> None:
    # The fleet loader skips the build-time check, so `validate` of such specs still loads and reports it.
    shutil.copytree(REPO / "environments", tmp_path / "environments")
    text = (tmp_path / "environments" / "minnie.yaml").read_text()
    copy = text.replace("name: minnie\n", "name: minnie2\n", 1).replace("static_ip: 203.0.113.20",
                                                                        "static_ip: 203.0.113.21")
    copy = copy.replace("name: daf-minnie ", "name: daf-minnie2 ", 1)
    assert copy.count("minnie2") == 2
    (tmp_path / "environments" / "minnie2.yaml").write_text(copy)
    loaded: dict[str, Loaded] = load_all(tmp_path, for_fleet_rules=True)
    found = findings(dataclasses.replace(now, loaded=loaded), "shared-data")
    sql = [f for f in found if "Cloud SQL instance cave-minnie-sql" in f.message]
    assert {f.cluster for f in sql} == {"minnie", "minnie2"}
    line = text.splitlines().index("  instance: cave-minnie-sql") + 1
    assert {f.where for f in sql} == {f"environments/minnie.yaml:{line}:13", f"environments/minnie2.yaml:{line}:13"}
    assert f"also written by cluster minnie2 (environments/minnie2.yaml:{line}:13)" in \
        next(f.message for f in sql if f.cluster == "minnie")
