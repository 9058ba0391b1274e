"""`python -m compiler bootstrap` end to end: the example specs against fake Google APIs and the Pub/Sub emulator.

Every production client (google-cloud-*, googleapiclient) runs unchanged against local servers speaking
Google's wire format; Pub/Sub runs against gcloud's real emulator (skipped with a reason when absent).
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from compiler.bootstrap import clients
from compiler.bootstrap.desired import desired
from compiler.main import main
from compiler.spec.load import load_environments
from tests.support import REPO
from tests.support.bootstrap import Cloud, run

SPECS = load_environments(REPO)


def plan_json(capsys: pytest.CaptureFixture[str], root: Path, cluster: str) -> tuple[int, dict[str, Any]]:
    code, out, _ = run(capsys, root, cluster, "--format", "json")
    return code, json.loads(out)


def created_keys(err: str) -> list[str]:
    """Resources apply says it creates, from its progress lines `[i/n] creating kind/name`."""
    return re.findall(r"^\[\d+/\d+\] creating (\S+)$", err, re.MULTILINE)


def adopt_outputs(root: Path, data: dict[str, Any]) -> None:
    """What the operator does with "set static_ip: X in the spec": write the values Google chose into the spec."""
    path = root / "environments" / f"{data['cluster']}.yaml"
    text = path.read_text()
    for row in data["resources"]:
        for m in re.finditer(r"set (\S+): (\S+) in the spec", row["action"] + " " + row["message"]):
            key = m[1].split(".")[-1]
            text, n = re.subn(rf"^(\s*){re.escape(key)}: \S+", rf"\g<1>{key}: {m[2]}", text, count=1, flags=re.M)
            assert n == 1, key
    path.write_text(text)


def operator_secrets(cloud: Cloud, cluster: str) -> None:
    """What the operator does by hand: store the values only they have."""
    spec = SPECS[cluster]
    for r in desired(spec):
        if r.kind == "secret" and r.params["value"] == "operator":
            cloud.fakes["secretmanager"].add_version(r.project, r.name, b'{"token": "operator-provided"}')


def test_fresh_project_creates_everything_in_order_then_is_a_no_op(
        cloud: Cloud, root: Path,
        capsys: pytest.CaptureFixture[str]) -> None:
    code, data = plan_json(capsys, root, "global")
    assert code == 1
    statuses = {r["key"]: r["status"] for r in data["resources"]}
    assert statuses.pop("project/cave-demo-global") == "exists"  # projects are made by people, with billing
    apis = {key: statuses.pop(key) for key in list(statuses) if key.startswith("api/")}
    assert apis and set(apis.values()) == {"exists"}  # enabled in these projects (test_serviceusage: from none)
    assert set(statuses.values()) == {"missing", "needs-operator"}
    assert not cloud.writes(), "a plan must not write"

    code, out, err = run(capsys, root, "global", "--apply")
    assert code == 1, out  # the OAuth client and CAVE token wait for the operator
    created = created_keys(err)
    resources = desired(SPECS["global"])
    keys = [r.key for r in resources]
    operator = {r.key for r in resources if r.kind == "secret" and r.params["value"] == "operator"}
    assert len(created) == len(set(created)), "a resource was created twice"
    # Node pools come with the GKE cluster and the postgres user with the Cloud SQL instance: found, not made.
    implied = {k for k in keys if k.startswith(("node-pool/", "api/"))} | {"sql-user/postgres",
                                                                          "project/cave-demo-global"}
    assert set(keys) - set(created) == implied
    position = {key: i for i, key in enumerate(created)}
    for r in resources:
        for dep in r.depends:
            if r.key in position and dep not in implied:
                assert position[dep] < position[r.key], f"{r.key} created before {dep}"
    assert "need the operator" in out
    for key in operator:
        assert f"OPERATOR  {key}" in out

    operator_secrets(cloud, "global")
    code, data = plan_json(capsys, root, "global")
    assert code == 1
    # Google chose the static IP and the Redis host: the plan says what the spec should hold instead.
    told = sorted(r["action"] for r in data["resources"] if r["status"] != "exists")
    assert len(told) == 2 and told[0].startswith("set redis.host: ") and told[1].startswith("set static_ip: ")
    adopt_outputs(root, data)
    writes_before = len(cloud.writes())
    code, data = plan_json(capsys, root, "global")
    assert code == 0, [r for r in data["resources"] if r["status"] != "exists"]
    assert data["ok"] is True and set(data["counts"]) == {"exists"}
    address = next(r for r in data["resources"] if r["kind"] == "address")
    record = next(r for r in data["resources"] if r["kind"] == "dns-record")
    assert record["observed"]["rrdatas"] == [address["observed"]["address"]]
    code, out, err = run(capsys, root, "global", "--apply")
    assert code == 0 and "created 0: nothing" in out and "creating" not in err
    assert len(cloud.writes()) == writes_before, "apply over a complete project writes nothing"
    assert "DELETE" not in cloud.methods() and "PATCH" not in cloud.methods()


def test_apply_stops_at_a_failure_and_the_rerun_completes(cloud: Cloud, root: Path,
        capsys: pytest.CaptureFixture[str]) -> None:
    cloud.fakes["sqladmin"].fail("POST", r"/instances$", 503, "The service is currently unavailable.")
    code, out, err = run(capsys, root, "global", "--apply")
    assert code == 1
    assert "stopped at sql-instance/cave-global-sql" in out
    assert "The service is currently unavailable." in out
    assert "run `bootstrap --apply` again" in out
    before = created_keys(err)
    assert before[-1] == "sql-instance/cave-global-sql"
    assert "network/daf-global-network" in before and "sql-database/authentication" not in before

    code, out, err = run(capsys, root, "global", "--apply")
    after = created_keys(err)
    assert not set(after) & set(before[:-1]), "resources created by the first run are not created again"
    assert "sql-instance/cave-global-sql" in after and "sql-database/authentication" in after
    operator_secrets(cloud, "global")
    code, data = plan_json(capsys, root, "global")
    adopt_outputs(root, data)
    code, _ = plan_json(capsys, root, "global")
    assert code == 0


def test_a_differing_resource_is_reported_and_left_alone(cloud: Cloud, root: Path,
        capsys: pytest.CaptureFixture[str]) -> None:
    spec = SPECS["global"]
    # Someone made the Redis instance bigger and on another tier by hand; bootstrap must not touch it.
    cloud.fakes["redis"].add_instance(spec.gcp.project, spec.gcp.region, "daf-redis-global", {
        "tier": "STANDARD_HA", "memorySizeGb": 5, "port": 6379,
        "authorizedNetwork": f"projects/{spec.gcp.project}/global/networks/daf-global-network",
        "state": "READY",
    })
    code, data = plan_json(capsys, root, "global")
    row = next(r for r in data["resources"] if r["key"] == "redis/daf-redis-global")
    assert row["status"] == "differs"
    diffs = {d["field"]: (d["want"], d["have"]) for d in row["differences"]}
    assert diffs["memory_size_gb"] == (1, 5) and diffs["tier"] == ("BASIC", "STANDARD_HA")
    assert diffs["host"][0] == spec.redis.host  # the fake gave it another address than the spec holds
    code, out, err = run(capsys, root, "global", "--apply")
    assert code == 1  # it differs, and stays so
    assert "creating redis/daf-redis-global" not in err
    assert not [c for api, c in cloud.writes() if api == "redis"], "the differing instance was written to"
    assert "DIFFERS   redis/daf-redis-global" in out and "memory_size_gb: spec 1, actual 5" in out
    assert "bootstrap never changes an existing resource" in out
    assert "DELETE" not in cloud.methods()


def test_data_resources_are_never_deleted_or_shrunk(cloud: Cloud, root: Path,
        capsys: pytest.CaptureFixture[str]) -> None:
    """A bigger database tier and an extra bucket stay as they are; nothing is ever deleted or updated."""
    spec = SPECS["global"]
    cloud.fakes["sqladmin"].add_instance(spec.gcp.project, spec.cloud_sql.instance, region=spec.gcp.region,
                                         database_version="POSTGRES_13", tier="db-custom-8-32768")
    cloud.fakes["storage"].add_bucket(spec.gcp.project, "cave-demo-nglstate", location="US")
    code, data = plan_json(capsys, root, "global")
    rows = {r["key"]: r for r in data["resources"]}
    assert rows["sql-instance/cave-global-sql"]["status"] == "differs"
    assert rows["bucket/cave-demo-nglstate"]["status"] == "differs"
    assert rows["sql-instance/cave-global-sql"]["data"] is True
    code, out, err = run(capsys, root, "global", "--apply")
    assert code == 1 and "DIFFERS   sql-instance/cave-global-sql" in out
    assert "creating sql-instance/" not in err and "creating bucket/" not in err
    sql_writes = [c.path for api, c in cloud.writes() if api == "sqladmin"]
    assert all(p.endswith(("/databases", "/users")) for p in sql_writes), sql_writes
    assert "DELETE" not in cloud.methods() and "PATCH" not in cloud.methods() and "PUT" not in {
        c.method for api, c in cloud.writes() if api != "storage"}


def test_local_cluster_with_pubsub_emulator(cloud: Cloud, root: Path,
        capsys: pytest.CaptureFixture[str]) -> None:
    code, data = plan_json(capsys, root, "minnie")
    rows = {r["key"]: r for r in data["resources"]}
    grant = rows["bucket-iam-binding/cave-demo-minnie-uploads:roles/storage.objectViewer:cloud-sql-instance"]
    assert (grant["status"], grant["action"]) == ("missing", "create after sql-instance/cave-minnie-sql")
    code, out, err = run(capsys, root, "minnie", "--apply")
    assert code == 1 and "OPERATOR  secret/minnie-slack-api-token" in out
    created = created_keys(err)
    subs = [k for k in created if k.startswith("pubsub-subscription/")]
    assert "pubsub-subscription/minnie_SKELETON_CACHE_WORKER_LOW_PRIORITY" in subs
    assert "bigtable-instance/pychunkedgraph" in created
    # cave-demo.org is global's zone (dns.zone_owners): minnie never creates it, its A record waits for it
    assert "OPERATOR  dns-zone/cave-demo  → create after global is bootstrapped" in out
    assert "OPERATOR  dns-record/minnie.cave-demo.org.  → waits for dns-zone/cave-demo" in out
    assert "creating dns-zone/" not in err and not cloud.fakes["dns"].zones
    operator_secrets(cloud, "minnie")
    code, data = plan_json(capsys, root, "minnie")
    adopt_outputs(root, data)
    zone = next(r for r in data["resources"] if r["key"] == "dns-zone/cave-demo")
    assert (zone["status"], zone["owner"], zone["project"]) == ("needs-operator", "global", "cave-demo-global")
    run(capsys, root, "global", "--apply")  # the owner creates the zone; minnie's next run adds its record
    code, out, err = run(capsys, root, "minnie", "--apply")
    assert "creating dns-record/minnie.cave-demo.org." in err and "creating dns-zone/" not in err
    assert list(cloud.fakes["dns"].zones) == [("cave-demo-global", "cave-demo"), ("cave-demo-global", "legacy-daf")]
    assert cloud.fakes["dns"].record("cave-demo-global", "cave-demo", "minnie.cave-demo.org.", "A") is not None
    code, data = plan_json(capsys, root, "minnie")
    assert code == 0, [(r["key"], r["status"], r["message"]) for r in data["resources"] if r["status"] != "exists"]
    sub = next(r for r in data["resources"] if r["key"] == "pubsub-subscription/minnie_PCG_HIGH_PRIORITY_REMESH")
    assert sub["observed"]["filter"] == 'attributes.remesh_priority="true"'
    # The static IP and Redis hosts are chosen by Google: the plan says what the spec should hold.
    address = next(r for r in data["resources"] if r["kind"] == "address")
    assert address["observed"]["address"]
    # P52: dead-letter forwarding runs as the Pub/Sub service agent, whose address holds the project number.
    rm = cloud.fakes["resourcemanager"]
    agent = f"serviceAccount:service-{rm.number('cave-demo-minnie')}@gcp-sa-pubsub.iam.gserviceaccount.com"
    granted = {b["role"] for b in rm.policies["cave-demo-minnie"]["bindings"] if agent in b["members"]}
    assert granted == {"roles/pubsub.publisher", "roles/pubsub.subscriber"}
    # cert-manager solves DNS-01 in global's zone: dns.admin there, none in minnie's own project
    dns_sa = "serviceAccount:daf-clouddns-minnie@cave-demo-minnie.iam.gserviceaccount.com"
    assert {b["role"] for b in rm.policies["cave-demo-global"]["bindings"] if dns_sa in b["members"]} == \
        {"roles/dns.admin"}
    assert not [b for b in rm.policies["cave-demo-minnie"]["bindings"] if dns_sa in b["members"]]
    # The upload bucket: Cloud SQL's own account (read back from the instance) may import from it.
    sql_account = "serviceAccount:p123-cave-minnie-sql@gcp-sa-cloud-sql.iam.gserviceaccount.com"
    assert sql_account in cloud.fakes["storage"].members("cave-demo-minnie-uploads", "roles/storage.objectViewer")


def test_no_secret_value_in_any_output(cloud: Cloud, root: Path,
        capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(capsys, root, "global", "--apply")
    assert code == 1 and "secret/global-postgres-password" in out  # named, never shown
    operator_secrets(cloud, "global")
    _, plan_out, plan_err = run(capsys, root, "global", "--format", "json")
    sm = cloud.fakes["secretmanager"]
    values = [v.decode() for key in sm.secrets if (v := sm.value(*key)) is not None]
    assert len(values) >= 4, "no generated secret values?"
    for value in values:
        for text in (out, err, plan_out, plan_err):
            assert value not in text


def test_missing_credentials_is_one_clear_line(monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.delenv("GOOGLE_APPLICATION_CREDENTIALS", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("CLOUDSDK_CONFIG", str(tmp_path / "gcloud"))
    monkeypatch.setenv("NO_GCE_CHECK", "true")
    clients.credentials.cache_clear()
    try:
        code, out, err = run(capsys, REPO, "minnie")
    finally:
        clients.credentials.cache_clear()
    assert code == 2 and out == ""
    assert err.count("\n") == 1 and err.startswith("no Google credentials found")
    assert "gcloud auth application-default login" in err and "Traceback" not in err


def test_runbook_online_reads_name_servers_and_secret_states(cloud: Cloud, root: Path,
        capsys: pytest.CaptureFixture[str]) -> None:
    run(capsys, root, "global", "--apply")
    operator_secrets(cloud, "global")
    code = main(["--root", str(root), "runbook", "global", "--online", "--format", "json"])
    out, err = capsys.readouterr()
    assert code == 0, err
    assert "reading the bootstrap plan of minnie" in err
    book = {s["id"]: s for s in json.loads(out)["steps"]}
    zones = book["dns-registrar"]["values"]["zones"]
    assert set(zones) == {"cave-demo", "legacy-daf"}
    assert all(z["name_servers"] and all(ns.endswith(".") for ns in z["name_servers"]) for z in zones.values())
    assert book["dns-registrar"]["status"] == "check"
    secrets = {t["secret"]: t["status"] for t in book["service-token"]["values"]["secrets"]}
    assert secrets["global-cave-token"] == "done" and secrets["minnie-cave-token"] == "todo"
    assert book["service-token"]["status"] == "todo"
    apis = sum(1 for r in desired(SPECS["global"]) if r.kind == "api")
    assert book["cloud-resources"]["values"]["counts"] == {"differs": 2, "exists": 37 + apis}  # static IP, Redis
