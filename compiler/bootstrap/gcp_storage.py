"""Cloud Storage buckets and their IAM bindings (google-cloud-storage, JSON API).

Buckets use uniform bucket-level access: permissions come only from IAM bindings, which bootstrap adds one
member at a time with a read-modify-write of the bucket's policy that keeps everyone else's bindings. A binding
may be on a requester-pays bucket of another project (the proxy's): its `params.user_project` is sent with each
request as the project billed.
"""

from __future__ import annotations

from functools import cached_property
from typing import Any

from compiler.bootstrap.gcp_common import LABELS, failed, per_project
from compiler.bootstrap.model import Context, ProviderError, Resource

POLICY_VERSION = 3  # read conditional bindings too, so a write does not drop them
ETAG_RETRIES = 5  # a concurrent policy change makes set_iam_policy fail with 412; read again and retry


class StorageProvider:
    """bucket and bucket-iam-binding."""

    kinds = frozenset({"bucket", "bucket-iam-binding"})
    _api = cached_property(lambda self: per_project("google.cloud.storage", "Client", "storage"))  # creation bills it

    def observe(self, resource: Resource, ctx: Context) -> dict[str, Any] | None:
        from google.api_core import exceptions

        try:
            if resource.kind == "bucket":
                bucket = self._api(resource.project).get_bucket(resource.name)
                return {"location": str(bucket.location).upper(),
                        "uniform_access": bool(bucket.iam_configuration.uniform_bucket_level_access_enabled)}
            bucket_name, role, member = self._binding(resource, ctx)
            policy = self._bucket(resource, bucket_name).get_iam_policy(requested_policy_version=POLICY_VERSION)
        except exceptions.NotFound:
            return None
        except exceptions.GoogleAPICallError as exc:
            raise failed(resource.key, "reading", exc) from None
        present = {"bucket": bucket_name, "role": role, "member": member}  # a present binding observes as itself
        return present if any(b["role"] == role and member in b["members"] and not b.get("condition")
                         for b in policy.bindings) else None

    def create(self, resource: Resource, ctx: Context) -> None:
        from google.api_core import exceptions

        try:
            if resource.kind == "bucket":
                self._create_bucket(resource, ctx)
            else:
                self._add_binding(resource, ctx)
        except exceptions.Conflict as exc:
            # Bucket names are global: the same 409 comes whether we or another project own the name.
            try:
                ours = self.observe(resource, ctx) is not None
            except ProviderError:
                ours = False
            if not ours:
                raise ProviderError(f"{failed(resource.key, 'create', exc)} (the name belongs to another project; "
                                    "choose another bucket name)") from None
        except exceptions.GoogleAPICallError as exc:
            raise failed(resource.key, "create", exc) from None

    def _create_bucket(self, resource: Resource, ctx: Context) -> None:
        api = self._api(resource.project)
        bucket = api.bucket(resource.name)
        bucket.iam_configuration.uniform_bucket_level_access_enabled = bool(
            ctx.resolve(resource.fields.get("uniform_access", True)))
        bucket.labels = dict(LABELS)
        api.create_bucket(bucket, project=resource.project, location=str(ctx.resolve(resource.fields["location"])))

    def _add_binding(self, resource: Resource, ctx: Context) -> None:
        from google.api_core import exceptions

        bucket_name, role, member = self._binding(resource, ctx)
        bucket = self._bucket(resource, bucket_name)
        for attempt in range(ETAG_RETRIES):
            policy = bucket.get_iam_policy(requested_policy_version=POLICY_VERSION)
            bindings = list(policy.bindings)
            plain = [b for b in bindings if b["role"] == role and not b.get("condition")]
            if any(member in b["members"] for b in plain):
                return
            if plain:
                plain[0]["members"] = set(plain[0]["members"]) | {member}
            else:
                bindings.append({"role": role, "members": {member}})
            policy.bindings = bindings
            policy.version = POLICY_VERSION
            try:
                bucket.set_iam_policy(policy)
                return
            except exceptions.PreconditionFailed:
                if attempt == ETAG_RETRIES - 1:
                    raise
                ctx.progress(f"{resource.key}: the bucket's policy changed meanwhile; reading it again")

    def _bucket(self, resource: Resource, name: str) -> Any:
        """The bucket handle; with `params.user_project` (a requester-pays bucket of another project) every
        request names that project as the one billed (the JSON API's userProject)."""
        user_project = resource.params.get("user_project")
        return self._api(resource.project).bucket(name, user_project=str(user_project) if user_project else None)

    @staticmethod
    def _binding(resource: Resource, ctx: Context) -> tuple[str, str, str]:
        return (str(ctx.resolve(resource.fields["bucket"])), str(ctx.resolve(resource.fields["role"])),
                str(ctx.resolve(resource.fields["member"])))

