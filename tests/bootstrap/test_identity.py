"""Bootstrap grants what the catalogue's `google` entries say each service calls, on the right project or bucket.

Covers the proxy's requester-pays buckets (objectViewer on each bucket of its `map`, never created, requests
billed to the cluster's project), the materialization account's CSV import/export role and the Cloud SQL
instance's own bucket roles.
"""

from __future__ import annotations

import pytest

from compiler import catalog
from compiler.bootstrap.desired import desired, google_grants, service_roles
from compiler.bootstrap.gcp_storage import StorageProvider
from compiler.bootstrap.model import ProviderError, Resource
from compiler.spec.load import load_environments
from tests.support import REPO
from tests.support.fake_gcp.cloud import context, fake_fixture
from tests.support.fake_gcp.storage import StorageFake

SPECS = load_environments(REPO)
gcs = fake_fixture(StorageFake, "storage")


def _plan(cluster: str) -> dict[str, Resource]:
    return {r.key: r for r in desired(SPECS[cluster])}


@pytest.mark.parametrize(("value", "bucket"), [
    ("gs://fanc-public-data", "fanc-public-data"),
    ("gs://fanc-public-data/some/prefix", "fanc-public-data"),
    ("https://storage.googleapis.com/rp-bucket/x", "rp-bucket"),
    ("https://rp-bucket.storage.googleapis.com/x", "rp-bucket"),
    ("https://example.org/data", None),
    ("cave-demo-skeletons/minnie", "cave-demo-skeletons"),
])
def test_bucket_of(value: str, bucket: str | None) -> None:
    assert catalog.bucket_of(value) == bucket


def test_every_service_calling_google_has_an_account() -> None:
    for service in catalog.SERVICES:
        if service.google:
            assert service.service_account, service.name
        for use in service.google:
            assert (use.on == "bucket") == bool(use.bucket_field), (service.name, use)
            assert use.role.startswith("roles/"), (service.name, use)


def test_proxy_reads_its_requester_pays_buckets_billed_to_the_cluster_project() -> None:
    spec = SPECS["fanc"]
    plan = _plan("fanc")
    p = spec.gcp.project
    member = f"serviceAccount:daf-proxy-fanc@{p}.iam.gserviceaccount.com"
    assert "service-account/daf-proxy-fanc" in plan
    wi = f"serviceAccount:{p}.svc.id.goog[{spec.argocd.namespace}/proxy]"
    assert f"sa-iam-binding/daf-proxy-fanc@{p}.iam.gserviceaccount.com:roles/iam.workloadIdentityUser:{wi}" in plan
    read = plan[f"bucket-iam-binding/fanc-public-data:roles/storage.objectViewer:{member}"]
    assert read.params["user_project"] == p and read.depends == ("service-account/daf-proxy-fanc",
                                                                           f"api/{p}:storage.googleapis.com")
    assert "bucket/fanc-public-data" not in plan  # not ours: never created
    assert f"project-iam-binding/{p}:roles/serviceusage.serviceUsageConsumer:{member}" in plan


def test_materialization_may_import_and_export_and_the_instance_reads_and_writes_its_buckets() -> None:
    spec = SPECS["minnie"]
    plan = _plan("minnie")
    p = spec.gcp.project
    assert "roles/cloudsql.admin" in service_roles(spec)["pychunkedgraph"]
    assert f"project-iam-binding/{p}:roles/cloudsql.admin:serviceAccount:daf-pychunkedgraph-minnie@{p}" \
           ".iam.gserviceaccount.com" in plan
    upload = plan["bucket-iam-binding/cave-demo-minnie-uploads:roles/storage.objectViewer:cloud-sql-instance"]
    assert upload.depends == ("bucket/cave-demo-minnie-uploads", f"sql-instance/{spec.cloud_sql.instance}",
                              f"api/{p}:storage.googleapis.com")
    assert not any(k.endswith(":roles/storage.objectAdmin:cloud-sql-instance") for k in plan)


def test_bigtable_is_granted_in_the_data_project() -> None:
    spec = SPECS["minnie"]
    data = spec.data.project  # type: ignore[union-attr]
    plan = _plan("minnie")
    assert plan[f"project-iam-binding/{data}:roles/bigtable.user:serviceAccount:daf-pychunkedgraph-minnie@"
                f"{spec.gcp.project}.iam.gserviceaccount.com"].project == data
    assert all(g.project == data for g in google_grants(spec) if g.use.on == "data-project")


def test_a_disabled_service_asks_for_nothing() -> None:
    spec = SPECS["fanc"]
    proxy = spec.services.proxy  # type: ignore[union-attr]
    assert proxy is not None
    off = spec.model_copy(update={"services": spec.services.model_copy(
        update={"proxy": proxy.model_copy(update={"enabled": False})})})
    assert not [g for g in google_grants(off) if g.service == "proxy"]
    assert catalog.bucket_names(off, "services.proxy.map") == []


def test_requester_pays_binding_names_the_billed_project(gcs: StorageFake) -> None:
    gcs.add_bucket("someone-else", "rp-data")
    gcs.requester_pays.add("rp-data")
    member = "serviceAccount:daf-proxy-fanc@cave-fanc.iam.gserviceaccount.com"
    fields = {"bucket": "rp-data", "role": "roles/storage.objectViewer", "member": member}
    bare = Resource("bucket-iam-binding", f"rp-data:roles/storage.objectViewer:{member}", "cave-fanc", fields)
    with pytest.raises(ProviderError, match="requester pays"):
        StorageProvider().observe(bare, context())
    billed = Resource(bare.kind, bare.name, bare.project, fields, params={"user_project": "cave-fanc"})
    provider = StorageProvider()
    assert provider.observe(billed, context()) is None
    provider.create(billed, context())
    assert gcs.members("rp-data", "roles/storage.objectViewer") == [member]
    assert provider.observe(billed, context()) == fields


def test_dns_admin_is_granted_and_reported_where_the_zones_are() -> None:
    # minnie's hostnames are all in zones of the global cluster's project: cert-manager's account holds
    # dns.admin there, not on minnie's own project; fanc also has a zone of its own.
    for cluster, own in (("minnie", False), ("fanc", True)):
        spec = SPECS[cluster]
        p = spec.gcp.project
        member = f"serviceAccount:daf-clouddns-{cluster}@{p}.iam.gserviceaccount.com"
        granted = {r.project for r in desired(spec)
                   if r.kind == "project-iam-binding" and r.fields["role"] == "roles/dns.admin"
                   and r.fields["member"] == member}
        assert granted == ({p} if own else set()) | {SPECS["global"].gcp.project}
        assert ("roles/dns.admin" in service_roles(spec)["clouddns"]) == own
