"""Pub/Sub topics and subscriptions (kinds pubsub-topic, pubsub-subscription) with google-cloud-pubsub's
`PublisherClient` and `SubscriberClient` (gRPC).

Where the clients connect: with PUBSUB_EMULATOR_HOST set (as `gcloud beta emulators pubsub env-init` does) the
library itself opens an insecure channel with anonymous credentials; an `http://host:port` endpoint override
(CAVE_GITOPS_PUBSUB_ENDPOINT) is treated the same way (an emulator; no ADC needed); otherwise Google (or an
`https://` override) with Application Default Credentials.

Subscriptions are created as configure_pubsub.sh made them: ack deadline, optional filter (immutable, so a
differing filter is only reported), dead-letter policy when a dead-letter topic is named, retry policy with the
default 10 s minimum backoff and `max_retry_delay_seconds` as maximum, and no expiry. Existing ones are never
updated.
"""

from __future__ import annotations

import datetime
import os
from functools import cached_property
from typing import Any
from urllib.parse import urlsplit

from google.api_core import exceptions as gexc

from compiler.bootstrap import clients
from compiler.bootstrap.gcp_common import failed, resolved, short_name
from compiler.bootstrap.model import Context, Resource

MIN_RETRY_DELAY_SECONDS = 10  # gcloud's default --min-retry-delay
DEFAULT_MAX_BACKOFF_SECONDS = 600
TIMEOUT_SECONDS = 60.0


def topic_path(value: str, project: str) -> str:
    return value if value.startswith("projects/") else f"projects/{project}/topics/{value}"


def seconds(value: Any) -> int:
    """Seconds of a proto Duration as proto-plus gives it (a timedelta) or a raw Duration."""
    if isinstance(value, datetime.timedelta):
        return int(value.total_seconds())
    return int(getattr(value, "seconds", 0) or 0)


def client_kwargs() -> dict[str, Any]:
    """Constructor arguments of both clients for the configured endpoint (see the module docstring)."""
    if os.environ.get("PUBSUB_EMULATOR_HOST"):
        return {}  # the library connects to the emulator itself
    url = clients.endpoint("pubsub")
    if url is None:
        return {"credentials": clients.credentials()}
    parts = urlsplit(url if "://" in url else f"http://{url}")
    if parts.scheme == "http":
        return {"channel": parts.netloc}
    return {"credentials": clients.credentials(), "client_options": {"api_endpoint": parts.netloc}}


def make_client(kind: str) -> Any:
    """A `PublisherClient` ("publisher") or `SubscriberClient` ("subscriber")."""
    import grpc  # type: ignore[import-untyped]
    from google.cloud.pubsub_v1 import PublisherClient, SubscriberClient  # type: ignore[import-untyped]
    from google.pubsub_v1.services.publisher.transports.grpc import PublisherGrpcTransport
    from google.pubsub_v1.services.subscriber.transports.grpc import SubscriberGrpcTransport

    kwargs = client_kwargs()
    if "channel" in kwargs:
        transport_class = PublisherGrpcTransport if kind == "publisher" else SubscriberGrpcTransport
        kwargs = {"transport": transport_class(channel=grpc.insecure_channel(kwargs["channel"]))}
    return PublisherClient(**kwargs) if kind == "publisher" else SubscriberClient(**kwargs)


class PubsubProvider:
    """Creates missing topics and subscriptions; reports (never changes) differing subscriptions."""

    kinds = frozenset({"pubsub-topic", "pubsub-subscription"})
    publisher = cached_property(lambda self: make_client("publisher"))
    subscriber = cached_property(lambda self: make_client("subscriber"))

    def observe(self, resource: Resource, ctx: Context) -> dict[str, Any] | None:
        try:
            if resource.kind == "pubsub-topic":
                self.publisher.get_topic(topic=topic_path(resource.name, resource.project), timeout=TIMEOUT_SECONDS)
                return {}
            subscription = self.subscriber.get_subscription(
                subscription=f"projects/{resource.project}/subscriptions/{resource.name}", timeout=TIMEOUT_SECONDS)
        except gexc.NotFound:
            return None
        except gexc.GoogleAPICallError as exc:
            raise failed(resource.key, f"reading the {resource.kind.removeprefix('pubsub-')}", exc) from None
        return observed_subscription(subscription)

    def create(self, resource: Resource, ctx: Context) -> None:
        what = resource.kind.removeprefix("pubsub-")
        try:
            if resource.kind == "pubsub-topic":
                self.publisher.create_topic(name=topic_path(resource.name, resource.project), timeout=TIMEOUT_SECONDS)
            else:
                self.subscriber.create_subscription(request=subscription_request(resource, ctx),
                                                    timeout=TIMEOUT_SECONDS)
        except gexc.Conflict:
            return  # ALREADY_EXISTS
        except gexc.GoogleAPICallError as exc:
            raise failed(resource.key, f"creating the {what}", exc) from None


def subscription_request(resource: Resource, ctx: Context) -> dict[str, Any]:
    """The Subscription to create, from the resource's fields."""
    fields = resolved(resource, ctx)
    project = resource.project
    request: dict[str, Any] = {
        "name": f"projects/{project}/subscriptions/{resource.name}",
        "topic": topic_path(str(fields["topic"]), project),
        "ack_deadline_seconds": int(fields.get("ack_deadline_seconds") or 10),
    }
    if fields.get("filter"):
        request["filter"] = str(fields["filter"])
    if fields.get("dead_letter_topic"):
        request["dead_letter_policy"] = {
            "dead_letter_topic": topic_path(str(fields["dead_letter_topic"]), project),
            "max_delivery_attempts": int(fields.get("max_delivery_attempts") or 5)}
    max_delay = int(fields.get("max_retry_delay_seconds") or 0)
    if max_delay:
        minimum = min(MIN_RETRY_DELAY_SECONDS, max_delay)
        request["retry_policy"] = {"minimum_backoff": datetime.timedelta(seconds=minimum),
                                   "maximum_backoff": datetime.timedelta(seconds=max_delay)}
    if not fields.get("expires", False):
        request["expiration_policy"] = {}  # present with no ttl: never expires
    return request


def retry_delay(retry: Any) -> int:
    """The maximum backoff in seconds: 0 without a retry policy (immediate redelivery), Google's default 600 s
    for a policy without one."""
    if retry is None:
        return 0
    return seconds(retry.maximum_backoff) if "maximum_backoff" in retry else DEFAULT_MAX_BACKOFF_SECONDS


def observed_subscription(subscription: Any) -> dict[str, Any]:
    """The kind's fields of a `Subscription` message."""
    dead_letter = subscription.dead_letter_policy if "dead_letter_policy" in subscription else None
    retry = subscription.retry_policy if "retry_policy" in subscription else None
    expiration = subscription.expiration_policy if "expiration_policy" in subscription else None
    return {
        "topic": short_name(subscription.topic),
        "ack_deadline_seconds": int(subscription.ack_deadline_seconds),
        "filter": subscription.filter or "",
        "dead_letter_topic": short_name(dead_letter.dead_letter_topic) if dead_letter else "",
        "max_delivery_attempts": int(dead_letter.max_delivery_attempts) if dead_letter else 0,
        "max_retry_delay_seconds": retry_delay(retry),
        # no policy at all means Google's default 31-day expiry; a policy without ttl means never
        "expires": expiration is None or "ttl" in expiration,
    }
