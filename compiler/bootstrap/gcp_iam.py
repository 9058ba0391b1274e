"""Service accounts and IAM bindings: kinds service-account, project-iam-binding and sa-iam-binding.

Clients: service accounts and their own IAM policies go through google-cloud-iam's `iam_admin_v1.IAMClient`,
the project policy through google-cloud-resource-manager's `resourcemanager_v3.ProjectsClient` (REST).

Why gRPC for IAM: `IAMClient` ships only a gRPC transport. Keeping the real client (rather than switching to
googleapiclient's discovery "iam" v1) keeps one typed client and the same error classes as every other provider;
the price is a gRPC fake in the tests (tests/support/fake_gcp/iam.py). An explicit `http://` endpoint override means "no
TLS": on a loopback host the channel uses gRPC local credentials, which still carry the ADC token (so the fake can
check it); on any other host a plain insecure channel. Without an override the client talks to Google over TLS.

IAM policies are changed read-modify-write: read the policy (version 3), add the member to the role's
unconditional binding (or add that binding), write it back with the etag read, keep every other binding, and
retry once when the etag no longer matches (409 / ABORTED: someone else changed the policy meanwhile).
"""

from __future__ import annotations

import time
from functools import cached_property
from typing import Any
from urllib.parse import urlsplit

from google.api_core import exceptions as gexc

from compiler.bootstrap import clients
from compiler.bootstrap.gcp_common import failed, poll_seconds, resolved, rest_client
from compiler.bootstrap.model import Context, ProviderError, Resource

POLICY_VERSION = 3  # read conditional bindings too, so writing back never drops them
VISIBLE_TRIES = 10  # a new service account can take a few seconds to be readable (and grantable)
POLL_SECONDS = 1.0  # default; CAVE_GITOPS_POLL_SECONDS overrides
LOOPBACK = frozenset({"127.0.0.1", "localhost", "::1"})


def account_email(name: str, project: str) -> str:
    """The e-mail of service account `name` (an account id, or already an e-mail) in `project`."""
    return name if "@" in name else f"{name}@{project}.iam.gserviceaccount.com"


def add_member(policy: Any, role: str, member: str) -> bool:
    """Add `member` to the unconditional binding of `role` in `policy` (a google.iam.v1 Policy message);
    False when it is already there. Conditional bindings and other roles stay as they are."""
    for binding in policy.bindings:
        if binding.role == role and not binding.HasField("condition"):
            if member in binding.members:
                return False
            binding.members.append(member)
            return True
    policy.bindings.add(role=role, members=[member])
    return True


def has_member(policy: Any, role: str, member: str) -> bool:
    return any(b.role == role and not b.HasField("condition") and member in b.members for b in policy.bindings)


def iam_client() -> Any:
    """`IAMClient` for the configured endpoint (see the module docstring for the channel choice)."""
    import grpc  # type: ignore[import-untyped]
    from google.cloud import iam_admin_v1
    from google.cloud.iam_admin_v1.services.iam.transports.grpc import IAMGrpcTransport

    url = clients.endpoint("iam")
    if url is None:
        return iam_admin_v1.IAMClient(credentials=clients.credentials())
    parts = urlsplit(url if "://" in url else f"https://{url}")
    if parts.scheme != "http":
        return iam_admin_v1.IAMClient(credentials=clients.credentials(),
                                      client_options={"api_endpoint": parts.netloc})
    if parts.hostname in LOOPBACK:
        transport = IAMGrpcTransport(
            host=parts.netloc, credentials=clients.credentials(),
            ssl_channel_credentials=grpc.local_channel_credentials(grpc.LocalConnectionType.LOCAL_TCP))
    else:
        transport = IAMGrpcTransport(channel=grpc.insecure_channel(parts.netloc))
    return iam_admin_v1.IAMClient(transport=transport)


class IamProvider:
    """Creates service accounts and adds IAM bindings (project-wide, and on a service account for Workload
    Identity); never removes a binding or changes an existing account."""

    kinds = frozenset({"project", "service-account", "project-iam-binding", "sa-iam-binding"})
    iam = cached_property(lambda self: iam_client())
    projects = cached_property(lambda self: rest_client("google.cloud.resourcemanager_v3", "ProjectsClient",
                                                        "resourcemanager"))

    # ------------------------------------------------------------------ Provider

    def observe(self, resource: Resource, ctx: Context) -> dict[str, Any] | None:
        if resource.kind == "project":
            return self._observe_project(resource)
        if resource.kind == "service-account":
            return self._observe_account(resource)
        role, member = str(ctx.resolve(resource.fields["role"])), str(ctx.resolve(resource.fields["member"]))
        policy = self._get_policy(resource, self._policy_target(resource, ctx))
        if policy is None or not has_member(policy, role, member):
            return None
        return resolved(resource, ctx)

    def create(self, resource: Resource, ctx: Context) -> None:
        if resource.kind == "project":
            raise ProviderError(f"{resource.key}: project {resource.name} does not exist or this account cannot see "
                                "it; create it (with billing) or get access first: bootstrap never creates projects")
        if resource.kind == "service-account":
            self._create_account(resource, ctx)
            return
        role, member = str(ctx.resolve(resource.fields["role"])), str(ctx.resolve(resource.fields["member"]))
        target = self._policy_target(resource, ctx)
        for attempt in (1, 2):
            policy = self._get_policy(resource, target)
            if policy is None:
                raise ProviderError(f"{resource.key}: {target} does not exist")
            if not add_member(policy, role, member):
                return
            if any(b.HasField("condition") for b in policy.bindings):
                policy.version = POLICY_VERSION
            try:
                self._policy_client(resource).set_iam_policy(request={"resource": target, "policy": policy})
                return
            except gexc.Conflict as exc:  # 409 / ABORTED: the etag is stale
                if attempt == 2:
                    raise failed(resource.key, "setting the IAM policy", exc) from None
                ctx.progress(f"{resource.key}: IAM policy changed meanwhile; reading it again")
            except gexc.GoogleAPICallError as exc:
                raise failed(resource.key, "setting the IAM policy", exc) from None

    # ------------------------------------------------------------------ service accounts

    def _account_path(self, resource: Resource) -> str:
        return f"projects/{resource.project}/serviceAccounts/{account_email(resource.name, resource.project)}"

    def _observe_project(self, resource: Resource) -> dict[str, Any] | None:
        """The project's number and the Pub/Sub service agent derived from it (dead-letter forwarding acts as it).
        Google answers 403 for a project that does not exist as for one the caller cannot see: both are None."""
        try:
            project = self.projects.get_project(name=f"projects/{resource.name}")
        except (gexc.NotFound, gexc.Forbidden, gexc.PermissionDenied):
            return None
        except gexc.GoogleAPICallError as exc:
            raise failed(resource.key, "reading", exc) from None
        number = str(project.name).rsplit("/", 1)[-1]
        return {"number": number,
                "pubsub_service_agent": f"serviceAccount:service-{number}@gcp-sa-pubsub.iam.gserviceaccount.com"}

    def _observe_account(self, resource: Resource) -> dict[str, Any] | None:
        try:
            account = self.iam.get_service_account(name=self._account_path(resource))
        except gexc.NotFound:
            return None
        except gexc.GoogleAPICallError as exc:
            raise failed(resource.key, "reading the service account", exc) from None
        return {"display_name": account.display_name}

    def _create_account(self, resource: Resource, ctx: Context) -> None:
        display_name = str(ctx.resolve(resource.fields.get("display_name", "")))
        try:
            self.iam.create_service_account(request={
                "name": f"projects/{resource.project}", "account_id": resource.name,
                "service_account": {"display_name": display_name}})
        except gexc.Conflict:
            return  # already exists
        except gexc.GoogleAPICallError as exc:
            raise failed(resource.key, "creating the service account", exc) from None
        # IAM is eventually consistent: wait until the account reads back, so bindings on it succeed.
        poll = poll_seconds(POLL_SECONDS)
        for _ in range(VISIBLE_TRIES):
            if self._observe_account(resource) is not None:
                return
            ctx.progress(f"{resource.key}: waiting for the new service account to become visible")
            time.sleep(poll)
        raise ProviderError(f"{resource.key}: created, but still not readable after {VISIBLE_TRIES} tries")

    # ------------------------------------------------------------------ policies

    def _policy_target(self, resource: Resource, ctx: Context) -> str:
        """The resource whose policy holds the binding: the project, or the service account (`-`: Google
        finds the account's project from its e-mail)."""
        if resource.kind == "project-iam-binding":
            return f"projects/{resource.project}"
        email = account_email(str(ctx.resolve(resource.fields["account"])), resource.project)
        return f"projects/-/serviceAccounts/{email}"

    def _get_policy(self, resource: Resource, target: str) -> Any:
        """The policy of `target` (a google.iam.v1 Policy message), or None when `target` does not exist."""
        try:
            return self._policy_client(resource).get_iam_policy(request={
                "resource": target, "options": {"requested_policy_version": POLICY_VERSION}})
        except gexc.NotFound:
            return None
        except gexc.GoogleAPICallError as exc:
            raise failed(resource.key, "reading the IAM policy", exc) from None

    def _policy_client(self, resource: Resource) -> Any:
        return self.projects if resource.kind == "project-iam-binding" else self.iam
