"""Cloud DNS: public managed zones and the record sets of the clusters' hostnames (google-cloud-dns).

A record that exists with other values is reported, never replaced: moving a hostname to a new cluster is
an operator's decision (the old cluster may still serve it), as in CAVEdeployment's dns_setup.sh.
"""

from __future__ import annotations

from functools import cache, cached_property
from typing import Any

from compiler.bootstrap.gcp_common import failed, per_project, wait_until
from compiler.bootstrap.model import Context, ProviderError, Resource

POLL_SECONDS = 2.0  # default; CAVE_GITOPS_POLL_SECONDS overrides
TIMEOUT_SECONDS = 10 * 60


class DnsProvider:
    """dns-zone and dns-record."""

    kinds = frozenset({"dns-zone", "dns-record"})
    _api = cached_property(lambda self: per_project("google.cloud.dns", "Client", "dns"))  # a path holds the project

    def _zone(self, project: str, name: str, dns_name: str | None = None, description: str | None = None) -> Any:
        return _public_zone_class()(name, dns_name, client=self._api(project), description=description)

    def observe(self, resource: Resource, ctx: Context) -> dict[str, Any] | None:
        from google.api_core import exceptions

        try:
            if resource.kind == "dns-zone":
                zone = self._zone(resource.project, resource.name)
                zone.reload()
                return {"dns_name": zone.dns_name, "name_servers": sorted(zone.name_servers or [])}
            zone_name = str(ctx.resolve(resource.fields["zone"]))
            record_type = str(ctx.resolve(resource.fields["type"]))
            records = self._zone(resource.project, zone_name).list_resource_record_sets()
            found = [r for r in records if r.name == resource.name and r.record_type == record_type]
        except exceptions.NotFound:  # a missing zone holds no records
            return None
        except exceptions.GoogleAPICallError as exc:
            raise failed(resource.key, "reading", exc) from None
        if not found:
            return None
        return {"zone": zone_name, "type": record_type, "ttl": int(found[0].ttl),
                "rrdatas": sorted(str(value) for value in found[0].rrdatas)}

    def create(self, resource: Resource, ctx: Context) -> None:
        from google.api_core import exceptions

        try:
            if resource.kind == "dns-zone":
                dns_name = str(ctx.resolve(resource.fields["dns_name"]))
                description = str(resource.params.get("description") or f"{dns_name} (managed by cave-gitops)")
                self._zone(resource.project, resource.name, dns_name, description).create()
            else:
                self._add_record(resource, ctx)
        except exceptions.Conflict:
            return  # exists already; a record with other values shows up as "differs" on the next plan
        except exceptions.GoogleAPICallError as exc:
            raise failed(resource.key, "create", exc) from None

    def _add_record(self, resource: Resource, ctx: Context) -> None:
        zone = self._zone(resource.project, str(ctx.resolve(resource.fields["zone"])))
        values = [ctx.resolve(value) for value in ctx.resolve(resource.fields["rrdatas"])]
        if not values or any(value is None or value == "" for value in values):
            raise ProviderError(f"{resource.key}: a value of the record is not known yet; create what it refers to "
                                "first")
        rrdatas = [str(value) for value in values]
        changes = zone.changes()
        changes.add_record_set(zone.resource_record_set(resource.name, str(ctx.resolve(resource.fields["type"])),
                                                        int(ctx.resolve(resource.fields["ttl"])), rrdatas))
        changes.create()
        wait_until(lambda: changes.status == "done", resource, ctx, f"Cloud DNS to apply change {changes.name}",
                   TIMEOUT_SECONDS, POLL_SECONDS, refresh=changes.reload)


@cache
def _public_zone_class() -> Any:
    """ManagedZone that also sends visibility and DNSSEC (the library sends neither), so the zone is what we mean."""
    from google.cloud.dns.zone import ManagedZone

    class PublicZone(ManagedZone):  # type: ignore[misc]
        def _build_resource(self) -> dict[str, Any]:
            return {**super()._build_resource(), "visibility": "public", "dnssecConfig": {"state": "off"}}

    return PublicZone

