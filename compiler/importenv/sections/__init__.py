"""The spec's sections, built in the order the spec lists them, each from the env variables it maps.

`build` writes the tree (compiler/importenv/specdoc.py) of everything but `secrets:`, whose names derive from
the validated spec (sections/secrets.py). The services section is compiler/importenv/services/.
"""

from __future__ import annotations

from collections.abc import Callable

from compiler.importenv.catalogue import Kind
from compiler.importenv.mapping import Mapper
from compiler.importenv.sections import cluster, dns
from compiler.importenv.services import section
from compiler.importenv.specdoc import Block

Section = Callable[[Mapper, Block], None]
BOTH: tuple[Kind, ...] = ("global", "local")
LOCAL: tuple[Kind, ...] = ("local",)
# (builder, the cluster kinds whose spec has that section), in spec order.
SECTIONS: tuple[tuple[Section, tuple[Kind, ...]], ...] = (
    (cluster.identity, BOTH),
    (cluster.gcp, BOTH),
    (cluster.global_server, LOCAL),
    (cluster.data, LOCAL),
    (dns.dns, BOTH),
    (cluster.tls, BOTH),
    (cluster.docker_repository, BOTH),
    (cluster.kubernetes_version, BOTH),
    (cluster.node_pools, BOTH),
    (cluster.cloud_sql, BOTH),
    (cluster.static_ip, BOTH),
    (cluster.redis, BOTH),
    (cluster.argocd_destination, BOTH),
    (cluster.local_lists, LOCAL),  # datastacks: before the services, which add the ones they use
    (section.services, BOTH),
)


def build(m: Mapper) -> Block:
    top = Block()
    for builder, kinds in SECTIONS:
        if m.kind in kinds:
            builder(m, top)
    return top
