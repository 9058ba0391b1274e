"""Cloud SQL for PostgreSQL: the instance, its databases and users (Cloud SQL Admin API v1).

Networking: instances get a public IPv4 address with no authorized networks and TLS required. Pods reach
them only through the Cloud SQL Auth Proxy sidecar (base/components), which authenticates with IAM and
encrypts; a private IP would need a Private Service Access peering that bootstrap does not manage.
Backups and deletion protection are on: bootstrap never deletes data and neither should a stray click.
"""

from __future__ import annotations

from functools import cached_property
from typing import Any

from compiler.bootstrap import clients
from compiler.bootstrap.gcp_common import LABELS, failed, one_line, wait_until
from compiler.bootstrap.model import Context, ProviderError, Resource

POLL_SECONDS = 5.0  # default; CAVE_GITOPS_POLL_SECONDS overrides
TIMEOUT_SECONDS = 45 * 60  # instance creation takes 5-15 minutes


def _edition(tier: str) -> str:
    """Postgres 16+ defaults to Enterprise Plus, which rejects the shared-core and custom tiers CAVE uses."""
    return "ENTERPRISE_PLUS" if tier.startswith("db-perf-optimized") else "ENTERPRISE"


class SqlProvider:
    """sql-instance, sql-database and sql-user through googleapiclient's sqladmin v1 (static discovery)."""

    kinds = frozenset({"sql-instance", "sql-database", "sql-user"})
    _api = cached_property(lambda self: _sqladmin())

    # ------------------------------------------------------------------ observe

    def observe(self, resource: Resource, ctx: Context) -> dict[str, Any] | None:
        if resource.kind == "sql-instance":
            instance = self._get_instance(resource, resource.project, resource.name)
            if instance is None:
                return None
            observed = {"region": instance.get("region", ""), "database_version": instance.get("databaseVersion", ""),
                        "tier": instance.get("settings", {}).get("tier", "")}
            if instance.get("serviceAccountEmailAddress"):  # the instance's own account (imports/exports to GCS)
                observed["service_account_member"] = f"serviceAccount:{instance['serviceAccountEmailAddress']}"
            return observed
        instance_name = str(ctx.resolve(resource.fields["instance"]))
        collection = "databases" if resource.kind == "sql-database" else "users"
        items = self._list(resource, collection, instance_name)
        if items is None or not any(item.get("name") == resource.name for item in items):
            return None
        return {"instance": instance_name}

    def _get_instance(self, resource: Resource, project: str, name: str) -> dict[str, Any] | None:
        """The instance, or None. Cloud SQL answers 403 instead of 404 for some missing instances, so a 403 is
        checked against instances.list before it counts as an error."""
        from googleapiclient.errors import HttpError

        try:
            return dict(self._api.instances().get(project=project, instance=name).execute())
        except HttpError as exc:
            if exc.status_code == 404:
                return None
            if exc.status_code == 403 and not self._listed(resource, project, name):
                return None
            raise failed(resource.key, "reading the instance", exc) from None

    def _listed(self, resource: Resource, project: str, name: str) -> bool:
        """Whether instances.list shows `name` (a caller without list permission gets the error)."""
        from googleapiclient.errors import HttpError

        instances = self._api.instances()
        request = instances.list(project=project)
        while request is not None:
            try:
                page = request.execute()
            except HttpError as exc:
                raise failed(resource.key, "listing instances", exc) from None
            if any(item.get("name") == name for item in page.get("items", [])):
                return True
            request = instances.list_next(request, page)
        return False

    def _list(self, resource: Resource, collection: str, instance_name: str) -> list[dict[str, Any]] | None:
        """Databases or users of the instance; None when the instance itself does not exist."""
        from googleapiclient.errors import HttpError

        api = getattr(self._api, collection)()
        try:
            page = api.list(project=resource.project, instance=instance_name).execute()
        except HttpError as exc:
            if exc.status_code in (403, 404) and self._get_instance(resource, resource.project, instance_name) is None:
                return None
            raise failed(resource.key, f"listing {collection}", exc) from None
        return list(page.get("items", []))

    # ------------------------------------------------------------------ create

    def create(self, resource: Resource, ctx: Context) -> None:
        if resource.kind == "sql-instance":
            self._create_instance(resource, ctx)
            return
        instance_name = str(ctx.resolve(resource.fields["instance"]))
        if resource.kind == "sql-database":
            body = {"name": resource.name, "instance": instance_name, "project": resource.project}
            request = self._api.databases().insert(project=resource.project, instance=instance_name, body=body)
        else:
            password = ctx.secret_value(resource.project, str(resource.params["password_secret"]))
            body = {"name": resource.name, "password": password, "instance": instance_name,
                    "project": resource.project}
            request = self._api.users().insert(project=resource.project, instance=instance_name, body=body)
        try:
            self._run(resource, ctx, request, f"{resource.kind} {resource.name} to be created on {instance_name}")
        except ProviderError as failure:
            # A database or user that already exists may fail as a 400 or an operation error, not as a 409.
            try:
                exists = self.observe(resource, ctx) is not None
            except ProviderError:
                exists = False
            if not exists:
                raise failure from None

    def _create_instance(self, resource: Resource, ctx: Context) -> None:
        tier = str(ctx.resolve(resource.fields["tier"]))
        password = ctx.secret_value(resource.project, str(resource.params["root_password_secret"]))
        body = {
            "name": resource.name,
            "region": str(ctx.resolve(resource.fields["region"])),
            "databaseVersion": str(ctx.resolve(resource.fields["database_version"])),
            "rootPassword": password,
            "settings": {
                "tier": tier,
                "edition": _edition(tier),
                "availabilityType": "ZONAL",
                "backupConfiguration": {"enabled": True, "pointInTimeRecoveryEnabled": True},
                "ipConfiguration": {"ipv4Enabled": True, "authorizedNetworks": [], "sslMode": "ENCRYPTED_ONLY"},
                "deletionProtectionEnabled": True,
                "userLabels": dict(LABELS),
            },
        }
        request = self._api.instances().insert(project=resource.project, body=body)
        created = self._run(resource, ctx, request, f"Cloud SQL instance {resource.name} to be created (5-15 minutes)")
        # 409 also means "name reserved": Cloud SQL keeps a deleted instance's name for up to a week.
        if not created and self._get_instance(resource, resource.project, resource.name) is None:
            raise ProviderError(f"{resource.key}: the name is taken (a recently deleted instance reserves it for up "
                                "to a week); choose another sql instance name")

    def _run(self, resource: Resource, ctx: Context, request: Any, what: str) -> bool:
        """Execute an insert and wait for its operation (`what` it does); False when Google answered 409 (already
        exists)."""
        from googleapiclient.errors import HttpError

        try:
            current = [request.execute()]
        except HttpError as exc:
            if exc.status_code == 409:
                return False
            raise failed(resource.key, "create", exc) from None

        def refresh() -> None:
            try:
                current[0] = self._api.operations().get(project=resource.project,
                                                        operation=current[0]["name"]).execute()
            except HttpError as exc:
                raise failed(resource.key, "reading the operation", exc) from None

        wait_until(lambda: current[0].get("status") == "DONE", resource, ctx, what, TIMEOUT_SECONDS, POLL_SECONDS,
                   refresh=refresh, hint=f"operation {current[0].get('name')}; check `gcloud sql operations list`")
        errors = current[0].get("error", {}).get("errors", [])
        if errors:
            text = "; ".join(f"{e.get('code', '')}: {e.get('message', '')}".strip(": ") for e in errors)
            raise ProviderError(f"{resource.key}: {one_line(text)}")
        return True


def _sqladmin() -> Any:
    """The sqladmin v1 service, from the discovery document shipped with googleapiclient."""
    from googleapiclient import discovery

    return discovery.build("sqladmin", "v1", credentials=clients.credentials(),
                           client_options=clients.client_options("sqladmin"), static_discovery=True,
                           cache_discovery=False)
