"""Names bootstrap and the cross-spec rules both use, derived once from a spec (compiler/spec/derive.py)."""

from __future__ import annotations

from compiler import catalog
from compiler.spec.derive import (
    OWNED_BUCKET_FIELDS,
    Subscription,
    derive,
    pubsub_layout,
    secret_keys,
    spec_buckets,
)
from compiler.spec.load import load_environments
from compiler.spec.model import LocalCluster
from tests.support import REPO

SPECS = load_environments(REPO)


def test_secret_keys_are_the_enabled_services_and_the_postgres_password() -> None:
    spec = SPECS["minnie"]
    assert "cave_token" in secret_keys(spec)  # its services call the global auth service
    bare = spec.model_copy(update={"services": type(spec.services)()})
    assert secret_keys(bare) == ["postgres_password"]  # Cloud SQL's, whatever runs


def test_pubsub_layout_of_minnie() -> None:
    spec = SPECS["minnie"]
    assert isinstance(spec, LocalCluster)
    layout = pubsub_layout(spec, derive(spec))
    assert "minnie_PCG_EDIT" in layout.topics and len(set(layout.topics)) == len(layout.topics)
    subs = {s.name: s for s in layout.subscriptions}
    assert subs["minnie_PCG_HIGH_PRIORITY_REMESH"] == Subscription(
        "minnie_PCG_HIGH_PRIORITY_REMESH", "minnie_PCG_EDIT", 600, 'attributes.remesh_priority="true"')
    dead = "minnie_SKELETON_CACHE_DEAD_LETTER"
    assert subs["minnie_SKELETON_CACHE_WORKER_LOW_PRIORITY"].dead_letter == dead
    assert not subs["minnie_SKELETON_CACHE_WORKER_DEAD_LETTER"].dead_letter
    assert all(s.topic in layout.topics and (not s.dead_letter or s.dead_letter in layout.topics)
               for s in layout.subscriptions)


def test_pubsub_layout_follows_the_enabled_services() -> None:
    spec = SPECS["minnie"]
    assert isinstance(spec, LocalCluster)
    off = {name: None for name in ("pychunkedgraph", "meshing", "skeletoncache")}
    l2_only = spec.model_copy(update={"services": spec.services.model_copy(update=off)})
    layout = pubsub_layout(l2_only, derive(l2_only))
    assert layout.topics == ("minnie_L2CACHE",)  # no trigger subscriptions without the PCG edits topic
    assert [s.name for s in layout.subscriptions] == ["minnie_L2CACHE_WORKER"]


def test_owned_bucket_fields_are_the_catalogues_own_buckets() -> None:
    """Every catalogue bucket_field bootstrap creates the bucket of (not requester-pays) is a field spec_buckets
    reads, and the other way round."""
    fields = {use.bucket_field for s in catalog.SERVICES for use in s.google
              if use.on == "bucket" and not use.requester_pays}
    fields |= {need.bucket_field for s in catalog.SERVICES for need in s.sql_instance_buckets}
    assert fields == {field for field, _ in OWNED_BUCKET_FIELDS}


def test_spec_buckets_of_minnie() -> None:
    spec = SPECS["minnie"]
    assert isinstance(spec, LocalCluster)
    by_field = {b.field: b for b in spec_buckets(spec)}
    pcg = by_field["data.pcg_bucket"]
    assert (pcg.bucket, pcg.project, pcg.location) == ("cave-demo-pcg-edges", spec.data.project,
                                                       spec.data.region.upper())
    skeletons = by_field["services.skeletoncache.bucket"]
    assert (skeletons.bucket, skeletons.path, skeletons.loc) == (
        "cave-demo-skeletons", "cave-demo-skeletons/minnie", ("services", "skeletoncache", "bucket"))
    assert skeletons.project == spec.gcp.project
