"""The dns section: domain, the zone of the primary hostname, extra hostnames and the zone of each (DNS_ZONES
often repeats the hostnames instead: a template bug), and the zones another spec already creates (zone_owners)."""

from __future__ import annotations

import re

from compiler.importenv.mapping import Mapper
from compiler.importenv.specdoc import Block, Items


def dns(m: Mapper, top: Block) -> None:
    zone_var, domain_var = m.var("DNS_ZONE"), m.var("DOMAIN_NAME")
    zone = m.required("DNS_ZONE", "dns.zone")
    m.domain = m.required("DOMAIN_NAME", "dns.domain").lower().rstrip(".")
    m.primary = f"{m.name}.{m.domain}"
    dns = Block()
    dns.add("domain", m.domain, m.origin(domain_var), comment=f"primary hostname: {m.primary}")
    dns.add("zone", zone, m.origin(zone_var))
    zones = Block()
    dns.add("zones", zones)
    known = m.context.zones.get(zone)
    if known and (m.primary == known[0] or m.primary.endswith("." + known[0])):
        zones.add(zone, known[0], m.origin(zone_var), comment=f"as in environments/{known[1]}.yaml")
    else:
        zones.add(zone, m.domain, m.origin(zone_var),
                  comment="assumed: the zone of the primary hostname holds DOMAIN_NAME")
        m.note("assumption", zone_var, f"dns.zones.{zone}: its DNS name is assumed to be DOMAIN_NAME "
                                       f"({m.domain}); check `gcloud dns managed-zones describe {zone}`")
    hosts_var, zones_var = m.var("DNS_HOSTNAMES"), m.var("DNS_ZONES")
    hosts = m.items("DNS_HOSTNAMES", "dns.extra_hostnames")
    zone_names = m.items("DNS_ZONES", "dns.extra_hostnames[].zone")
    looks_like_hosts = any("." in z for z in zone_names[1:]) or (zone_names[1:] and zone_names[1:] == hosts[1:])
    bad_zones = bool(looks_like_hosts) or (len(zone_names) != len(hosts) and len(hosts) > 1)
    extras: list[Block] = []
    seen = {m.primary}
    for i, raw in enumerate(hosts):
        host = raw.lower().rstrip(".")
        if not host or host in seen:
            continue
        seen.add(host)
        item = Block()
        item.add("hostname", host, m.origin(hosts_var))
        z = None if bad_zones or i >= len(zone_names) else zone_names[i]
        zone_entry = item.add("zone", "", m.origin(zones_var))
        if z is None:
            z, how = _guess_zone(m, host, zones)
            reason = ("DNS_ZONES repeats the hostnames instead of naming Cloud DNS zones (the "
                      "render_local_env.py bug, docs/pitfalls.md#p11)" if looks_like_hosts else
                      "DNS_ZONES does not pair a zone with every hostname (docs/pitfalls.md#p11)")
            m.decision(zone_entry, f"{reason}: zone {how}; check `gcloud dns managed-zones list`.")
        zone_entry.value = z
        _add_zone(m, zones, z, host)
        extras.append(item)
    if extras:
        dns.add("extra_hostnames", Items(list(extras)))
    _zone_owners(m, dns, zones)
    top.add("dns", dns)
    server = m.var("GLOBAL_SERVER")
    if m.kind == "global" and server is not None:
        bare = re.sub(r"^[a-z]+://", "", server.text() or "").split("/")[0].lower()
        m.reported.add("GLOBAL_SERVER")
        if bare in seen:
            m.note("derived", server, "GLOBAL_SERVER: a global cluster serves auth and info on its own "
                                      "hostnames")
        else:
            m.note("decision", server, f"GLOBAL_SERVER={bare} is not a hostname of this cluster; local specs "
                                       f"name this global cluster by one of its hostnames ({m.primary})")


def _zone_owners(m: Mapper, dns: Block, zones: Block) -> None:
    """A zone an existing spec already creates stays that cluster's: this one only adds its records there
    (one zone per DNS name across the fleet; a second one could not be delegated)."""
    owners = Block()
    for entry in zones.entries:
        found = m.context.owners.get(str(entry.value))
        if found is None or found[0] != entry.key or found[1] == m.name:
            continue
        _, cluster, project = found
        owner = Block()
        owner.add("cluster", cluster)
        owner.add("project", project)
        owners.add(entry.key, owner, comment=f"created by environments/{cluster}.yaml: only our records here")
    if owners.entries:
        dns.add("zone_owners", owners)


def _guess_zone(m: Mapper, host: str, zones: Block) -> tuple[str, str]:
    for entry in zones.entries:
        if isinstance(entry.value, str) and (host == entry.value or host.endswith("." + entry.value)):
            return entry.key, f"{entry.key} chosen because it holds {entry.value}"
    for zone, (dns_name, cluster) in sorted(m.context.zones.items()):
        if host == dns_name or host.endswith("." + dns_name):
            return zone, f"{zone} taken from environments/{cluster}.yaml ({dns_name})"
    parent = host.split(".", 1)[1] if host.count(".") >= 2 else host
    guess = re.sub(r"[^a-z0-9-]", "-", parent)[:63].strip("-")
    return guess, f"{guess} guessed from the hostname"


def _add_zone(m: Mapper, zones: Block, zone: str, host: str) -> None:
    existing = zones.get(zone)
    if existing is not None:
        dns_name = str(existing.value)
        if host == dns_name or host.endswith("." + dns_name):
            return
        common = _common_suffix(dns_name, host)
        if common.count(".") >= 1:
            existing.value = common
            existing.comment = f"widened to hold {host}"
        return
    known = m.context.zones.get(zone)
    if known and (host == known[0] or host.endswith("." + known[0])):
        zones.add(zone, known[0], comment=f"as in environments/{known[1]}.yaml")
        return
    parent = host.split(".", 1)[1] if host.count(".") >= 2 else host
    entry = zones.add(zone, parent)
    m.decision(entry, f"the env file names zone {zone} but not its DNS name; guessed {parent} from "
                      f"{host}: check `gcloud dns managed-zones describe {zone} --format='value(dnsName)'`.")


def _common_suffix(a: str, b: str) -> str:
    out: list[str] = []
    for x, y in zip(reversed(a.split(".")), reversed(b.split(".")), strict=False):
        if x != y:
            break
        out.append(x)
    return ".".join(reversed(out))
