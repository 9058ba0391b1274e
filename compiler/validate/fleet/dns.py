"""Fleet rule `dns-zone`: one DNS name is one Cloud DNS managed zone in one project, and everything points there.

Only one zone per DNS name can be delegated at the registrar. When several clusters of a domain each create
their own public zone for it (the example fleet of 2026-12-06: global, minnie and fanc each planned `cave-demo`
= cave-demo.org. in their own project), the records and cert-manager DNS-01 challenges of all but one land in
zones nobody resolves: the hostnames do not resolve and no certificate is ever issued. The fix in the specs is
`dns.zone_owners` (one cluster, by default the domain's global cluster, creates the zone; the others only add
records to it, see compiler/spec/model.py `Dns`).

What is checked, from the bootstrap plans (`fleet.plans`) and the rendered overlays (`fleet.objects`):
- the managed zones the plans create (not those marked as owned by another cluster), grouped by DNS name:
  more than one (project, zone) for one DNS name is a finding at each creating spec's `dns.zones` entry;
- per cluster and hostname, the project holding its zone (any creating cluster's): the A record of the plan,
  the `cloudDNS.project` of the solver the Issuer uses for that hostname, and the roles/dns.admin grant of the
  cluster's cert-manager service account (plan) must all be there; a zone nobody creates is a finding too.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from compiler.bootstrap.desired import DNS_ADMIN
from compiler.build.argocd import DNS_ROLE
from compiler.render.manifests import get
from compiler.spec.derive import derive
from compiler.spec.model import ClusterSpec, GlobalCluster
from compiler.spec.yamlio import Loc
from compiler.validate.fleet import Fleet, fleet_rule
from compiler.validate.model import Finding, Obj, object_finding

RULE = "dns-zone"


@dataclass(frozen=True, order=True)
class Zone:
    """A managed zone a cluster's bootstrap creates."""

    dns_name: str  # with the trailing dot, as Cloud DNS holds it
    project: str
    name: str
    cluster: str


def created_zones(fleet: Fleet) -> dict[str, list[Zone]]:
    """DNS name -> the zones the bootstrap plans create for it (zones owned elsewhere are only read)."""
    out: dict[str, list[Zone]] = {}
    for cluster in fleet.clusters:
        for r in fleet.plans[cluster]:
            if r.kind == "dns-zone" and not r.owner:
                dns_name = str(r.fields["dns_name"])
                out.setdefault(dns_name, []).append(Zone(dns_name, r.project, r.name, cluster))
    return {k: sorted(v) for k, v in sorted(out.items())}


def _zone_loc(spec: ClusterSpec, zone: str) -> Loc:
    """Where the spec says where zone `zone` is: its dns.zone_owners entry, else its dns.zones entry."""
    return ("dns", "zone_owners", zone) if zone in spec.dns.zone_owners else ("dns", "zones", zone)


def _suggested_owner(fleet: Fleet, zones: list[Zone]) -> Zone:
    """The zone to keep: the global cluster's (every local of the domain depends on it), else the first."""
    globals_ = [z for z in zones if isinstance(fleet.spec(z.cluster), GlobalCluster)]
    return (globals_ or zones)[0]


def _duplicates(fleet: Fleet, created: dict[str, list[Zone]]) -> Iterator[Finding]:
    for dns_name, zones in created.items():
        if len({(z.project, z.name) for z in zones}) < 2:
            continue
        keep = _suggested_owner(fleet, zones)
        for z in zones:
            others = ", ".join(f"{o.cluster} creates zone {o.name!r} in project {o.project} "
                               f"({fleet.where(o.cluster, ('dns', 'zones', o.name))})"
                               for o in zones if o.cluster != z.cluster)
            fix = (f"keep this one and add `dns.zone_owners: {{{keep.name}: {{cluster: {keep.cluster}, project: "
                   f"{keep.project}}}}}` to the other specs, with the same zone name" if z == keep else
                   f"add `dns.zone_owners: {{{z.name}: {{cluster: {keep.cluster}, project: {keep.project}}}}}` here "
                   f"(zone name {keep.name!r}): {keep.cluster} creates and delegates it, this cluster only adds "
                   "its records and DNS-01 challenges")
            yield fleet.spec_finding(
                z.cluster, ("dns", "zones", z.name), RULE,
                f"{dns_name} has {len({(o.project, o.name) for o in zones})} managed zones: this cluster creates "
                f"zone {z.name!r} in project {z.project}, {others}; only one can be delegated at the registrar, "
                f"the records in the others never resolve ({fix})")


def _solver_for(solvers: list[Any], host: str) -> tuple[int, Any] | None:
    """The ACME solver cert-manager uses for `host`: a dnsNames match, else the longest dnsZones match, else one
    without a selector (cert-manager picks the most specific)."""
    best: tuple[int, int, Any] | None = None  # (specificity, index, solver)
    for i, solver in enumerate(solvers):
        selector = get(solver, "selector") or {}
        names, zones = get(selector, "dnsNames") or [], get(selector, "dnsZones") or []
        if host in names:
            rank = 10_000
        elif zones:
            matching = [len(z) for z in zones if isinstance(z, str) and (host == z or host.endswith("." + z))]
            if not matching:
                continue
            rank = max(matching)
        elif names:
            continue
        else:
            rank = 0
        if best is None or rank > best[0]:
            best = (rank, i, solver)
    return None if best is None else (best[1], best[2])


def _issuers(objects: list[Obj]) -> list[Obj]:
    return [o for o in objects if o.get("kind") in ("Issuer", "ClusterIssuer") and get(o, "spec", "acme", "solvers")]


def _pointers(fleet: Fleet, cluster: str, created: dict[str, list[Zone]]) -> Iterator[Finding]:
    spec = fleet.spec(cluster)
    names = derive(spec)
    plan = fleet.plans[cluster]
    member = f"serviceAccount:{names.gcp_service_account(DNS_ROLE)}"
    granted = {r.project for r in plan if r.kind == "project-iam-binding" and r.fields.get("role") == DNS_ADMIN
               and r.fields.get("member") == member}
    records = {r.name.rstrip("."): r for r in plan if r.kind == "dns-record"}
    reported: set[str] = set()
    for host, zone in zip(names.hostnames, names.hostname_zones, strict=True):
        if zone not in spec.dns.zones:
            continue  # the spec rules report an undeclared zone
        dns_name = spec.dns.zones[zone] + "."
        held = {(z.project, z.name) for z in created.get(dns_name, [])}
        projects = {p for p, _ in held}
        loc = _zone_loc(spec, zone)
        if not held:
            if zone not in reported:
                reported.add(zone)
                yield fleet.spec_finding(cluster, loc, RULE,
                                         f"no cluster creates a zone for {dns_name} ({host} is in it), so its A "
                                         f"record and DNS-01 challenges have nowhere to go (list zone {zone!r} "
                                         "without dns.zone_owners in the spec of the cluster that should own it)")
            continue
        where = " or ".join(f"zone {n!r} of project {p}" for p, n in sorted(held))
        record = records.get(host)
        if record is not None and (record.project, record.fields.get("zone")) not in held:
            yield fleet.spec_finding(cluster, loc, RULE,
                                     f"the A record of {host} goes into zone {record.fields.get('zone')!r} of "
                                     f"project {record.project}, which is not the zone of {dns_name} ({where}); "
                                     "set dns.zone_owners (cluster and project of the zone) or dns.project")
        if not projects & granted:
            yield fleet.spec_finding(cluster, loc, RULE,
                                     f"cert-manager's service account {names.gcp_service_account(DNS_ROLE)} is not "
                                     f"granted {DNS_ADMIN} in {' or '.join(sorted(projects))}, which holds the zone "
                                     f"of {host}, so its DNS-01 challenges fail (set dns.zone_owners or dns.project "
                                     "to that project: bootstrap then plans the grant)")
        for issuer in _issuers(fleet.objects.get(cluster, [])):
            found = _solver_for(get(issuer, "spec", "acme", "solvers"), host)
            if found is None:
                continue
            index, solver = found
            project = get(solver, "dns01", "cloudDNS", "project")
            if project is not None and project not in projects:
                yield object_finding(
                    cluster, issuer, f"spec.acme.solvers[{index}].dns01.cloudDNS.project", RULE,
                    f"solves DNS-01 for {host} in project {project}, which holds no zone for {dns_name} ({where}): "
                    f"its challenges never resolve (the build takes the project from dns.zone_owners / dns.project "
                    f"of {fleet.where(cluster, loc)}: fix the spec and run `python -m compiler build`)")


@fleet_rule(RULE)
def one_zone_per_dns_name(fleet: Fleet) -> Iterator[Finding]:
    """One zone per DNS name across the fleet; records, Issuer and DNS grant of each cluster in its project."""
    created = created_zones(fleet)
    yield from _duplicates(fleet, created)
    for cluster in fleet.clusters:
        yield from _pointers(fleet, cluster, created)
