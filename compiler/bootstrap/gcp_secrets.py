"""Secret Manager secrets: created empty, then filled with a generated value or left for an operator.

Values travel only between Secret Manager and the API that needs them (a Cloud SQL password); they never
appear in messages, progress lines or logs. Payloads carry a CRC32C checksum both ways.
"""

from __future__ import annotations

import secrets
from functools import cached_property
from typing import Any

from compiler.bootstrap.gcp_common import LABELS, failed, rest_client
from compiler.bootstrap.model import Context, NeedsOperator, ProviderError, Resource


def add_command(project: str, secret_id: str) -> str:
    """The gcloud command an operator runs to give the secret a value."""
    return f"gcloud secrets versions add {secret_id} --project {project} --data-file=FILE"


class SecretsProvider:
    """The `secret` kind, and `access` for reading a secret's latest value (Context.secret_value)."""

    kinds = frozenset({"secret"})
    _api = cached_property(lambda self: rest_client("google.cloud.secretmanager", "SecretManagerServiceClient",
                                                    "secretmanager"))

    def observe(self, resource: Resource, ctx: Context) -> dict[str, Any] | None:
        from google.api_core import exceptions

        name = f"projects/{resource.project}/secrets/{resource.name}"
        try:
            secret = self._api.get_secret(name=name)
        except exceptions.NotFound:
            return None
        except exceptions.GoogleAPICallError as exc:
            raise failed(resource.key, "reading", exc) from None
        replication = "automatic" if "automatic" in secret.replication else "user-managed"
        return {"replication": replication, "versions": self._enabled_versions(resource.key, name)}

    def _enabled_versions(self, key: str, name: str) -> int:
        from google.api_core import exceptions
        from google.cloud import secretmanager

        enabled = secretmanager.SecretVersion.State.ENABLED
        try:
            pager = self._api.list_secret_versions(request={"parent": name, "filter": "state:ENABLED"})
            return sum(1 for version in pager if version.state == enabled)
        except exceptions.GoogleAPICallError as exc:
            raise failed(key, "listing its versions", exc) from None

    def create(self, resource: Resource, ctx: Context) -> None:
        from google.api_core import exceptions

        value = resource.params.get("value")
        if value not in ("generate", "operator"):
            raise ProviderError(f"{resource.key}: params.value must be 'generate' or 'operator', not {value!r}")
        name = f"projects/{resource.project}/secrets/{resource.name}"
        try:
            self._api.create_secret(request={
                "parent": f"projects/{resource.project}", "secret_id": resource.name,
                "secret": {"replication": {"automatic": {}}, "labels": dict(LABELS)}})
        except exceptions.Conflict:
            pass  # exists already (made by hand or by an earlier run): keep it, only fill it if empty
        except exceptions.GoogleAPICallError as exc:
            raise failed(resource.key, "create", exc) from None
        if self._enabled_versions(resource.key, name) > 0:
            return
        if value == "operator":
            hint = str(resource.params.get("hint") or f"secret {resource.name} needs a value from an operator")
            command = add_command(resource.project, resource.name)
            raise NeedsOperator(hint if command in hint else f"{hint}; add it with `{command}`")
        ctx.progress(f"{resource.key}: adding a generated value")
        self._add_version(resource.key, name, secrets.token_urlsafe(48))

    def _add_version(self, key: str, name: str, value: str) -> None:
        import google_crc32c
        from google.api_core import exceptions

        data = value.encode()
        try:
            self._api.add_secret_version(request={
                "parent": name, "payload": {"data": data, "data_crc32c": google_crc32c.value(data)}})
        except exceptions.GoogleAPICallError as exc:
            raise failed(key, "adding a value", exc) from None

    def access(self, project: str, secret_id: str) -> str:
        """The latest enabled value of a secret; ProviderError (saying how to add one) if there is none."""
        import google_crc32c
        from google.api_core import exceptions

        key = f"secret/{secret_id}"
        how = f"add a value with `{add_command(project, secret_id)}`"
        try:
            response = self._api.access_secret_version(
                name=f"projects/{project}/secrets/{secret_id}/versions/latest")
        except exceptions.NotFound:
            raise ProviderError(f"{key}: secret {secret_id} in project {project} does not exist or has no "
                                f"value; {how}") from None
        except (exceptions.BadRequest, exceptions.FailedPrecondition) as exc:  # e.g. the latest version is disabled
            raise ProviderError(f"{failed(key, 'reading the value', exc)}; {how}") from None
        except exceptions.GoogleAPICallError as exc:
            raise failed(key, "reading the value", exc) from None
        payload = response.payload
        data = bytes(payload.data)
        if "data_crc32c" in payload and google_crc32c.value(data) != payload.data_crc32c:
            raise ProviderError(f"{key}: the value read from Secret Manager failed its CRC32C check; try again")
        if not data:
            raise ProviderError(f"{key}: the latest version of secret {secret_id} in project {project} is empty; "
                                f"{how}")
        try:
            return data.decode()
        except UnicodeDecodeError:
            raise ProviderError(f"{key}: the value of secret {secret_id} is not UTF-8 text; {how}") from None

