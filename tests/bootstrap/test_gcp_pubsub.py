"""PubsubProvider against the real Pub/Sub emulator, and FirestoreProvider against the fake Firestore Admin
REST API (tests/support/fake_gcp/firestore.py)."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from compiler.bootstrap import clients, gcp_firestore, gcp_pubsub
from compiler.bootstrap.model import Context, ProviderError, Resource
from tests.support.fake_gcp.cloud import context as ctx
from tests.support.fake_gcp.cloud import fake_fixture, forget_clients
from tests.support.fake_gcp.firestore import FakeFirestore
from tests.support.pubsub_emulator import emulator_fixture

PROJECT_NUMBERS = itertools.count(1)
emulator = emulator_fixture()


# ---------------------------------------------------------------------- Pub/Sub


@pytest.fixture
def project(emulator: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[str]:
    """A fresh project on the emulator, reached through PUBSUB_EMULATOR_HOST; ADC points at a missing file,
    so any attempt to use Google credentials would fail."""
    forget_clients()
    monkeypatch.setenv("PUBSUB_EMULATOR_HOST", emulator)
    monkeypatch.delenv(clients.endpoint_variable("pubsub"), raising=False)
    monkeypatch.setenv("GOOGLE_APPLICATION_CREDENTIALS", str(tmp_path / "no-such-adc.json"))
    yield f"test-project-{next(PROJECT_NUMBERS)}"
    forget_clients()


class Recorder:
    """Wraps a client and records which of its methods were called (the emulator keeps no request log)."""

    def __init__(self, client: Any, calls: list[str]) -> None:
        self._client, self._calls = client, calls

    def __getattr__(self, name: str) -> Any:
        self._calls.append(name)
        return getattr(self._client, name)


def recorded(provider: gcp_pubsub.PubsubProvider) -> list[str]:
    calls: list[str] = []
    provider.publisher = Recorder(gcp_pubsub.make_client("publisher"), calls)
    provider.subscriber = Recorder(gcp_pubsub.make_client("subscriber"), calls)
    return calls


def topic(name: str, project: str) -> Resource:
    return Resource("pubsub-topic", name, project)


def subscription(name: str, project: str, **overrides: Any) -> Resource:
    fields: dict[str, Any] = {"topic": "minnie_SKELETON_CACHE_LOW_PRIORITY", "ack_deadline_seconds": 180,
                              "filter": "", "dead_letter_topic": "minnie_SKELETON_CACHE_DEAD_LETTER",
                              "max_delivery_attempts": 5, "max_retry_delay_seconds": 10, "expires": False}
    fields.update(overrides)
    return Resource("pubsub-subscription", name, project, fields=fields)


def test_topic_missing_then_created(project: str) -> None:
    provider = gcp_pubsub.PubsubProvider()
    calls = recorded(provider)
    assert provider.observe(topic("minnie_PCG_EDIT", project), ctx()) is None
    assert calls == ["get_topic"]  # no write during observe

    provider.create(topic("minnie_PCG_EDIT", project), ctx())

    raw = gcp_pubsub.make_client("publisher").get_topic(topic=f"projects/{project}/topics/minnie_PCG_EDIT")
    assert raw.name == f"projects/{project}/topics/minnie_PCG_EDIT"
    assert provider.observe(topic("minnie_PCG_EDIT", project), ctx()) == {}


def test_topic_already_exists_is_success(project: str) -> None:
    provider = gcp_pubsub.PubsubProvider()
    provider.create(topic("minnie_L2CACHE", project), ctx())
    provider.create(topic("minnie_L2CACHE", project), ctx())
    topics = gcp_pubsub.make_client("publisher").list_topics(project=f"projects/{project}")
    assert [t.name for t in topics] == [f"projects/{project}/topics/minnie_L2CACHE"]


def test_topic_api_error(project: str) -> None:
    with pytest.raises(ProviderError) as info:  # names starting with "goog" are reserved
        gcp_pubsub.PubsubProvider().observe(topic("goog-topic", project), ctx())
    assert str(info.value) == ("pubsub-topic/goog-topic: reading the topic failed: "
                               f"Invalid [topics] name: (name=projects/{project}/topics/goog-topic) (HTTP 400)")


def make_topics(provider: gcp_pubsub.PubsubProvider, project: str, *names: str) -> None:
    for name in names:
        provider.create(topic(name, project), ctx())


def test_subscription_missing_then_created(project: str) -> None:
    provider = gcp_pubsub.PubsubProvider()
    make_topics(provider, project, "minnie_SKELETON_CACHE_LOW_PRIORITY", "minnie_SKELETON_CACHE_DEAD_LETTER")
    wanted = subscription("minnie_SKELETON_CACHE_WORKER_LOW_PRIORITY", project)
    calls = recorded(provider)
    assert provider.observe(wanted, ctx()) is None
    assert calls == ["get_subscription"]

    provider.create(wanted, ctx())

    raw = gcp_pubsub.make_client("subscriber").get_subscription(
        subscription=f"projects/{project}/subscriptions/minnie_SKELETON_CACHE_WORKER_LOW_PRIORITY")
    assert raw.topic == f"projects/{project}/topics/minnie_SKELETON_CACHE_LOW_PRIORITY"
    assert raw.ack_deadline_seconds == 180
    assert raw.filter == ""
    assert raw.dead_letter_policy.dead_letter_topic == f"projects/{project}/topics/minnie_SKELETON_CACHE_DEAD_LETTER"
    assert raw.dead_letter_policy.max_delivery_attempts == 5
    assert raw.retry_policy.minimum_backoff.total_seconds() == 10
    assert raw.retry_policy.maximum_backoff.total_seconds() == 10
    assert "expiration_policy" in raw and "ttl" not in raw.expiration_policy  # never expires
    assert provider.observe(wanted, ctx()) == dict(wanted.fields)


def test_subscription_with_filter_and_no_dead_letter(project: str) -> None:
    provider = gcp_pubsub.PubsubProvider()
    make_topics(provider, project, "minnie_PCG_EDIT")
    wanted = subscription("minnie_PCG_HIGH_PRIORITY_REMESH", project, topic="minnie_PCG_EDIT",
                          ack_deadline_seconds=600, filter='attributes.remesh_priority="true"',
                          dead_letter_topic="", max_delivery_attempts=0)
    provider.create(wanted, ctx())
    raw = gcp_pubsub.make_client("subscriber").get_subscription(
        subscription=f"projects/{project}/subscriptions/minnie_PCG_HIGH_PRIORITY_REMESH")
    assert raw.filter == 'attributes.remesh_priority="true"'
    assert "dead_letter_policy" not in raw
    assert provider.observe(wanted, ctx()) == dict(wanted.fields)


def test_subscription_already_exists_is_success(project: str) -> None:
    provider = gcp_pubsub.PubsubProvider()
    make_topics(provider, project, "minnie_SKELETON_CACHE_LOW_PRIORITY", "minnie_SKELETON_CACHE_DEAD_LETTER")
    wanted = subscription("minnie_SKELETON_CACHE_WORKER_LOW_PRIORITY", project)
    provider.create(wanted, ctx())
    provider.create(wanted, ctx())
    subs = gcp_pubsub.make_client("subscriber").list_subscriptions(project=f"projects/{project}")
    assert [s.name for s in subs] == [f"projects/{project}/subscriptions/minnie_SKELETON_CACHE_WORKER_LOW_PRIORITY"]


def test_subscription_differing_is_reported_not_changed(project: str) -> None:
    provider = gcp_pubsub.PubsubProvider()
    make_topics(provider, project, "minnie_PCG_EDIT")
    name = "minnie_PCG_LOW_PRIORITY_REMESH"
    gcp_pubsub.make_client("subscriber").create_subscription(request={
        "name": f"projects/{project}/subscriptions/{name}", "topic": f"projects/{project}/topics/minnie_PCG_EDIT",
        "ack_deadline_seconds": 60, "filter": 'attributes.remesh_priority="maybe"'})
    wanted = subscription(name, project, topic="minnie_PCG_EDIT", ack_deadline_seconds=600,
                          filter='attributes.remesh_priority="false"', dead_letter_topic="", max_delivery_attempts=0)
    observed = provider.observe(wanted, ctx())
    assert observed == {"topic": "minnie_PCG_EDIT", "ack_deadline_seconds": 60,
                        "filter": 'attributes.remesh_priority="maybe"', "dead_letter_topic": "",
                        "max_delivery_attempts": 0, "max_retry_delay_seconds": 0, "expires": True}
    provider.create(wanted, ctx())  # exists: nothing is updated
    assert provider.observe(wanted, ctx()) == observed


def test_subscription_api_error(project: str) -> None:
    provider = gcp_pubsub.PubsubProvider()
    wanted = subscription("minnie_L2CACHE_WORKER", project, topic="minnie_L2CACHE", dead_letter_topic="")
    with pytest.raises(ProviderError) as info:
        provider.create(wanted, ctx())  # its topic does not exist
    assert str(info.value) == ("pubsub-subscription/minnie_L2CACHE_WORKER: creating the subscription failed: "
                               "Subscription topic does not exist (HTTP 404)")


def test_subscription_resolves_refs(project: str) -> None:
    provider = gcp_pubsub.PubsubProvider()
    make_topics(provider, project, "minnie_L2CACHE")
    wanted = subscription("minnie_L2CACHE_WORKER", project, topic="<topic>", dead_letter_topic="")
    resolving = Context(resolve=lambda v: "minnie_L2CACHE" if v == "<topic>" else v,
                        secret_value=lambda project, name: "")
    provider.create(wanted, resolving)
    assert provider.observe(wanted, ctx())["topic"] == "minnie_L2CACHE"  # type: ignore[index]


def test_endpoint_override_reaches_emulator_without_adc(project: str, emulator: str,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("PUBSUB_EMULATOR_HOST")
    monkeypatch.setenv(clients.endpoint_variable("pubsub"), f"http://{emulator}")
    provider = gcp_pubsub.PubsubProvider()
    provider.create(topic("minnie_L2CACHE", project), ctx())
    assert provider.observe(topic("minnie_L2CACHE", project), ctx()) == {}


def test_observed_subscription_defaults() -> None:
    from google.pubsub_v1 import Subscription

    raw = Subscription(name="projects/p/subscriptions/sub", topic="projects/p/topics/top", ack_deadline_seconds=10,
                       retry_policy={"minimum_backoff": {"seconds": 10}},
                       expiration_policy={"ttl": {"seconds": 86400}})
    assert gcp_pubsub.observed_subscription(raw) == {
        "topic": "top", "ack_deadline_seconds": 10, "filter": "", "dead_letter_topic": "",
        "max_delivery_attempts": 0, "max_retry_delay_seconds": 600, "expires": True}


# ---------------------------------------------------------------------- Firestore (Datastore mode)


firestore = fake_fixture(FakeFirestore, "firestore")


def database(location: str = "us-east1") -> Resource:
    return Resource("datastore-database", "(default)", "my-project",
                    fields={"location": location, "type": "DATASTORE_MODE"})


def test_database_missing_then_created(firestore: FakeFirestore) -> None:
    provider = gcp_firestore.FirestoreProvider()
    assert provider.observe(database(), ctx()) is None
    assert firestore.writes() == []
    assert [c.path for c in firestore.calls] == ["/v1/projects/my-project/databases/(default)"]

    firestore.polls_until_done = 2
    progress: list[str] = []
    provider.create(database(), ctx(progress))

    [create] = firestore.writes()
    assert create.path == "/v1/projects/my-project/databases"
    assert create.body == {"locationId": "us-east1", "type": 2}  # DATASTORE_MODE; the client sends enums as numbers
    polls = [c.path for c in firestore.calls if "/operations/" in c.path]
    assert polls == ["/v1/projects/my-project/databases/(default)/operations/op-1"] * 2
    assert progress == ["datastore-database/(default): waiting for the database to be created"]
    assert firestore.databases[("my-project", "(default)")]["type"] == "DATASTORE_MODE"  # databaseId=(default)
    assert provider.observe(database(), ctx()) == dict(database().fields)


def test_database_operation_done_at_once(firestore: FakeFirestore) -> None:
    firestore.polls_until_done = 0
    progress: list[str] = []
    gcp_firestore.FirestoreProvider().create(database(), ctx(progress))
    assert progress == []
    assert ("my-project", "(default)") in firestore.databases


def test_database_already_exists_is_success(firestore: FakeFirestore) -> None:
    firestore.add_database("my-project", location="us-east1")
    gcp_firestore.FirestoreProvider().create(database(), ctx())
    assert list(firestore.databases) == [("my-project", "(default)")]
    assert firestore.operations == {}


def test_database_differing(firestore: FakeFirestore) -> None:
    firestore.add_database("my-project", location="nam5", type_="FIRESTORE_NATIVE")
    assert gcp_firestore.FirestoreProvider().observe(database(), ctx()) == {"location": "nam5",
                                                                           "type": "FIRESTORE_NATIVE"}
    assert firestore.writes() == []


def test_database_api_error(firestore: FakeFirestore) -> None:
    firestore.fail("GET", r"/databases/", 403, "The caller does not have permission")
    with pytest.raises(ProviderError) as info:
        gcp_firestore.FirestoreProvider().observe(database(), ctx())
    assert str(info.value) == ("datastore-database/(default): reading the database failed: "
                               "The caller does not have permission (HTTP 403)")


def test_database_operation_error(firestore: FakeFirestore) -> None:
    firestore.fail_operation = "Datastore mode is not available in region us-east1"
    with pytest.raises(ProviderError) as info:
        gcp_firestore.FirestoreProvider().create(database(), ctx())
    assert str(info.value) == ("datastore-database/(default): creating the database failed: "
                               "Datastore mode is not available in region us-east1 (HTTP 400)")


def test_client_kwargs_per_endpoint(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("PUBSUB_EMULATOR_HOST", raising=False)
    monkeypatch.setattr(clients, "credentials", lambda: "adc")
    monkeypatch.delenv(clients.endpoint_variable("pubsub"), raising=False)
    assert gcp_pubsub.client_kwargs() == {"credentials": "adc"}
    monkeypatch.setenv(clients.endpoint_variable("pubsub"), "https://europe-west1-pubsub.googleapis.com")
    assert gcp_pubsub.client_kwargs() == {"credentials": "adc",
                                          "client_options": {"api_endpoint": "europe-west1-pubsub.googleapis.com"}}
    monkeypatch.setenv(clients.endpoint_variable("pubsub"), "http://127.0.0.1:8085")
    assert gcp_pubsub.client_kwargs() == {"channel": "127.0.0.1:8085"}
    monkeypatch.setenv("PUBSUB_EMULATOR_HOST", "127.0.0.1:8085")
    assert gcp_pubsub.client_kwargs() == {}
