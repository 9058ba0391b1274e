"""The project's Datastore database (kind datastore-database, name "(default)"): Firestore in Datastore mode,
which the JSON state service needs, with google-cloud-firestore's `firestore_admin_v1.FirestoreAdminClient`
over REST.

Its location can never change once created, so a differing location or type is only reported.
"""

from __future__ import annotations

from functools import cached_property
from typing import Any

from google.api_core import exceptions as gexc

from compiler.bootstrap.gcp_common import failed, rest_client, wait_until
from compiler.bootstrap.model import Context, Resource

POLL_SECONDS = 2.0  # default; CAVE_GITOPS_POLL_SECONDS overrides
TIMEOUT_SECONDS = 10 * 60


class FirestoreProvider:
    """Creates the Datastore-mode database when the project has none; never changes or deletes one."""

    kinds = frozenset({"datastore-database"})
    admin = cached_property(lambda self: rest_client("google.cloud.firestore_admin_v1", "FirestoreAdminClient",
                                                     "firestore"))

    def observe(self, resource: Resource, ctx: Context) -> dict[str, Any] | None:
        try:
            database = self.admin.get_database(name=f"projects/{resource.project}/databases/{resource.name}")
        except gexc.NotFound:
            return None
        except gexc.GoogleAPICallError as exc:
            raise failed(resource.key, "reading the database", exc) from None
        return {"location": database.location_id, "type": database.type_.name}

    def create(self, resource: Resource, ctx: Context) -> None:
        from google.cloud.firestore_admin_v1.types.database import Database

        type_name = str(ctx.resolve(resource.fields.get("type", "DATASTORE_MODE")))
        database = Database(location_id=str(ctx.resolve(resource.fields["location"])),
                            type_=getattr(Database.DatabaseType, type_name))
        try:
            operation = self.admin.create_database(parent=f"projects/{resource.project}", database=database,
                                                   database_id=resource.name)
        except gexc.Conflict:
            return  # ALREADY_EXISTS
        except gexc.GoogleAPICallError as exc:
            raise failed(resource.key, "creating the database", exc) from None
        try:
            wait_until(operation.done, resource, ctx, "the database to be created", TIMEOUT_SECONDS, POLL_SECONDS,
                       hint=f"operation {operation.operation.name}")
            operation.result()
        except gexc.GoogleAPICallError as exc:
            raise failed(resource.key, "creating the database", exc) from None
