"""Settings of the global services beyond enabled, version and replicas: auth's default admins, the info
service's neuroglancer URL, nglstate's Datastore namespace and bucket."""

from __future__ import annotations

import re

from compiler.importenv import values as envvalues
from compiler.importenv.mapping import NAME_RE, Mapper, Skip, strip_gs
from compiler.importenv.specdoc import Block, Flow, Items


def auth(m: Mapper, block: Block, workloads: Block, enabled: bool) -> Skip | None:
    admins = m.convert("AUTH_DEFAULT_ADMINS", "services.auth.default_admins", envvalues.default_admins)
    if admins:
        block.add("default_admins", Items([Flow(a) for a in admins]), m.origin(m.var("AUTH_DEFAULT_ADMINS")))
    return None


def infoservice(m: Mapper, block: Block, workloads: Block, enabled: bool) -> Skip | None:
    url = m.text("NEUROGLANCER_VIEWER_URL", "services.infoservice.neuroglancer_url")
    if url:
        block.add("neuroglancer_url", url, m.origin(m.var("NEUROGLANCER_VIEWER_URL")))
    return None


def nglstate(m: Mapper, block: Block, workloads: Block, enabled: bool) -> Skip | None:
    namespace = m.text("JSON_DB_TABLE_NAME", "services.nglstate.datastore_namespace")
    if not namespace:
        return Skip("JSON_DB_TABLE_NAME (the Datastore namespace of the links) is not set")
    entry = block.add("datastore_namespace", namespace, m.origin(m.var("JSON_DB_TABLE_NAME")))
    if not NAME_RE.match(namespace):
        entry.value = re.sub(r"[^a-z0-9-]+", "-", namespace.lower()).strip("-") or "ngl-links"
        m.decision(entry, f"the running nglstate keeps links in Datastore namespace {namespace!r}, which the "
                          "spec's datastore_namespace does not accept (lowercase letters, digits, '-'); this "
                          "value is a new, empty namespace. Keeping the old links needs a spec change.")
    bucket = m.text("NGLSTATE_BUCKET_NAME", "services.nglstate.bucket")
    if bucket:
        block.add("bucket", strip_gs(bucket), m.origin(m.var("NGLSTATE_BUCKET_NAME")))
    return None
