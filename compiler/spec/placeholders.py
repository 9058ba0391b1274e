"""Placeholder values (`TODO-...`) in a spec: a value only a person can decide, refused where it is written.

`new-cluster` and `import-env` write a placeholder for every value they cannot settle (a GCP project, a Cloud
SQL instance, the static IP, a Redis host, ...). A placeholder must never reach a cluster, so loading a spec
(`build`, `check`, `validate`, `render`, ...) refuses it at its file:line:col, saying what the value is. The same
placeholder written at several places stands for one value (a datastack name used in four sections): set it
to the same value everywhere.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Iterator, Mapping
from typing import Any

from compiler.errors import Problem
from compiler.spec.yamlio import Document, Loc

PLACEHOLDER_RE = re.compile(r"\bTODO-[A-Za-z0-9_.-]*")

_SQL = "the Cloud SQL instance of this cluster (a name no other cluster uses in this project, e.g. cave-{name}-sql)"
_BUCKET = ("a bucket (or bucket/path, without gs://) this cluster writes and no other cluster writes, e.g. "
           "{project}-{field}; or another cluster's bucket it only reads, listed under read_only.buckets")
_REDIS = ("the host of Memorystore {instance}: `python -m compiler bootstrap {name} --apply` creates it and prints "
          "its host (bootstrap accepts this placeholder until then); redis-master.redis.svc.cluster.local with "
          "redis.in_cluster: true")

# What a value is, by where it is (`*` matches any key or index). The first match wins.
BY_LOC: tuple[tuple[tuple[str, ...], str], ...] = (
    (("gcp", "project"), "the GCP project id of this cluster: a project of its own, or another cluster's project "
                         "shared on purpose (every resource name in it must still differ)"),
    (("gcp", "region"), "the GCP region of the cluster, like us-east1"),
    (("gcp", "zone"), "the GCP zone of the cluster, a zone of gcp.region like us-east1-b"),
    (("cloud_sql", "instance"), _SQL),
    (("static_ip",), "the regional static IP address daf-{name} ingress-nginx serves on: `python -m compiler "
                     "bootstrap {name} --apply` reserves it and prints it (bootstrap accepts this placeholder until "
                     "then)"),
    (("argocd", "name"), "this cluster's name in Argo CD, as registered with `argocd cluster add <kube-context> "
                         "--name daf-{name}` (each cluster has its own)"),
    (("argocd", "server"), "this cluster's API server URL as `argocd cluster list` shows it (each cluster has its "
                           "own; https://kubernetes.default.svc only for the cluster Argo CD runs in)"),
    (("redis", "host"), _REDIS.replace("{instance}", "daf-redis-{name}")),
    (("redis", "celery_host"), _REDIS.replace("{instance}", "daf-celery-redis-{name}")),
    (("redis", "pcg_host"), _REDIS.replace("{instance}", "daf-pcg-cache-{name}")),
    (("secrets", "*"), "the Secret Manager secret holding this value for this cluster: a name of its own "
                       "(default {name}-<key with dashes>; delete the line to use it)"),
    (("data", "project"), "the GCP project of the cluster's Bigtable and PCG data (may be shared between clusters)"),
    (("data", "bigtable_instance"), "the Bigtable instance (in data.project) holding this cluster's PCG and L2 "
                                    "cache tables: an instance of its own, or a shared one in which this cluster's "
                                    "tables (services.pychunkedgraph.graph_ids, l2cache_id) are its own"),
    (("data", "pcg_bucket"), _BUCKET.replace("{field}", "pcg-edges")),
    (("services", "nglstate", "bucket"), _BUCKET.replace("{field}", "nglstate")),
    (("services", "skeletoncache", "bucket"), _BUCKET.replace("{field}", "skeletons")),
    (("services", "materializationengine", "upload_bucket"),
     "a bucket of this cluster's own for CSV uploads Cloud SQL imports, e.g. {project}-uploads"),
    (("services", "materializationengine", "dump_bucket"), _BUCKET.replace("{field}", "dumps")),
    (("services", "l2cache", "tables", "*", "l2cache_id"),
     "the Bigtable table id of this graph's L2 cache, in data.bigtable_instance"),
    (("dns", "domain"), "the DNS domain of the cluster's hostname <name>.<domain>, like cave.example.org"),
    (("dns", "zone"), "the Cloud DNS zone (a key of dns.zones) holding the primary hostname"),
    (("dns", "zones", "*"), "a Cloud DNS managed zone: its name (a lowercase label) and DNS name"),
    (("dns", "extra_hostnames", "*", "hostname"), "another hostname of this cluster, inside its zone and used by no "
                                                  "other cluster (or delete the entry)"),
    (("tls", "email"), "the e-mail address Let's Encrypt sends certificate notices to"),
    (("global_server",), "the hostname of the global cluster this local cluster uses (its auth and info services)"),
)

# What a value is, by the placeholder itself (one placeholder at several places is one value).
BY_NAME: tuple[tuple[str, str], ...] = (
    ("TODO-datastack-", "a datastack name of this cluster, registered in its global cluster's info service and "
                        "registered by no other cluster"),
    ("TODO-aligned-volume-", "an aligned volume name (the images of a datastack), in the global info service"),
    ("TODO-graph-", "a PCG graph id (Bigtable table) of this cluster, in data.bigtable_instance"),
    ("TODO-l2cache-", "the Bigtable table id of this graph's L2 cache, in data.bigtable_instance"),
    ("TODO-image-source", "where the aligned volume's EM imagery is, like precomputed://gs://bucket/path"),
    ("TODO-dataset", "the auth dataset of the aligned volume (the permission group that may read it)"),
    ("TODO-hostname-", "another hostname of this cluster, inside its zone and used by no other cluster "
                       "(or delete the entry)"),
)


# Values Google picks when bootstrap creates the resource: `bootstrap` accepts a placeholder there
# (static_ip is then unset), since they are how the operator learns the value.
OUTPUTS: frozenset[Loc] = frozenset({("static_ip",), ("redis", "host"), ("redis", "celery_host"),
                                     ("redis", "pcg_host")})


def pending_outputs(doc: Document) -> tuple[Document, set[tuple[int, int]]]:
    """`doc` without a placeholder static_ip, and the positions of the placeholders at OUTPUTS (still to learn)."""
    waiting = {doc.position(loc) for loc, _, is_key in find(doc.data) if not is_key and loc in OUTPUTS}
    data = doc.data
    if isinstance(data, Mapping) and isinstance(data.get("static_ip"), str) and PLACEHOLDER_RE.search(
            data["static_ip"]):
        doc = copy.copy(doc)
        doc.data = {k: v for k, v in data.items() if k != "static_ip"}
    return doc, waiting


def _matches(pattern: tuple[str, ...], loc: Loc) -> bool:
    return len(pattern) == len(loc) and all(p in ("*", str(part)) for p, part in zip(pattern, loc, strict=True))


def _context(data: Any) -> dict[str, str]:
    out = {"name": "<name>", "region": "<region>", "project": "<project>"}
    if isinstance(data, Mapping):
        if isinstance(data.get("name"), str) and not PLACEHOLDER_RE.search(data["name"]):
            out["name"] = data["name"]
        gcp = data.get("gcp")
        if isinstance(gcp, Mapping):
            for key in ("region", "project"):
                if isinstance(gcp.get(key), str) and not PLACEHOLDER_RE.search(gcp[key]):
                    out[key] = gcp[key]
    return out


def describe(loc: Loc, placeholder: str, data: Any = None) -> str:
    """What the value at `loc` is, in words, for the message and the TODO comment (`data`: the spec, for names)."""
    for prefix, what in BY_NAME:
        if placeholder.startswith(prefix):
            return what
    for pattern, what in BY_LOC:
        if _matches(pattern, loc):
            return what.format_map(_context(data))
    return "the value this spec needs here (read the TODO comment beside it)"


def _dotted(loc: Loc) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "(top level)"


def find(data: Any, loc: Loc = ()) -> Iterator[tuple[Loc, str, bool]]:
    """(location, placeholder, is a key) of every placeholder in plain spec data, in document order."""
    if isinstance(data, Mapping):
        for key, value in data.items():
            child = (*loc, key)
            if isinstance(key, str) and (m := PLACEHOLDER_RE.search(key)):
                yield child, m.group(0), True
            yield from find(value, child)
    elif isinstance(data, list):
        for i, item in enumerate(data):
            yield from find(item, (*loc, i))
    elif isinstance(data, str) and (m := PLACEHOLDER_RE.search(data)):
        yield loc, m.group(0), False


def problems(doc: Document) -> list[Problem]:
    """One problem per placeholder of the spec, at its file:line:col, saying what to set."""
    found = list(find(doc.data))
    counts: dict[str, int] = {}
    for _, placeholder, _ in found:
        counts[placeholder] = counts.get(placeholder, 0) + 1
    out: list[Problem] = []
    for loc, placeholder, is_key in found:
        what = describe(loc, placeholder, doc.data)
        text = f"{_dotted(loc)}: placeholder {placeholder}{' (a key)' if is_key else ''}: set it: {what}"
        if counts[placeholder] > 1:
            text += f" (one value: the same at all {counts[placeholder]} places {placeholder} is written)"
        out.append(doc.problem(loc, text, key=is_key))
    return out
