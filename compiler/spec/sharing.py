"""No two clusters write the same data: a cross-spec rule run by `check_all`, so `build` refuses and writes nothing.

A copy of a spec with only its name changed compiles, renders and validates, and its pods then write into the
other cluster's database with the other cluster's password, edit its PCG tables, fill its buckets and queues,
and re-register its datastacks in the info service. Nothing in a single spec can show that; this rule lists,
per spec, every piece of data the cluster writes with the spec value that causes it, and reports each piece
two clusters write, at both files:

    environments/a.yaml:L:C: <what> is also written by cluster b (environments/b.yaml:L:C) (how to fix)

Data legitimately shared read-only (a PCG table or bucket another cluster writes, a token meant for several
clusters) is declared in the reader's spec under `read_only:`; a reader is not counted as a writer.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from compiler import catalog
from compiler.errors import Problem
from compiler.spec.derive import (
    default_secret_name,
    derive,
    network_name,
    pubsub_layout,
    secret_keys,
    secret_manager_name,
    spec_buckets,
)
from compiler.spec.fleet import served_by_globals
from compiler.spec.model import ClusterSpec, GlobalCluster, L2cache, LocalCluster, Pychunkedgraph
from compiler.spec.yamlio import Document, Loc

Specs = dict[str, tuple[ClusterSpec, Document]]

_READ_ONLY_BUCKET = "or, if this cluster only reads it, list {value} under read_only.buckets"
_READ_ONLY_TABLE = "or, if this cluster only reads it, list {value} under read_only.bigtable_tables"
_READ_ONLY_SECRET = "or, if the value is meant to be shared and this cluster only reads it, list {value} under " \
                    "read_only.secret_keys"


@dataclass(frozen=True)
class Write:
    """One piece of data a cluster writes, and the spec value that makes it do so."""

    kind: str  # what class of data: the unit of comparison
    key: tuple[str, ...]  # identity within the kind (project, instance, table, ...)
    label: str  # how the message names it
    loc: Loc  # the spec value that causes the write
    fix: str  # how to resolve a clash, from this spec's side
    path: str = ""  # buckets: bucket/prefix, for overlap
    at_key: bool = False  # report at the key (mapping entries) rather than the value
    read_only: bool = False  # declared under `read_only:`: a reader, not a writer
    verb: str = "written"


def _bucket_overlap(a: str, b: str) -> bool:
    """Two bucket paths hold common objects: the same bucket, and one prefix is inside the other."""
    pa, pb = a.rstrip("/") + "/", b.rstrip("/") + "/"
    return pa.startswith(pb) or pb.startswith(pa)


def _clash(a: Write, b: Write) -> bool:
    return a.kind == b.kind and a.key == b.key and (a.kind != "bucket" or _bucket_overlap(a.path, b.path))


def _tables(spec: LocalCluster) -> list[tuple[str, Loc]]:
    """(Bigtable table, spec location) of the tables the cluster's services write in data.bigtable_instance."""
    out: list[tuple[str, Loc]] = []
    pcg = spec.services.settings("pychunkedgraph", Pychunkedgraph)
    if pcg is not None and pcg.enabled:
        out += [(gid, ("services", "pychunkedgraph", "graph_ids", i)) for i, gid in enumerate(pcg.graph_ids)]
    l2 = spec.services.settings("l2cache", L2cache)
    if l2 is not None and l2.enabled:
        out += [(t.l2cache_id, ("services", "l2cache", "tables", gid, "l2cache_id")) for gid, t in l2.tables.items()]
    return out


def _redis(spec: ClusterSpec) -> list[Write]:
    """The Memorystore instances the cluster writes (Celery queues, caches): one host in one VPC is one instance.
    An in-cluster Redis (`redis.in_cluster`) is the cluster's own whatever its service name."""
    if spec.redis.in_cluster:
        return []
    net = network_name(spec)
    hosts: list[tuple[str, Loc]] = ([(spec.redis.host, ("redis", "host"))] if isinstance(spec, GlobalCluster)
                                    else [(spec.redis.celery_host, ("redis", "celery_host")),
                                          (spec.redis.pcg_host, ("redis", "pcg_host"))])
    return [Write("redis", (spec.gcp.project, net, host), f"Memorystore host {host} (network {net})", loc,
                  f"each cluster gets its own Memorystore instances (daf-redis-<name>): set {'.'.join(map(str, loc))} "
                  "to the host `python -m compiler bootstrap` printed for this cluster", verb="used")
            for host, loc in {h: loc for h, loc in reversed(hosts)}.items()]  # one write per host (its first place)


def writes(spec: ClusterSpec, info_service: str = "") -> list[Write]:
    """Every piece of data the cluster writes, with the spec value that causes it.

    `info_service` names the global cluster whose info service a local registers its datastacks in (default:
    its global_server), so that locals reaching one global under two of its hostnames still clash.
    """
    ro = spec.read_only
    p = spec.gcp.project
    sql = spec.cloud_sql.instance
    out = [Write("cloud-sql", (p, sql), f"Cloud SQL instance {sql} (project {p})", ("cloud_sql", "instance"),
                 "give each cluster its own instance: set cloud_sql.instance to a new name")]
    for key in secret_keys(spec):
        name = secret_manager_name(spec, key)
        chosen = getattr(spec.secrets, key) is not None
        fix = f"set secrets.{key} to a secret of this cluster's own, by default {default_secret_name(spec.name, key)}"
        if catalog.is_operator_secret(key):
            fix += ", " + _READ_ONLY_SECRET.format(value=key)
        out.append(Write("secret", (p, name), f"Secret Manager secret {name} (project {p}, secrets.{key})",
                         ("secrets", key) if chosen else ("name",), fix,
                         read_only=key in ro.secret_keys and catalog.is_operator_secret(key)))
    for b in spec_buckets(spec):
        bucket, path = b.bucket, b.path
        own = "its own bucket" if b.loc[-1] == "upload_bucket" else (  # Cloud SQL imports from a bucket, no path
            f"its own bucket or path, like {bucket}/{spec.name}" if path != f"{bucket}/{spec.name}"
            else "its own bucket or path")
        out.append(Write("bucket", (bucket,), f"bucket gs://{path}", b.loc,
                         f"give each cluster {own}, " + _READ_ONLY_BUCKET.format(value=path), path=path,
                         read_only=path in ro.buckets))
    if spec.static_ip is not None:
        ip = str(spec.static_ip)
        out.append(Write("static-ip", (ip,), f"static_ip {ip}", ("static_ip",),
                         f"each cluster reserves its own regional address daf-{spec.name}: set static_ip to what "
                         f"`gcloud compute addresses describe daf-{spec.name} --region {spec.gcp.region}` prints",
                         verb="used"))
    out += _redis(spec)
    if not isinstance(spec, LocalCluster):
        return out
    data = spec.data
    for table, loc in _tables(spec):
        out.append(Write("bigtable", (data.project, data.bigtable_instance, table),
                         f"Bigtable table {table} (project {data.project}, instance {data.bigtable_instance})", loc,
                         "give each cluster its own table or data.bigtable_instance, "
                         + _READ_ONLY_TABLE.format(value=table), read_only=table in ro.bigtable_tables))
    layout = pubsub_layout(spec, derive(spec))
    pubsub = [("topic", t) for t in layout.topics] + [("subscription", s.name) for s in layout.subscriptions]
    for what, name in pubsub:
        out.append(Write(f"pubsub-{what}", (p, name), f"Pub/Sub {what} {name} (project {p})", ("name",),
                         "Pub/Sub names derive from the cluster name: rename one of the clusters"))
    if spec.registry is not None:
        info = info_service or spec.global_server
        for ds in spec.registry.datastacks:
            out.append(Write("datastack", (info, ds),
                             f"datastack {ds} (info service of {info})", ("registry", "datastacks", ds),
                             "the info service holds one entry per datastack name: register it in one cluster only "
                             "or rename it", at_key=True, verb="registered"))
    return out


def _unused_read_only(spec: ClusterSpec, doc: Document, found: list[Write]) -> Iterator[Problem]:
    """`read_only:` entries that name nothing this spec uses (a typo would silently excuse nothing)."""
    ro = spec.read_only
    buckets = sorted(w.path for w in found if w.kind == "bucket")
    tables = sorted(w.key[-1] for w in found if w.kind == "bigtable")
    planned = secret_keys(spec)
    keys = [k for k in planned if catalog.is_operator_secret(k)]
    for field, entries, used, what in (("buckets", ro.buckets, buckets, "bucket path"),
                                       ("bigtable_tables", ro.bigtable_tables, tables, "Bigtable table"),
                                       ("secret_keys", ro.secret_keys, keys, "secret an operator uploads")):
        for i, entry in enumerate(entries):
            if entry in used:
                continue
            listed = ", ".join(used) or "none"
            why = ""
            if field == "secret_keys" and entry in planned:
                why = f"bootstrap generates {entry}, so every cluster planning it writes it; "
            yield doc.problem(("read_only", field, i), f"read_only.{field}[{i}]: {entry!r} is not a {what} that this "
                                                       f"spec uses ({why}used here: {listed}; remove the entry)")


def shared_data(specs: Specs) -> Iterator[Problem]:
    """Each piece of data written by two or more clusters: a problem at every writer, naming the others."""
    served = served_by_globals({name: spec for name, (spec, _) in specs.items()})
    found: dict[str, list[Write]] = {}
    for name, (spec, doc) in sorted(specs.items()):
        info = served.get(spec.global_server, "") if isinstance(spec, LocalCluster) else ""
        found[name] = writes(spec, f"cluster {info}" if info else "")
        yield from _unused_read_only(spec, doc, found[name])

    def where(cluster: str, w: Write) -> str:
        doc = specs[cluster][1]
        line, col = doc.position(w.loc, key=w.at_key)
        return f"{doc.path}:{line}:{col}"

    writers = [(c, w) for c in sorted(found) for w in found[c] if not w.read_only]
    by_kind: dict[tuple[str, tuple[str, ...]], list[tuple[str, Write]]] = {}
    for c, w in writers:
        by_kind.setdefault((w.kind, w.key), []).append((c, w))
    for group in by_kind.values():
        if len({c for c, _ in group}) < 2:
            continue
        for cluster, w in group:
            others = sorted({(c, where(c, o)) for c, o in group if c != cluster and _clash(w, o)})
            if not others:
                continue
            also = " and ".join(f"cluster {c} ({at})" for c, at in others)
            doc = specs[cluster][1]
            yield doc.problem(w.loc, f"{w.label} is also {w.verb} by {also} ({w.fix})", key=w.at_key)
