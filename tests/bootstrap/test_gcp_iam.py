"""IamProvider against fakes: the IAM admin API over gRPC (tests/support/fake_gcp/iam.py) and Resource Manager's
project IAM policy over REST (tests/support/fake_gcp/resourcemanager.py), with real client libraries and ADC."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import grpc
import pytest

from compiler.bootstrap import clients, gcp_iam
from compiler.bootstrap.model import ProviderError, Resource
from tests.support.fake_gcp.cloud import context as ctx
from tests.support.fake_gcp.cloud import serving
from tests.support.fake_gcp.iam import FakeIam
from tests.support.fake_gcp.resourcemanager import FakeResourceManager

PROJECT = "my-project"
EMAIL = f"daf-pychunkedgraph-minnie@{PROJECT}.iam.gserviceaccount.com"
WI_MEMBER = f"serviceAccount:{PROJECT}.svc.id.goog[default/pychunkedgraph]"
WI_ROLE = "roles/iam.workloadIdentityUser"


@dataclass
class Fakes:
    iam: FakeIam
    rm: FakeResourceManager


@pytest.fixture
def fakes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Fakes]:
    rm, iam = FakeResourceManager(), FakeIam()
    with serving(tmp_path, monkeypatch, {"resourcemanager": rm, "iam": iam}):  # ADC tokens from rm's /token
        rm.add_project(PROJECT, [{"role": "roles/owner", "members": ["user:admin@example.com"]}])
        yield Fakes(iam, rm)


def account() -> Resource:
    return Resource("service-account", "daf-pychunkedgraph-minnie", PROJECT,
                    fields={"display_name": "PyChunkedGraph-minnie"})


def project_binding(role: str = "roles/pubsub.editor", member: str = f"serviceAccount:{EMAIL}") -> Resource:
    return Resource("project-iam-binding", f"{PROJECT}:{role}:{member}", PROJECT,
                    fields={"role": role, "member": member})


def sa_binding() -> Resource:
    return Resource("sa-iam-binding", f"{EMAIL}:{WI_ROLE}:{WI_MEMBER}", PROJECT,
                    fields={"account": EMAIL, "role": WI_ROLE, "member": WI_MEMBER})


# ---------------------------------------------------------------------- service-account


def test_service_account_missing_then_created(fakes: Fakes) -> None:
    provider = gcp_iam.IamProvider()
    assert provider.observe(account(), ctx()) is None
    assert fakes.iam.writes() == []

    provider.create(account(), ctx())

    [create] = fakes.iam.writes()
    assert create.method == "CreateServiceAccount"
    assert create.request == {"name": f"projects/{PROJECT}", "accountId": "daf-pychunkedgraph-minnie",
                              "serviceAccount": {"displayName": "PyChunkedGraph-minnie"}}
    assert fakes.iam.accounts[EMAIL].display_name == "PyChunkedGraph-minnie"
    assert provider.observe(account(), ctx()) == dict(account().fields)


def test_service_account_already_exists_is_success(fakes: Fakes) -> None:
    fakes.iam.add_account(PROJECT, "daf-pychunkedgraph-minnie", "PyChunkedGraph-minnie")
    gcp_iam.IamProvider().create(account(), ctx())
    assert list(fakes.iam.accounts) == [EMAIL]


def test_service_account_differing_display_name(fakes: Fakes) -> None:
    fakes.iam.add_account(PROJECT, "daf-pychunkedgraph-minnie", "something else")
    assert gcp_iam.IamProvider().observe(account(), ctx()) == {"display_name": "something else"}
    assert fakes.iam.writes() == []


def test_service_account_api_error(fakes: Fakes) -> None:
    fakes.iam.fail("GetServiceAccount", grpc.StatusCode.PERMISSION_DENIED, "Permission 'iam.serviceAccounts.get'\n"
                   "denied on resource")
    with pytest.raises(ProviderError) as info:
        gcp_iam.IamProvider().observe(account(), ctx())
    message = str(info.value)
    assert message == ("service-account/daf-pychunkedgraph-minnie: reading the service account failed: "
                       "Permission 'iam.serviceAccounts.get' denied on resource (HTTP 403)")


def test_service_account_create_error(fakes: Fakes) -> None:
    fakes.iam.fail("CreateServiceAccount", grpc.StatusCode.PERMISSION_DENIED, "Permission denied")
    with pytest.raises(ProviderError, match=r"^service-account/daf-pychunkedgraph-minnie: creating the service "
                                            r"account failed: Permission denied \(HTTP 403\)$"):
        gcp_iam.IamProvider().create(account(), ctx())


def test_service_account_waits_until_visible(fakes: Fakes) -> None:
    fakes.iam.fail("GetServiceAccount", grpc.StatusCode.NOT_FOUND, "not yet", times=2)
    progress: list[str] = []
    gcp_iam.IamProvider().create(account(), ctx(progress))
    assert len(progress) == 2 and "waiting" in progress[0]


def test_iam_calls_carry_credentials(fakes: Fakes) -> None:
    gcp_iam.IamProvider().observe(account(), ctx())
    assert [c.method for c in fakes.iam.calls] == ["GetServiceAccount"]  # the fake rejects calls without a token


def test_iam_client_without_override_uses_google(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(clients.endpoint_variable("iam"), raising=False)
    from google.auth.credentials import AnonymousCredentials

    monkeypatch.setattr(clients, "credentials", lambda: AnonymousCredentials())
    client = gcp_iam.iam_client()
    assert client.transport._host == "iam.googleapis.com:443"


# ---------------------------------------------------------------------- project-iam-binding


def test_project_binding_missing_then_created(fakes: Fakes) -> None:
    provider = gcp_iam.IamProvider()
    binding = project_binding()
    assert provider.observe(binding, ctx()) is None
    assert fakes.rm.writes() == []
    assert [c.path for c in fakes.rm.calls] == [f"/v3/projects/{PROJECT}:getIamPolicy"]
    assert fakes.rm.calls[0].body == {"options": {"requestedPolicyVersion": 3}}

    provider.create(binding, ctx())

    [write] = fakes.rm.writes()
    assert write.path == f"/v3/projects/{PROJECT}:setIamPolicy"
    assert write.body["policy"]["etag"]  # read-modify-write with the etag read
    assert write.body["policy"]["bindings"] == [
        {"role": "roles/owner", "members": ["user:admin@example.com"]},
        {"role": "roles/pubsub.editor", "members": [f"serviceAccount:{EMAIL}"]}]
    assert provider.observe(binding, ctx()) == dict(binding.fields)


def test_project_binding_joins_existing_role(fakes: Fakes) -> None:
    fakes.rm.add_project(PROJECT, [{"role": "roles/pubsub.editor", "members": ["user:a@example.com"]},
                                   {"role": "roles/pubsub.editor", "members": ["user:b@example.com"],
                                    "condition": {"title": "t", "expression": "request.time < timestamp('2030')"}}])
    provider = gcp_iam.IamProvider()
    provider.create(project_binding(), ctx())
    policy = fakes.rm.policies[PROJECT]
    assert policy["version"] == 3  # a conditional binding is kept, so the policy stays version 3
    assert policy["bindings"][0] == {"role": "roles/pubsub.editor",
                                     "members": ["user:a@example.com", f"serviceAccount:{EMAIL}"]}
    assert policy["bindings"][1]["condition"]["title"] == "t"


def test_project_binding_only_conditional_is_missing(fakes: Fakes) -> None:
    fakes.rm.add_project(PROJECT, [{"role": "roles/pubsub.editor", "members": [f"serviceAccount:{EMAIL}"],
                                    "condition": {"title": "t", "expression": "true"}}])
    assert gcp_iam.IamProvider().observe(project_binding(), ctx()) is None


def test_project_binding_already_present_writes_nothing(fakes: Fakes) -> None:
    fakes.rm.add_project(PROJECT, [{"role": "roles/pubsub.editor", "members": [f"serviceAccount:{EMAIL}"]}])
    provider = gcp_iam.IamProvider()
    provider.create(project_binding(), ctx())
    assert fakes.rm.writes() == []
    assert fakes.rm.policies[PROJECT]["bindings"] == [
        {"role": "roles/pubsub.editor", "members": [f"serviceAccount:{EMAIL}"]}]


def test_project_binding_other_member_is_missing(fakes: Fakes) -> None:
    fakes.rm.add_project(PROJECT, [{"role": "roles/pubsub.editor", "members": ["user:a@example.com"]}])
    assert gcp_iam.IamProvider().observe(project_binding(), ctx()) is None


def test_project_binding_retries_once_on_etag_conflict(fakes: Fakes) -> None:
    fakes.rm.race_next_set = True
    progress: list[str] = []
    gcp_iam.IamProvider().create(project_binding(), ctx(progress))
    assert len(fakes.rm.writes()) == 2
    roles = {b["role"] for b in fakes.rm.policies[PROJECT]["bindings"]}
    assert roles == {"roles/owner", "roles/viewer", "roles/pubsub.editor"}  # the other writer's binding is kept
    assert "changed meanwhile" in progress[0]


def test_project_binding_gives_up_after_second_conflict(fakes: Fakes) -> None:
    fakes.rm.fail("POST", r":setIamPolicy$", 409, "There were concurrent policy changes.", times=2)
    with pytest.raises(ProviderError, match=r"^project-iam-binding/.*: setting the IAM policy failed: There were "
                                            r"concurrent policy changes\. \(HTTP 409\)$"):
        gcp_iam.IamProvider().create(project_binding(), ctx())


def test_project_binding_api_error(fakes: Fakes) -> None:
    fakes.rm.fail("POST", r":getIamPolicy$", 403, "The caller does not have permission")
    binding = project_binding()
    with pytest.raises(ProviderError) as info:
        gcp_iam.IamProvider().observe(binding, ctx())
    assert str(info.value) == (f"{binding.key}: reading the IAM policy failed: The caller does not have permission "
                               "(HTTP 403)")
    assert "\n" not in str(info.value)


# ---------------------------------------------------------------------- sa-iam-binding


def test_sa_binding_missing_then_created(fakes: Fakes) -> None:
    fakes.iam.add_account(PROJECT, "daf-pychunkedgraph-minnie", "PyChunkedGraph-minnie")
    fakes.iam.set_policy(EMAIL, [("roles/iam.serviceAccountUser", ["user:admin@example.com"])])
    provider = gcp_iam.IamProvider()
    assert provider.observe(sa_binding(), ctx()) is None
    assert fakes.iam.writes() == []
    assert fakes.iam.calls[0].request == {"resource": f"projects/-/serviceAccounts/{EMAIL}",
                                          "options": {"requestedPolicyVersion": 3}}

    provider.create(sa_binding(), ctx())

    [write] = fakes.iam.writes()
    assert write.method == "SetIamPolicy"
    assert write.request["resource"] == f"projects/-/serviceAccounts/{EMAIL}"
    assert write.request["policy"]["bindings"] == [
        {"role": "roles/iam.serviceAccountUser", "members": ["user:admin@example.com"]},
        {"role": WI_ROLE, "members": [WI_MEMBER]}]
    assert write.request["policy"]["etag"]
    assert provider.observe(sa_binding(), ctx()) == dict(sa_binding().fields)


def test_sa_binding_on_missing_account_is_missing(fakes: Fakes) -> None:
    assert gcp_iam.IamProvider().observe(sa_binding(), ctx()) is None


def test_sa_binding_create_on_missing_account_fails(fakes: Fakes) -> None:
    with pytest.raises(ProviderError, match="does not exist"):
        gcp_iam.IamProvider().create(sa_binding(), ctx())


def test_sa_binding_already_present(fakes: Fakes) -> None:
    fakes.iam.add_account(PROJECT, "daf-pychunkedgraph-minnie")
    fakes.iam.set_policy(EMAIL, [(WI_ROLE, [WI_MEMBER])])
    provider = gcp_iam.IamProvider()
    assert provider.observe(sa_binding(), ctx()) == dict(sa_binding().fields)
    provider.create(sa_binding(), ctx())
    assert fakes.iam.writes() == []
    assert len(fakes.iam.policies[EMAIL].bindings) == 1


def test_sa_binding_retries_on_etag_conflict(fakes: Fakes) -> None:
    fakes.iam.add_account(PROJECT, "daf-pychunkedgraph-minnie")
    fakes.iam.race_next_set = True
    gcp_iam.IamProvider().create(sa_binding(), ctx())
    assert len(fakes.iam.writes()) == 2
    assert {b.role for b in fakes.iam.policies[EMAIL].bindings} == {"roles/iam.serviceAccountUser", WI_ROLE}


def test_sa_binding_api_error(fakes: Fakes) -> None:
    fakes.iam.add_account(PROJECT, "daf-pychunkedgraph-minnie")
    fakes.iam.fail("SetIamPolicy", grpc.StatusCode.PERMISSION_DENIED, "Permission 'iam.serviceAccounts.setIamPolicy'"
                   " denied")
    with pytest.raises(ProviderError) as info:
        gcp_iam.IamProvider().create(sa_binding(), ctx())
    assert str(info.value) == (f"{sa_binding().key}: setting the IAM policy failed: Permission "
                               "'iam.serviceAccounts.setIamPolicy' denied (HTTP 403)")


def test_iam_client_plain_http_endpoint_off_loopback(monkeypatch: pytest.MonkeyPatch) -> None:
    from google.auth.credentials import AnonymousCredentials

    monkeypatch.setenv(clients.endpoint_variable("iam"), "http://iam-fake.internal:8090")
    monkeypatch.setattr(clients, "credentials", lambda: AnonymousCredentials())
    client = gcp_iam.iam_client()  # no connection is made until the first call
    assert client.transport.grpc_channel is not None


def test_project_is_read_never_created(fakes: Fakes) -> None:
    """The project's number gives the Pub/Sub service agent; a missing project is an error, never created."""
    fakes.rm.add_project("cave-demo-minnie")
    provider = gcp_iam.IamProvider()
    project = Resource("project", "cave-demo-minnie", "cave-demo-minnie")
    number = fakes.rm.number("cave-demo-minnie")
    agent = f"serviceAccount:service-{number}@gcp-sa-pubsub.iam.gserviceaccount.com"
    assert provider.observe(project, ctx()) == {"number": number, "pubsub_service_agent": agent}
    missing = Resource("project", "no-such-project", "no-such-project")
    assert provider.observe(missing, ctx()) is None
    with pytest.raises(ProviderError, match="bootstrap never creates projects"):
        provider.create(missing, ctx())
    assert fakes.rm.writes() == []
