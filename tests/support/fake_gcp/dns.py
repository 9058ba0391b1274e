"""Fake Cloud DNS API v1: managed zones, record sets (paged list with name/type filters) and changes.

A change answers status "pending" and reports "done" on the first changes.get (at once with `polls=0`).
A new zone holds its SOA and NS record sets, as Cloud DNS's do. Record names must lie inside the zone.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from typing import Any

from tests.support.fake_gcp.server import FakeServer, Request, Response, error

Z = r"/dns/v1/projects/(?P<project>[^/]+)/managedZones"
NOW = "2024-01-01T00:00:00.000Z"


@dataclass
class DnsFake(FakeServer):
    zones: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict)
    records: dict[tuple[str, str], list[dict[str, Any]]] = field(default_factory=dict)
    changes: dict[tuple[str, str, str], dict[str, Any]] = field(default_factory=dict)
    polls: int = 1
    page_size: int = 2  # small, so listing exercises nextPageToken
    _pending: dict[tuple[str, str, str], int] = field(default_factory=dict)
    _ids: itertools.count[int] = field(default_factory=lambda: itertools.count(1))

    def __post_init__(self) -> None:
        self.route("POST", Z, self.create_zone)
        self.route("GET", Z + r"/(?P<zone>[^/]+)", self.get_zone)
        self.route("GET", Z + r"/(?P<zone>[^/]+)/rrsets", self.list_rrsets)
        self.route("POST", Z + r"/(?P<zone>[^/]+)/changes", self.create_change)
        self.route("GET", Z + r"/(?P<zone>[^/]+)/changes/(?P<change>[^/]+)", self.get_change)

    # ------------------------------------------------------------------ helpers for tests

    def add_zone(self, project: str, name: str, dns_name: str) -> None:
        self._store_zone(project, {"name": name, "dnsName": dns_name, "description": ""})

    def add_record(self, project: str, zone: str, name: str, type_: str, ttl: int, rrdatas: list[str]) -> None:
        self.records[(project, zone)].append(self._record(name, type_, ttl, rrdatas))

    def record(self, project: str, zone: str, name: str, type_: str) -> dict[str, Any] | None:
        return next((r for r in self.records[(project, zone)] if r["name"] == name and r["type"] == type_), None)

    # ------------------------------------------------------------------ routes

    @staticmethod
    def _record(name: str, type_: str, ttl: int, rrdatas: list[str]) -> dict[str, Any]:
        return {"kind": "dns#resourceRecordSet", "name": name, "type": type_, "ttl": ttl, "rrdatas": list(rrdatas)}

    def _parsed(self, item: dict[str, Any]) -> dict[str, Any]:
        """A record set from a change body (its ttl is an int32, which clients may send as a string)."""
        return self._record(item["name"], item["type"], int(item["ttl"]), item["rrdatas"])

    def _store_zone(self, project: str, body: dict[str, Any]) -> dict[str, Any]:
        shard = "a" if len(self.zones) % 2 == 0 else "b"
        servers = [f"ns-cloud-{shard}{i}.googledomains.com." for i in range(1, 5)]
        zone = {"kind": "dns#managedZone", "name": body["name"], "dnsName": body["dnsName"],
                "description": body.get("description", ""), "id": str(4000000000 + len(self.zones)),
                "nameServers": servers, "creationTime": NOW, "visibility": body.get("visibility", "public"),
                "dnssecConfig": {"kind": "dns#managedZoneDnsSecConfig",
                                 "state": body.get("dnssecConfig", {}).get("state", "off")},
                "cloudLoggingConfig": {"kind": "dns#managedZoneCloudLoggingConfig"}}
        self.zones[(project, body["name"])] = zone
        self.records[(project, body["name"])] = [
            self._record(body["dnsName"], "NS", 21600, servers),
            self._record(body["dnsName"], "SOA", 21600, [f"{servers[0]} cloud-dns-hostmaster.google.com. "
                                                         "1 21600 3600 259200 300"]),
        ]
        return zone

    def _no_zone(self, name: str) -> Response:
        return error(404, f"The 'parameters.managedZone' resource named '{name}' does not exist.", "notFound")

    def create_zone(self, req: Request) -> Response:
        project, body = req.match["project"], req.body or {}
        name, dns_name = body.get("name", ""), body.get("dnsName", "")
        if not name:
            return error(400, "Required field 'entity.managedZone.name' not specified", "required")
        if not dns_name.endswith("."):
            return error(400, f"Invalid value for 'entity.managedZone.dnsName': '{dns_name}'", "invalid")
        if (project, name) in self.zones:
            return error(409, f"The resource 'entity.managedZone' named '{name}' already exists", "alreadyExists")
        return 200, self._store_zone(project, body)

    def get_zone(self, req: Request) -> Response:
        key = (req.match["project"], req.match["zone"])
        return (200, self.zones[key]) if key in self.zones else self._no_zone(key[1])

    def list_rrsets(self, req: Request) -> Response:
        key = (req.match["project"], req.match["zone"])
        if key not in self.zones:
            return self._no_zone(key[1])
        name, type_ = req.arg("name"), req.arg("type")
        if type_ and not name:
            return error(400, "Invalid value for 'parameters.name': '' (required when type is set)", "invalid")
        found = [r for r in self.records[key] if (not name or r["name"] == name) and (not type_ or r["type"] == type_)]
        start = int(req.arg("pageToken") or 0)
        size = min(int(req.arg("maxResults") or self.page_size), self.page_size)
        body: dict[str, Any] = {"kind": "dns#resourceRecordSetsListResponse", "rrsets": found[start:start + size]}
        if start + size < len(found):
            body["nextPageToken"] = str(start + size)
        return 200, body

    def create_change(self, req: Request) -> Response:
        project, zone_name, body = req.match["project"], req.match["zone"], req.body or {}
        key = (project, zone_name)
        if key not in self.zones:
            return self._no_zone(zone_name)
        suffix = self.zones[key]["dnsName"]
        records = self.records[key]
        additions, deletions = body.get("additions", []), body.get("deletions", [])
        for i, deletion in enumerate(deletions):
            if self._parsed(deletion) not in records:
                return error(412, f"The resource 'entity.change.deletions[{i}]' named '{deletion['name']} "
                                  f"({deletion['type']})' does not exist or does not match", "conditionNotMet")
        for i, addition in enumerate(additions):
            name, type_ = addition.get("name", ""), addition.get("type", "")
            if not (name == suffix or name.endswith("." + suffix)):
                return error(400, f"Invalid value for 'entity.change.additions[{i}].name': '{name}'", "invalid")
            if not addition.get("rrdatas"):
                return error(400, f"Required field 'entity.change.additions[{i}].rrdata' not specified", "required")
            if any(r["name"] == name and r["type"] == type_ for r in records
                   if not any(d["name"] == name and d["type"] == type_ for d in deletions)):
                return error(409, f"The resource 'entity.change.additions[{i}]' named '{name} ({type_})' already "
                                  "exists", "alreadyExists")
        for deletion in deletions:
            records.remove(self._parsed(deletion))
        records.extend(self._parsed(addition) for addition in additions)
        change_id = str(next(self._ids))
        change = {"kind": "dns#change", "additions": [self._parsed(a) for a in additions],
                  "deletions": [self._parsed(d) for d in deletions], "startTime": NOW, "id": change_id,
                  "status": "pending" if self.polls else "done", "isServing": self.polls == 0}
        self.changes[(project, zone_name, change_id)] = change
        self._pending[(project, zone_name, change_id)] = self.polls
        return 200, change

    def get_change(self, req: Request) -> Response:
        key = (req.match["project"], req.match["zone"], req.match["change"])
        if key not in self.changes:
            return error(404, f"The 'parameters.changeId' resource named '{key[2]}' does not exist.", "notFound")
        if self._pending[key] > 1:
            self._pending[key] -= 1
        else:
            self.changes[key].update(status="done", isServing=True)
        return 200, self.changes[key]
