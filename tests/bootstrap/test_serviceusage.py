"""The Google APIs a project needs: derived from the plan, listed while disabled, enabled first by --apply.

The provider runs google-cloud-service-usage's REST client unchanged against a fake speaking the Service Usage
wire format (services.list filtered on state:ENABLED with pages, services:batchEnable, operations polling).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from compiler.bootstrap.desired import KIND_APIS, desired
from compiler.bootstrap.gcp_serviceusage import ServiceUsageProvider
from compiler.bootstrap.model import ProviderError, Resource
from compiler.spec.load import load_environments
from tests.support import REPO
from tests.support.bootstrap import PROJECTS, all_fakes, run
from tests.support.fake_gcp.cloud import context, fake_fixture, serving
from tests.support.fake_gcp.serviceusage import FakeServiceUsage

SPECS = load_environments(REPO)
usage = fake_fixture(FakeServiceUsage, "serviceusage")


def api(project: str, name: str) -> Resource:
    return Resource("api", f"{project}:{name}", project)


# ---------------------------------------------------------------------- the provider against the fake


def test_observe_lists_enabled_apis_once_per_project_following_pages(usage: FakeServiceUsage) -> None:
    usage.add_project("p1", {"compute.googleapis.com", "dns.googleapis.com", "iam.googleapis.com",
                             "pubsub.googleapis.com", "redis.googleapis.com", "storage.googleapis.com"})
    provider, run = ServiceUsageProvider(), context()
    assert provider.observe(api("p1", "storage.googleapis.com"), run) == {}  # on the second page
    assert provider.observe(api("p1", "compute.googleapis.com"), run) == {}
    assert provider.observe(api("p1", "container.googleapis.com"), run) is None
    lists = [c for c in usage.calls if c.method == "GET"]
    assert len(lists) == 2, "6 enabled APIs in pages of 4: two pages, read once for every API of the project"
    assert all(c.path == "/v1/projects/p1/services" for c in lists)
    assert not usage.writes(), "observing must not write"
    usage.enabled["p1"].add("container.googleapis.com")  # someone enabled it meanwhile: the next plan sees it
    assert provider.observe(api("p1", "container.googleapis.com"), context()) == {}


def test_observe_asks_for_enabled_apis_only(usage: FakeServiceUsage) -> None:
    usage.add_project("p1", set())  # unfiltered, the list would hold every (disabled) service too
    assert ServiceUsageProvider().observe(api("p1", "dns.googleapis.com"), context()) is None
    assert [(q["filter"], q["pageSize"]) for q in usage.list_queries] == [(["state:ENABLED"], ["200"])]


def test_an_unknown_project_is_one_line_error(usage: FakeServiceUsage) -> None:
    with pytest.raises(ProviderError) as caught:
        ServiceUsageProvider().observe(api("nosuch", "dns.googleapis.com"), context())
    message = str(caught.value)
    assert message.startswith("api/nosuch:dns.googleapis.com: listing the enabled APIs of project nosuch failed: ")
    assert "Permission denied to list services" in message and "(HTTP 403)" in message and "\n" not in message


def test_create_enables_with_batch_enable_and_polls_the_operation(usage: FakeServiceUsage) -> None:
    usage.add_project("p1", set())
    usage.lro.pending_polls = 2
    provider = ServiceUsageProvider()
    resource = api("p1", "container.googleapis.com")
    progress: list[str] = []
    run = context(progress)
    assert provider.observe(resource, run) is None
    provider.create(resource, run)
    assert [(c.path, c.body) for c in usage.writes()] == [
        ("/v1/projects/p1/services:batchEnable", {"serviceIds": ["container.googleapis.com"]})]
    assert progress == ["api/p1:container.googleapis.com: waiting for container.googleapis.com to be enabled"] * 2
    assert usage.enabled["p1"] == {"container.googleapis.com"}
    assert provider.observe(resource, run) == {}, "the enabled APIs are read again after enabling one"


def test_create_reports_the_operation_error(usage: FakeServiceUsage) -> None:
    usage.add_project("p1", set())
    usage.lro.operation_error = "Billing must be enabled for activation of service 'redis.googleapis.com'"
    with pytest.raises(ProviderError) as caught:
        ServiceUsageProvider().create(api("p1", "redis.googleapis.com"), context())
    assert str(caught.value).startswith("api/p1:redis.googleapis.com: enabling failed: Billing must be enabled")
    assert usage.enabled["p1"] == set()


def test_create_reports_the_failures_of_the_response(usage: FakeServiceUsage) -> None:
    usage.add_project("p1", set())
    usage.refuse["redis.googleapis.com"] = "the organization policy forbids this service"
    with pytest.raises(ProviderError, match=r"enabling failed: redis\.googleapis\.com: the organization policy"):
        ServiceUsageProvider().create(api("p1", "redis.googleapis.com"), context())


def test_create_of_an_unknown_api_names_google_message(usage: FakeServiceUsage) -> None:
    usage.add_project("p1", set())
    with pytest.raises(ProviderError) as caught:
        ServiceUsageProvider().create(api("p1", "nosuch.googleapis.com"), context())
    assert "Not found or permission denied for service(s): nosuch.googleapis.com. (HTTP 403)" in str(caught.value)


# ---------------------------------------------------------------------- which APIs a plan needs


def test_apis_come_right_after_the_project_and_every_resource_depends_on_its_api() -> None:
    for cluster, spec in SPECS.items():
        resources = desired(spec)
        kinds = [r.kind for r in resources]
        apis = [r for r in resources if r.kind == "api"]
        assert kinds[0] == "project" and kinds[1:1 + len(apis)] == ["api"] * len(apis), cluster
        keys = {r.key for r in apis}
        data_project = getattr(getattr(spec, "data", None), "project", spec.gcp.project)
        for r in resources:
            if r.kind in KIND_APIS and r.project in (spec.gcp.project, data_project) and not r.owner:
                assert f"api/{r.project}:{KIND_APIS[r.kind]}" in r.depends, r.key
                assert f"api/{r.project}:{KIND_APIS[r.kind]}" in keys


def test_the_api_list_follows_the_resources_and_the_roles() -> None:
    def enabled(cluster: str) -> dict[str, set[str]]:
        out: dict[str, set[str]] = {}
        for r in desired(SPECS[cluster]):
            if r.kind == "api":
                project, name = r.name.split(":")
                out.setdefault(project, set()).add(name)
        return out

    minnie = enabled("minnie")
    assert set(minnie) == {"cave-demo-minnie", "cave-demo-data"}  # not global's DNS project: global enables it
    assert {"compute.googleapis.com", "container.googleapis.com", "sqladmin.googleapis.com", "redis.googleapis.com",
            "pubsub.googleapis.com", "secretmanager.googleapis.com", "iam.googleapis.com",
            "iamcredentials.googleapis.com", "cloudresourcemanager.googleapis.com", "storage.googleapis.com",
            "monitoring.googleapis.com"} <= minnie["cave-demo-minnie"]
    assert "bigtableadmin.googleapis.com" not in minnie["cave-demo-minnie"]
    assert "dns.googleapis.com" not in minnie["cave-demo-minnie"]  # its zone and records are in global's project
    assert {"bigtableadmin.googleapis.com", "bigtable.googleapis.com"} <= minnie["cave-demo-data"]
    # the proxy reads requester-pays buckets billed to fanc's project: serviceusage there, not in minnie's
    assert "serviceusage.googleapis.com" in enabled("fanc")["cave-demo-fanc"]
    assert "serviceusage.googleapis.com" not in minnie["cave-demo-minnie"]
    assert "dns.googleapis.com" in enabled("global")["cave-demo-global"]


# ---------------------------------------------------------------------- bootstrap end to end, fresh projects


@pytest.fixture
def fresh(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, Any]]:
    """Every fake, with the example projects existing and no API enabled yet (as a new project starts)."""
    fakes = {**all_fakes(), "serviceusage": FakeServiceUsage()}
    with serving(tmp_path, monkeypatch, fakes):
        for project in PROJECTS:
            fakes["resourcemanager"].add_project(project)
            fakes["serviceusage"].add_project(project, set())
        yield fakes


def test_plan_lists_disabled_apis_and_reads_nothing_behind_them(
        fresh: dict[str, Any], capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, REPO, "global", "--format", "json")
    data = json.loads(out)
    assert code == 1
    rows = {r["key"]: r for r in data["resources"]}
    apis = [k for k in rows if k.startswith("api/")]
    assert len(apis) >= 10 and all(rows[k]["status"] == "missing" and rows[k]["action"] == "create" for k in apis)
    network = rows["network/daf-global-network"]
    assert (network["status"], network["action"]) == (
        "missing", "create after enabling api/cave-demo-global:compute.googleapis.com")
    assert not fresh["compute"].calls and not fresh["sqladmin"].calls, "nothing is read through a disabled API"
    assert f"{len(apis)} Google APIs are disabled; --apply enables them first (Service Usage API), then creates " \
           "the rest" in data["notes"]
    assert not [c for api_name, fake in fresh.items() if hasattr(fake, "writes") for c in fake.writes()]


def test_apply_enables_the_apis_first(fresh: dict[str, Any], capsys: pytest.CaptureFixture[str]) -> None:
    _, out, err = run(capsys, REPO, "global", "--apply")
    created = re.findall(r"^\[\d+/\d+\] creating (\S+)$", err, re.MULTILINE)
    apis = [k for k in created if k.startswith("api/")]
    assert apis and created[:len(apis)] == apis, "every API is enabled before anything else is created"
    planned = {r.name.split(":")[1] for r in desired(SPECS["global"]) if r.kind == "api"}
    assert fresh["serviceusage"].enabled["cave-demo-global"] == planned
    assert "network/daf-global-network" in created and "sql-instance/cave-global-sql" in created
    enables = [c.body["serviceIds"] for c in fresh["serviceusage"].writes()]
    assert sorted(i for ids in enables for i in ids) == sorted(planned)
    _, out, _ = run(capsys, REPO, "global", "--format", "json")
    rows = {r["key"]: r["status"] for r in json.loads(out)["resources"]}
    assert {rows[f"api/cave-demo-global:{name}"] for name in planned} == {"exists"}


def test_apply_stops_when_an_api_cannot_be_enabled(fresh: dict[str, Any],
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    fresh["serviceusage"].refuse["compute.googleapis.com"] = "billing account is closed"
    code, out, err = run(capsys, REPO, "global", "--apply")
    assert code == 1
    assert "stopped at api/cave-demo-global:compute.googleapis.com" in out
    assert "compute.googleapis.com: billing account is closed" in out
    assert "creating network/" not in err and not fresh["compute"].writes()


# ---------------------------------------------------------------------- the JSON report (issue item 5)


def test_offline_json_never_offers_to_create_the_project_and_carries_the_notes(
        capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, REPO, "minnie", "--offline", "--format", "json")
    assert code == 0
    rows = {r["key"]: r for r in json.loads(out)["resources"]}
    project = rows["project/cave-demo-minnie"]
    assert project["action"] == "must exist (bootstrap never creates a project)"
    assert project["note"] == "must exist with billing; bootstrap reads its number, never creates it"
    assert rows["api/cave-demo-minnie:compute.googleapis.com"]["action"] == "enable if disabled"
    assert rows["api/cave-demo-minnie:compute.googleapis.com"]["note"] == "for address, network, subnet"
    slack = rows["secret/minnie-slack-api-token"]
    assert slack["note"].startswith("add ") and "gcloud secrets versions add minnie-slack-api-token" in slack["note"]
    _, text, _ = run(capsys, REPO, "minnie", "--offline")
    assert slack["note"] in text  # the same note the text report prints


def test_plan_json_notes_are_the_text_reports_closing_lines(
        fresh: dict[str, Any], capsys: pytest.CaptureFixture[str]) -> None:
    fresh["resourcemanager"].policies.pop("cave-demo-global")
    _, out, _ = run(capsys, REPO, "global", "--format", "json")
    data = json.loads(out)
    _, text, _ = run(capsys, REPO, "global")
    project = next(r for r in data["resources"] if r["key"] == "project/cave-demo-global")
    assert project["status"] == "needs-operator"
    assert project["action"] == "create the project with billing (bootstrap never creates projects)"
    assert "create if missing" not in out and "→ create\n" not in text.split("api/")[0]
    assert data["notes"] and text.rstrip("\n").splitlines()[-len(data["notes"]):] == data["notes"]
    assert "need the operator (see the lines marked OPERATOR)" in " ".join(data["notes"])
