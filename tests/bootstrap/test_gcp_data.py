"""Bootstrap providers of the data group (Cloud SQL, Cloud Storage, Cloud DNS, Secret Manager) against fakes
that speak the real REST wire formats, through the real Google client libraries."""

from __future__ import annotations

import base64
import logging

import google_crc32c
import pytest

from compiler.bootstrap.gcp_dns import DnsProvider
from compiler.bootstrap.gcp_secrets import SecretsProvider
from compiler.bootstrap.gcp_sql import SqlProvider
from compiler.bootstrap.gcp_storage import StorageProvider
from compiler.bootstrap.model import NeedsOperator, ProviderError, Ref, Resource
from tests.support.fake_gcp.cloud import PASSWORD, context, fake_fixture
from tests.support.fake_gcp.dns import DnsFake
from tests.support.fake_gcp.secretmanager import SecretManagerFake
from tests.support.fake_gcp.sqladmin import SqlAdminFake
from tests.support.fake_gcp.storage import StorageFake

PROJECT = "cave-minnie"

sql = fake_fixture(SqlAdminFake, "sqladmin")
gcs = fake_fixture(StorageFake, "storage")
dns = fake_fixture(DnsFake, "dns")
sm = fake_fixture(SecretManagerFake, "secretmanager")


def assert_one_line_error(exc: pytest.ExceptionInfo[ProviderError], key: str, google_message: str) -> None:
    text = str(exc.value)
    assert "\n" not in text
    assert text.startswith(f"{key}: ")
    assert google_message in text


# ---------------------------------------------------------------------------------------------- Cloud SQL

INSTANCE = Resource("sql-instance", "daf-minnie-sql", PROJECT,
                    fields={"region": "us-east1", "database_version": "POSTGRES_13", "tier": "db-custom-4-16384"},
                    params={"root_password_secret": "minnie-postgres-password"})
DATABASE = Resource("sql-database", "annotation", PROJECT, fields={"instance": "daf-minnie-sql"})
USER = Resource("sql-user", "annotation-writer", PROJECT, fields={"instance": "daf-minnie-sql"},
                params={"password_secret": "minnie-postgres-password"})
SQL_ACCOUNT = "serviceAccount:p123-daf-minnie-sql@gcp-sa-cloud-sql.iam.gserviceaccount.com"  # the fake's


def test_sql_instance_observe_missing_makes_no_write(sql: SqlAdminFake) -> None:
    assert SqlProvider().observe(INSTANCE, context()) is None
    assert sql.writes() == []


def test_sql_instance_observe_missing_answered_with_403(sql: SqlAdminFake) -> None:
    """Cloud SQL answers 403 notAuthorized for some missing instances; instances.list settles it."""
    sql.missing_instance_status = 403
    assert SqlProvider().observe(INSTANCE, context()) is None
    assert [c.path for c in sql.calls] == [f"/v1/projects/{PROJECT}/instances/daf-minnie-sql",
                                           f"/v1/projects/{PROJECT}/instances"]


def test_sql_instance_create_sends_settings_and_waits(sql: SqlAdminFake) -> None:
    progress: list[str] = []
    provider = SqlProvider()
    provider.create(INSTANCE, context(progress))
    (insert,) = sql.writes()
    assert insert.path == f"/v1/projects/{PROJECT}/instances"
    body = insert.body
    assert (body["name"], body["region"], body["databaseVersion"]) == ("daf-minnie-sql", "us-east1", "POSTGRES_13")
    assert body["rootPassword"] == PASSWORD
    settings = body["settings"]
    assert settings["tier"] == "db-custom-4-16384"
    assert settings["edition"] == "ENTERPRISE"
    assert settings["backupConfiguration"]["enabled"] is True
    assert settings["ipConfiguration"] == {"ipv4Enabled": True, "authorizedNetworks": [], "sslMode": "ENCRYPTED_ONLY"}
    assert settings["deletionProtectionEnabled"] is True
    assert settings["userLabels"] == {"managed-by": "cave-gitops"}
    assert any(c.path.startswith(f"/v1/projects/{PROJECT}/operations/") for c in sql.calls)  # polled
    assert progress and all("daf-minnie-sql" in line for line in progress)
    assert sql.instances[(PROJECT, "daf-minnie-sql")]["state"] == "RUNNABLE"
    assert sql.passwords[(PROJECT, "daf-minnie-sql", "postgres")] == PASSWORD
    assert provider.observe(INSTANCE, context()) == {**INSTANCE.fields, "service_account_member": SQL_ACCOUNT}


def test_sql_instance_create_when_it_exists_is_success(sql: SqlAdminFake) -> None:
    sql.add_instance(PROJECT, "daf-minnie-sql")
    SqlProvider().create(INSTANCE, context())
    assert len(sql.instances) == 1
    assert [c.method for c in sql.writes()] == ["POST"]


def test_sql_instance_name_reserved_after_deletion(sql: SqlAdminFake) -> None:
    """A 409 for an instance that is not there: the name of a deleted instance stays reserved."""
    sql.fail("POST", r"/instances$", 409, "The Cloud SQL instance already exists.")
    with pytest.raises(ProviderError) as exc:
        SqlProvider().create(INSTANCE, context())
    assert "\n" not in str(exc.value) and "recently deleted" in str(exc.value)


def test_sql_instance_differs(sql: SqlAdminFake) -> None:
    sql.add_instance(PROJECT, "daf-minnie-sql", region="us-central1", database_version="POSTGRES_9_6",
                     tier="db-custom-1-4096")
    observed = SqlProvider().observe(INSTANCE, context())
    assert observed == {"region": "us-central1", "database_version": "POSTGRES_9_6", "tier": "db-custom-1-4096",
                        "service_account_member": SQL_ACCOUNT}
    assert sql.writes() == []


def test_sql_instance_api_error(sql: SqlAdminFake) -> None:
    sql.fail("GET", r"/instances/daf-minnie-sql$", 500, "Internal error encountered.")
    with pytest.raises(ProviderError) as exc:
        SqlProvider().observe(INSTANCE, context())
    assert_one_line_error(exc, "sql-instance/daf-minnie-sql", "Internal error encountered.")


def test_sql_instance_operation_error(sql: SqlAdminFake) -> None:
    sql.fail_next_operation("INVALID_TIER", "Invalid Tier (db-custom-4-16384) for (ENTERPRISE_PLUS) Edition.")
    with pytest.raises(ProviderError) as exc:
        SqlProvider().create(INSTANCE, context())
    assert_one_line_error(exc, "sql-instance/daf-minnie-sql", "INVALID_TIER: Invalid Tier (db-custom-4-16384)")


def test_sql_database_lifecycle(sql: SqlAdminFake) -> None:
    provider = SqlProvider()
    assert provider.observe(DATABASE, context()) is None  # no instance yet
    sql.add_instance(PROJECT, "daf-minnie-sql")
    assert provider.observe(DATABASE, context()) is None
    assert sql.writes() == []
    provider.create(DATABASE, context())
    (insert,) = sql.writes()
    assert insert.path == f"/v1/projects/{PROJECT}/instances/daf-minnie-sql/databases"
    assert insert.body == {"name": "annotation", "instance": "daf-minnie-sql", "project": PROJECT}
    assert provider.observe(DATABASE, context()) == {"instance": "daf-minnie-sql"}
    provider.create(DATABASE, context())  # Cloud SQL answers 400 "already exists": success, nothing added
    assert sorted(sql.databases[(PROJECT, "daf-minnie-sql")]) == ["annotation", "postgres"]


def test_sql_database_instance_from_ref(sql: SqlAdminFake) -> None:
    sql.add_instance(PROJECT, "daf-minnie-sql")
    ref = Ref("sql-instance/daf-minnie-sql", "name")
    database = Resource("sql-database", "materialization", PROJECT, fields={"instance": ref})
    provider = SqlProvider()
    provider.create(database, context(refs={ref: "daf-minnie-sql"}))
    assert "materialization" in sql.databases[(PROJECT, "daf-minnie-sql")]
    assert provider.observe(database, context(refs={ref: "daf-minnie-sql"})) == {"instance": "daf-minnie-sql"}


def test_sql_database_operation_error(sql: SqlAdminFake) -> None:
    sql.add_instance(PROJECT, "daf-minnie-sql")
    sql.fail_next_operation("INTERNAL_ERROR", "An internal error occurred.")
    with pytest.raises(ProviderError) as exc:
        SqlProvider().create(DATABASE, context())
    assert_one_line_error(exc, "sql-database/annotation", "An internal error occurred.")


def test_sql_user_lifecycle(sql: SqlAdminFake) -> None:
    provider = SqlProvider()
    sql.add_instance(PROJECT, "daf-minnie-sql")
    assert provider.observe(USER, context()) is None
    assert sql.writes() == []
    provider.create(USER, context())
    (insert,) = sql.writes()
    assert insert.path == f"/v1/projects/{PROJECT}/instances/daf-minnie-sql/users"
    assert insert.body == {"name": "annotation-writer", "password": PASSWORD, "instance": "daf-minnie-sql",
                           "project": PROJECT}
    assert sql.passwords[(PROJECT, "daf-minnie-sql", "annotation-writer")] == PASSWORD
    assert provider.observe(USER, context()) == {"instance": "daf-minnie-sql"}
    provider.create(USER, context())  # the operation fails with "role already exists": success
    assert sorted(sql.users[(PROJECT, "daf-minnie-sql")]) == ["annotation-writer", "postgres"]


def test_sql_user_observe_finds_builtin_postgres(sql: SqlAdminFake) -> None:
    sql.add_instance(PROJECT, "daf-minnie-sql")
    user = Resource("sql-user", "postgres", PROJECT, fields={"instance": "daf-minnie-sql"},
                    params={"password_secret": "minnie-postgres-password"})
    assert SqlProvider().observe(user, context()) == {"instance": "daf-minnie-sql"}


def test_sql_user_api_error(sql: SqlAdminFake) -> None:
    sql.add_instance(PROJECT, "daf-minnie-sql")
    sql.fail("GET", r"/users$", 500, "Internal error encountered.")
    with pytest.raises(ProviderError) as exc:
        SqlProvider().observe(USER, context())
    assert_one_line_error(exc, "sql-user/annotation-writer", "Internal error encountered.")


def test_sql_password_never_printed_or_logged(sql: SqlAdminFake, capfd: pytest.CaptureFixture[str],
                                              caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    progress: list[str] = []
    provider = SqlProvider()
    provider.create(INSTANCE, context(progress))
    provider.create(USER, context(progress))
    sql.fail("POST", r"/users$", 400, "Invalid request: password too weak.")
    other = Resource("sql-user", "reader", PROJECT, fields={"instance": "daf-minnie-sql"},
                     params={"password_secret": "minnie-reader-password"})
    with pytest.raises(ProviderError) as exc:
        provider.create(other, context(progress))
    out, err = capfd.readouterr()
    for text in (out, err, caplog.text, str(exc.value), *progress):
        assert PASSWORD not in text


# ---------------------------------------------------------------------------------------------- Cloud Storage

BUCKET = Resource("bucket", "minnie-materialization-upload", PROJECT,
                  fields={"location": "US-EAST1", "uniform_access": True})
MEMBER = "serviceAccount:daf-pychunkedgraph-minnie@cave-minnie.iam.gserviceaccount.com"
BINDING = Resource("bucket-iam-binding", f"minnie-materialization-upload:roles/storage.objectAdmin:{MEMBER}",
                   PROJECT, fields={"bucket": "minnie-materialization-upload", "role": "roles/storage.objectAdmin",
                                    "member": MEMBER})


def test_bucket_lifecycle(gcs: StorageFake) -> None:
    provider = StorageProvider()
    assert provider.observe(BUCKET, context()) is None
    assert gcs.writes() == []
    provider.create(BUCKET, context())
    (insert,) = gcs.writes()
    assert insert.path == "/storage/v1/b"
    assert insert.body["name"] == "minnie-materialization-upload"
    assert insert.body["location"] == "US-EAST1"
    assert insert.body["iamConfiguration"]["uniformBucketLevelAccess"] == {"enabled": True}
    assert insert.body["labels"] == {"managed-by": "cave-gitops"}
    assert gcs.members("minnie-materialization-upload", "roles/storage.legacyBucketOwner") == [
        f"projectEditor:{PROJECT}", f"projectOwner:{PROJECT}"]  # created in the resource's project
    assert provider.observe(BUCKET, context()) == dict(BUCKET.fields)
    provider.create(BUCKET, context())  # 409 "you already own it": success
    assert list(gcs.buckets) == ["minnie-materialization-upload"]


def test_bucket_name_owned_by_another_project(gcs: StorageFake) -> None:
    gcs.foreign.add("minnie-materialization-upload")
    provider = StorageProvider()
    with pytest.raises(ProviderError) as exc:
        provider.observe(BUCKET, context())
    assert_one_line_error(exc, "bucket/minnie-materialization-upload", "does not have storage.buckets.get access")
    with pytest.raises(ProviderError) as exc:
        provider.create(BUCKET, context())
    assert_one_line_error(exc, "bucket/minnie-materialization-upload", "The requested bucket name is not available")
    assert "another project" in str(exc.value)


def test_bucket_differs(gcs: StorageFake) -> None:
    gcs.add_bucket(PROJECT, "minnie-materialization-upload", location="us", uniform=False)
    assert StorageProvider().observe(BUCKET, context()) == {"location": "US", "uniform_access": False}
    assert gcs.writes() == []


def test_bucket_api_error(gcs: StorageFake) -> None:
    gcs.fail("POST", r"/storage/v1/b$", 403, "The billing account for the owning project is disabled.")
    with pytest.raises(ProviderError) as exc:
        StorageProvider().create(BUCKET, context())
    assert_one_line_error(exc, "bucket/minnie-materialization-upload", "The billing account for the owning project")
    assert "HTTP 403" in str(exc.value)


def test_bucket_iam_binding_lifecycle(gcs: StorageFake) -> None:
    provider = StorageProvider()
    assert provider.observe(BINDING, context()) is None  # no bucket yet
    gcs.add_bucket(PROJECT, "minnie-materialization-upload")
    assert provider.observe(BINDING, context()) is None
    assert gcs.writes() == []
    policy_path = "/storage/v1/b/minnie-materialization-upload/iam"
    provider.create(BINDING, context())
    (put,) = gcs.writes()
    assert (put.method, put.path) == ("PUT", policy_path)
    assert put.body["version"] == 3 and put.body["etag"]
    assert {b["role"]: sorted(b["members"]) for b in put.body["bindings"]} == {
        "roles/storage.legacyBucketOwner": [f"projectEditor:{PROJECT}", f"projectOwner:{PROJECT}"],
        "roles/storage.legacyBucketReader": [f"projectViewer:{PROJECT}"],
        "roles/storage.objectAdmin": [MEMBER],
    }
    gets = [c for c in gcs.calls if c.path == policy_path and c.method == "GET"]
    assert gets  # read-modify-write
    assert provider.observe(BINDING, context()) == dict(BINDING.fields)
    provider.create(BINDING, context())
    assert len(gcs.writes()) == 1  # present: nothing written


def test_bucket_iam_binding_keeps_other_members_and_conditions(gcs: StorageFake) -> None:
    gcs.add_bucket(PROJECT, "minnie-materialization-upload")
    condition = {"title": "temp", "expression": 'request.time < timestamp("2030-01-01T00:00:00Z")'}
    policy = gcs.policies["minnie-materialization-upload"]
    policy["bindings"] += [{"role": "roles/storage.objectAdmin", "members": ["user:alice@example.org"]},
                           {"role": "roles/storage.objectAdmin", "members": [MEMBER], "condition": condition}]
    provider = StorageProvider()
    assert provider.observe(BINDING, context()) is None  # a conditional grant is not the binding
    provider.create(BINDING, context())
    assert gcs.members("minnie-materialization-upload", "roles/storage.objectAdmin") == [MEMBER,
                                                                                          "user:alice@example.org"]
    kept = [b for b in gcs.policies["minnie-materialization-upload"]["bindings"] if "condition" in b]
    assert kept == [{"role": "roles/storage.objectAdmin", "members": [MEMBER], "condition": condition}]
    assert provider.observe(BINDING, context()) == dict(BINDING.fields)


def test_bucket_iam_binding_retries_on_concurrent_change(gcs: StorageFake) -> None:
    gcs.add_bucket(PROJECT, "minnie-materialization-upload")
    gcs.fail("PUT", r"/iam$", 412, "Precondition Failed")
    progress: list[str] = []
    StorageProvider().create(BINDING, context(progress))
    assert gcs.members("minnie-materialization-upload", "roles/storage.objectAdmin") == [MEMBER]
    assert [c.method for c in gcs.writes()] == ["PUT", "PUT"]
    assert progress


def test_bucket_iam_binding_api_error(gcs: StorageFake) -> None:
    gcs.add_bucket(PROJECT, "minnie-materialization-upload")
    gcs.fail("GET", r"/iam$", 403, "Permission 'storage.buckets.getIamPolicy' denied.")
    with pytest.raises(ProviderError) as exc:
        StorageProvider().observe(BINDING, context())
    assert_one_line_error(exc, BINDING.key, "Permission 'storage.buckets.getIamPolicy' denied.")


# ---------------------------------------------------------------------------------------------- Cloud DNS

ZONE = Resource("dns-zone", "cave-zone", PROJECT, fields={"dns_name": "cave.example.org."},
                outputs={"name_servers": None})
ADDRESS = Ref("address/daf-minnie", "address")
RECORD = Resource("dns-record", "minnie.cave.example.org.", PROJECT,
                  fields={"zone": "cave-zone", "type": "A", "ttl": 300, "rrdatas": ["203.0.113.9"]})


def test_dns_zone_lifecycle(dns: DnsFake) -> None:
    provider = DnsProvider()
    assert provider.observe(ZONE, context()) is None
    assert dns.writes() == []
    provider.create(ZONE, context())
    (insert,) = dns.writes()
    assert insert.path == f"/dns/v1/projects/{PROJECT}/managedZones"
    assert insert.body["name"] == "cave-zone" and insert.body["dnsName"] == "cave.example.org."
    assert insert.body["visibility"] == "public"
    assert insert.body["dnssecConfig"] == {"state": "off"}
    assert insert.body["description"]
    observed = provider.observe(ZONE, context())
    assert observed == {"dns_name": "cave.example.org.",
                        "name_servers": [f"ns-cloud-a{i}.googledomains.com." for i in range(1, 5)]}
    provider.create(ZONE, context())  # 409: success
    assert list(dns.zones) == [(PROJECT, "cave-zone")]


def test_dns_zone_differs(dns: DnsFake) -> None:
    dns.add_zone(PROJECT, "cave-zone", "other.example.org.")
    observed = DnsProvider().observe(ZONE, context())
    assert observed is not None and observed["dns_name"] == "other.example.org."
    assert dns.writes() == []


def test_dns_zone_api_error(dns: DnsFake) -> None:
    dns.fail("POST", r"/managedZones$", 403, "Forbidden: Cloud DNS API has not been used in project cave-minnie.")
    with pytest.raises(ProviderError) as exc:
        DnsProvider().create(ZONE, context())
    assert_one_line_error(exc, "dns-zone/cave-zone", "Cloud DNS API has not been used")


def test_dns_record_lifecycle(dns: DnsFake) -> None:
    provider = DnsProvider()
    assert provider.observe(RECORD, context()) is None  # no zone
    dns.add_zone(PROJECT, "cave-zone", "cave.example.org.")
    for i in range(5):  # the record lands on a later page
        dns.add_record(PROJECT, "cave-zone", f"a{i}.cave.example.org.", "A", 300, [f"198.51.100.{i}"])
    assert provider.observe(RECORD, context()) is None
    assert dns.writes() == []
    progress: list[str] = []
    provider.create(RECORD, context(progress))
    (change,) = dns.writes()
    assert change.path == f"/dns/v1/projects/{PROJECT}/managedZones/cave-zone/changes"
    assert change.body == {"additions": [{"name": "minnie.cave.example.org.", "type": "A", "ttl": "300",
                                          "rrdatas": ["203.0.113.9"]}], "deletions": []}
    assert any("/changes/" in c.path for c in dns.calls) and progress  # waited for the change
    assert provider.observe(RECORD, context()) == dict(RECORD.fields)
    provider.create(RECORD, context())  # 409: success, no second record
    assert dns.record(PROJECT, "cave-zone", "minnie.cave.example.org.", "A") is not None
    assert sum(r["name"] == "minnie.cave.example.org." for r in dns.records[(PROJECT, "cave-zone")]) == 1


def test_dns_record_value_from_ref(dns: DnsFake) -> None:
    dns.add_zone(PROJECT, "cave-zone", "cave.example.org.")
    record = Resource("dns-record", "minnie.cave.example.org.", PROJECT,
                      fields={"zone": "cave-zone", "type": "A", "ttl": 300, "rrdatas": [ADDRESS]})
    DnsProvider().create(record, context(refs={ADDRESS: "203.0.113.9"}))
    assert dns.record(PROJECT, "cave-zone", "minnie.cave.example.org.", "A") == {
        "kind": "dns#resourceRecordSet", "name": "minnie.cave.example.org.", "type": "A", "ttl": 300,
        "rrdatas": ["203.0.113.9"]}


def test_dns_record_unresolved_ref_is_an_error(dns: DnsFake) -> None:
    dns.add_zone(PROJECT, "cave-zone", "cave.example.org.")
    record = Resource("dns-record", "minnie.cave.example.org.", PROJECT,
                      fields={"zone": "cave-zone", "type": "A", "ttl": 300, "rrdatas": [ADDRESS]})
    with pytest.raises(ProviderError):
        DnsProvider().create(record, context(refs={ADDRESS: None}))
    assert dns.writes() == []


def test_dns_record_differs_and_is_never_replaced(dns: DnsFake) -> None:
    dns.add_zone(PROJECT, "cave-zone", "cave.example.org.")
    dns.add_record(PROJECT, "cave-zone", "minnie.cave.example.org.", "A", 600, ["198.51.100.7"])
    provider = DnsProvider()
    assert provider.observe(RECORD, context()) == {"zone": "cave-zone", "type": "A", "ttl": 600,
                                                   "rrdatas": ["198.51.100.7"]}
    assert dns.writes() == []
    provider.create(RECORD, context())
    record = dns.record(PROJECT, "cave-zone", "minnie.cave.example.org.", "A")
    assert record is not None and record["rrdatas"] == ["198.51.100.7"]


def test_dns_record_other_type_does_not_count(dns: DnsFake) -> None:
    dns.add_zone(PROJECT, "cave-zone", "cave.example.org.")
    dns.add_record(PROJECT, "cave-zone", "minnie.cave.example.org.", "TXT", 300, ['"hello"'])
    assert DnsProvider().observe(RECORD, context()) is None


def test_dns_record_api_error(dns: DnsFake) -> None:
    dns.add_zone(PROJECT, "cave-zone", "cave.example.org.")
    dns.fail("GET", r"/rrsets$", 403, "Forbidden")
    with pytest.raises(ProviderError) as exc:
        DnsProvider().observe(RECORD, context())
    assert_one_line_error(exc, "dns-record/minnie.cave.example.org.", "reading failed: Forbidden (HTTP 403)")


# ---------------------------------------------------------------------------------------------- Secret Manager

GENERATED = Resource("secret", "minnie-postgres-password", PROJECT, fields={"replication": "automatic"},
                     params={"value": "generate"})
OPERATOR = Resource("secret", "global-oauth-client", PROJECT, fields={"replication": "automatic"},
                    params={"value": "operator", "hint": "the OAuth web client JSON downloaded from the console"})


def test_secret_generate_lifecycle(sm: SecretManagerFake) -> None:
    provider = SecretsProvider()
    assert provider.observe(GENERATED, context()) is None
    assert sm.writes() == []
    provider.create(GENERATED, context())
    create, add = sm.writes()
    assert create.path == f"/v1/projects/{PROJECT}/secrets"
    assert create.body == {"replication": {"automatic": {}}, "labels": {"managed-by": "cave-gitops"}}
    assert add.path == f"/v1/projects/{PROJECT}/secrets/minnie-postgres-password:addVersion"
    data = base64.b64decode(add.body["payload"]["data"])
    assert int(add.body["payload"]["dataCrc32c"]) == google_crc32c.value(data)
    assert len(data) == 64 and sm.value(PROJECT, "minnie-postgres-password") == data
    assert provider.observe(GENERATED, context()) == {"replication": "automatic", "versions": 1}
    assert provider.access(PROJECT, "minnie-postgres-password") == data.decode()
    provider.create(GENERATED, context())  # has a value: nothing added
    assert len(sm.versions[(PROJECT, "minnie-postgres-password")]) == 1
    assert [c.path for c in sm.writes()].count(f"/v1/projects/{PROJECT}/secrets") == 2  # second one 409


def test_secret_existing_empty_secret_gets_a_value(sm: SecretManagerFake) -> None:
    sm.add_secret(PROJECT, "minnie-postgres-password")
    sm.add_version(PROJECT, "minnie-postgres-password", b"old", state="DISABLED")
    provider = SecretsProvider()
    assert provider.observe(GENERATED, context()) == {"replication": "automatic", "versions": 0}
    provider.create(GENERATED, context())
    assert len(sm.secrets) == 1
    value = sm.value(PROJECT, "minnie-postgres-password")
    assert value and value != b"old"
    assert provider.observe(GENERATED, context()) == {"replication": "automatic", "versions": 1}


def test_secret_operator_value(sm: SecretManagerFake) -> None:
    provider = SecretsProvider()
    with pytest.raises(NeedsOperator) as exc:
        provider.create(OPERATOR, context())
    message = str(exc.value)
    assert "the OAuth web client JSON" in message
    assert f"gcloud secrets versions add global-oauth-client --project {PROJECT} --data-file=FILE" in message
    assert (PROJECT, "global-oauth-client") in sm.secrets  # created empty, for the operator to fill
    assert provider.observe(OPERATOR, context()) == {"replication": "automatic", "versions": 0}
    with pytest.raises(ProviderError) as access:
        provider.access(PROJECT, "global-oauth-client")
    assert "gcloud secrets versions add global-oauth-client" in str(access.value)
    sm.add_version(PROJECT, "global-oauth-client", b'{"web": {}}')
    provider.create(OPERATOR, context())  # filled by the operator: done
    assert provider.access(PROJECT, "global-oauth-client") == '{"web": {}}'


def test_secret_differs(sm: SecretManagerFake) -> None:
    sm.add_secret(PROJECT, "minnie-postgres-password", replication="user-managed")
    sm.add_version(PROJECT, "minnie-postgres-password", b"one")
    sm.add_version(PROJECT, "minnie-postgres-password", b"two")
    assert SecretsProvider().observe(GENERATED, context()) == {"replication": "user-managed", "versions": 2}
    assert sm.writes() == []


def test_secret_access_errors(sm: SecretManagerFake) -> None:
    provider = SecretsProvider()
    with pytest.raises(ProviderError) as exc:
        provider.access(PROJECT, "missing")
    assert "does not exist or has no value" in str(exc.value) and "gcloud secrets versions add missing" in str(
        exc.value)
    sm.add_secret(PROJECT, "disabled")
    sm.add_version(PROJECT, "disabled", b"x", state="DISABLED")
    with pytest.raises(ProviderError) as exc:
        provider.access(PROJECT, "disabled")
    assert_one_line_error(exc, "secret/disabled", "is in DISABLED state")
    sm.add_secret(PROJECT, "empty")
    sm.add_version(PROJECT, "empty", b"")
    with pytest.raises(ProviderError) as exc:
        provider.access(PROJECT, "empty")
    assert "is empty" in str(exc.value)


def test_secret_api_error(sm: SecretManagerFake) -> None:
    sm.fail("GET", r"/secrets/minnie-postgres-password$", 403,
            "Permission 'secretmanager.secrets.get' denied for resource")
    with pytest.raises(ProviderError) as exc:
        SecretsProvider().observe(GENERATED, context())
    assert_one_line_error(exc, "secret/minnie-postgres-password", "Permission 'secretmanager.secrets.get' denied")
    assert "HTTP 403" in str(exc.value)


def test_secret_bad_value_param(sm: SecretManagerFake) -> None:
    bad = Resource("secret", "x", PROJECT, fields={"replication": "automatic"}, params={"value": "hunter2"})
    with pytest.raises(ProviderError) as exc:
        SecretsProvider().create(bad, context())
    assert "'generate' or 'operator'" in str(exc.value)
    assert sm.writes() == []


def test_secret_generated_value_never_printed_or_logged(sm: SecretManagerFake, capfd: pytest.CaptureFixture[str],
                                                        caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    progress: list[str] = []
    provider = SecretsProvider()
    provider.create(GENERATED, context(progress))
    value = provider.access(PROJECT, "minnie-postgres-password")
    sm.fail("GET", r"/versions$", 500, "Internal error")
    with pytest.raises(ProviderError) as exc:
        provider.observe(GENERATED, context(progress))
    out, err = capfd.readouterr()
    for text in (out, err, caplog.text, str(exc.value), *progress):
        assert value not in text


def test_secret_operator_hint_that_names_the_command_is_not_repeated(sm: SecretManagerFake) -> None:
    command = f"gcloud secrets versions add global-oauth-client --project {PROJECT} --data-file=FILE"
    secret = Resource("secret", "global-oauth-client", PROJECT, fields={"replication": "automatic"},
                      params={"value": "operator", "hint": f"add the OAuth client JSON: {command}"})
    with pytest.raises(NeedsOperator) as exc:
        SecretsProvider().create(secret, context())
    assert str(exc.value) == f"add the OAuth client JSON: {command}"
