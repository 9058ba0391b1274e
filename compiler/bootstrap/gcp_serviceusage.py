"""The Google APIs a project must have enabled (kind api), with google-cloud-service-usage's
`service_usage_v1.ServiceUsageClient` over REST.

A new project has most APIs disabled, and every other call bootstrap makes (creating the network, the GKE
cluster, Cloud SQL ...) fails with "API has not been used in project ... or it is disabled" until it is
enabled. So the API resources come first in every plan; a plan lists the disabled ones, and apply enables
them with `services:batchEnable` (a google.longrunning operation) before creating anything else.

The enabled APIs of a project are read once per project with `services.list` filtered on `state:ENABLED`
(one call for all its API rows, pages followed) and read again after enabling one. Bootstrap never disables
an API: other workloads of the project may use it.
"""

from __future__ import annotations

from functools import cached_property
from typing import Any

from compiler.bootstrap.gcp_common import CALL_ERRORS, failed, rest_client, short_name, wait_until
from compiler.bootstrap.model import Context, ProviderError, Resource

API = "serviceusage"
POLL_SECONDS = 2.0  # default; CAVE_GITOPS_POLL_SECONDS overrides
TIMEOUT_SECONDS = 10 * 60  # enabling takes seconds to a few minutes


def api_name(resource: Resource) -> str:
    """The service name of an api resource (`<project>:compute.googleapis.com` → compute.googleapis.com)."""
    return resource.name.rsplit(":", 1)[-1]


class ServiceUsageProvider:
    """api (no fields: it is enabled, or not)."""

    kinds = frozenset({"api"})
    _api = cached_property(lambda self: rest_client("google.cloud.service_usage_v1", "ServiceUsageClient", API))

    def __init__(self) -> None:
        self._enabled: dict[str, frozenset[str]] = {}  # project → the APIs enabled in it, as last listed
        self._run: Context | None = None  # the plan or apply the remembered lists belong to

    def enabled(self, project: str, resource: Resource, ctx: Context) -> frozenset[str]:
        """The APIs enabled in `project`: listed once per plan or apply (its Context), and again after this
        provider enabled one."""
        if ctx is not self._run:
            self._enabled, self._run = {}, ctx
        if project not in self._enabled:
            try:
                pages = self._api.list_services(request={"parent": f"projects/{project}", "filter": "state:ENABLED",
                                                         "page_size": 200})
                self._enabled[project] = frozenset(
                    (service.config.name or short_name(service.name)) for service in pages)
            except CALL_ERRORS as exc:
                raise failed(resource.key, f"listing the enabled APIs of project {project}", exc) from None
        return self._enabled[project]

    def observe(self, resource: Resource, ctx: Context) -> dict[str, Any] | None:
        return {} if api_name(resource) in self.enabled(resource.project, resource, ctx) else None

    def create(self, resource: Resource, ctx: Context) -> None:
        name = api_name(resource)
        try:
            operation = self._api.batch_enable_services(request={"parent": f"projects/{resource.project}",
                                                                 "service_ids": [name]})
        except CALL_ERRORS as exc:
            raise failed(resource.key, "enabling", exc) from None
        finally:
            self._enabled.pop(resource.project, None)  # read again: this or another caller may have enabled it
        try:
            wait_until(operation.done, resource, ctx, f"{name} to be enabled", TIMEOUT_SECONDS, POLL_SECONDS,
                       hint=f"operation {operation.operation.name}")
            result = operation.result(timeout=0)
        except CALL_ERRORS as exc:
            raise failed(resource.key, "enabling", exc) from None
        problems = [f"{short_name(f.service_id)}: {f.error_message}" for f in getattr(result, "failures", ())]
        if problems:
            raise ProviderError(f"{resource.key}: enabling failed: {'; '.join(problems)}")
