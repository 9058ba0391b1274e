"""Compute, GKE, Memorystore and Bigtable providers against fakes of their REST APIs (tests/support/fake_gcp), with
the real client libraries and ADC: observe, create, idempotent re-create, drift, errors, polling."""

from __future__ import annotations

from typing import Any

import pytest

from compiler.bootstrap.gcp_bigtable import BigtableProvider
from compiler.bootstrap.gcp_compute import ComputeProvider
from compiler.bootstrap.gcp_container import ContainerProvider, parse_taint
from compiler.bootstrap.gcp_redis import RedisProvider
from compiler.bootstrap.model import ProviderError, Ref, Resource
from tests.support.fake_gcp.bigtable import FakeBigtable
from tests.support.fake_gcp.cloud import context as ctx
from tests.support.fake_gcp.cloud import fake_fixture
from tests.support.fake_gcp.compute import FakeCompute
from tests.support.fake_gcp.container import FakeContainer
from tests.support.fake_gcp.redis import FakeRedis
from tests.support.fake_gcp.server import FakeServer

PROJECT = "my-project"
DATA_PROJECT = "my-data"
REGION, ZONE = "us-east1", "us-east1-b"
CLUSTER = "daf-minnie"

compute = fake_fixture(FakeCompute, "compute")
container = fake_fixture(FakeContainer, "container")
redis = fake_fixture(FakeRedis, "redis")
bigtable = fake_fixture(FakeBigtable, "bigtableadmin")


def posts(server: FakeServer) -> list[Any]:
    return [c for c in server.writes() if c.method == "POST"]


# ---------------------------------------------------------------------- resources as desired.py builds them

def network() -> Resource:
    return Resource("network", "daf-minnie-network", PROJECT, {"auto_create_subnetworks": False})


def subnet() -> Resource:
    return Resource("subnet", "daf-minnie-network-sub", PROJECT,
                    {"region": REGION, "network": "daf-minnie-network", "ip_cidr_range": "10.142.0.0/20"})


def address() -> Resource:
    return Resource("address", CLUSTER, PROJECT, {"region": REGION}, outputs={"address": None})


def pool_fields(name: str, machine: str = "t2d-standard-4", preemptible: bool = False,
                tainted: bool = True) -> dict[str, Any]:
    return {"cluster": CLUSTER, "location": ZONE, "machine_type": machine, "disk_size_gb": 40, "min_nodes": 1,
            "max_nodes": 10, "preemptible": preemptible, "taints": [f"pool={name}:NoSchedule"] if tainted else [],
            "sysctls": {"net.core.somaxconn": "32768"}}


POOLS = {"standard-pool": pool_fields("standard-pool"),
         "mesh-pool": pool_fields("mesh-pool", preemptible=True),
         "core-pool": pool_fields("core-pool", machine="e2-standard-2", tainted=False)}


def gke_cluster(kubernetes_version: str | None = "1.31") -> Resource:
    return Resource("gke-cluster", CLUSTER, PROJECT,
                    {"location": ZONE, "network": "daf-minnie-network", "subnetwork": "daf-minnie-network-sub",
                     "workload_pool": f"{PROJECT}.svc.id.goog", "release_channel": "REGULAR"},
                    params={"node_pools": [{"name": n, **f} for n, f in POOLS.items()],
                            "kubernetes_version": kubernetes_version})


def node_pool(name: str = "standard-pool", **changes: Any) -> Resource:
    return Resource("node-pool", name, PROJECT, {**POOLS.get(name, pool_fields(name)), **changes})


def redis_instance(**changes: Any) -> Resource:
    fields = {"region": REGION, "memory_size_gb": 1, "tier": "BASIC", "network": "daf-minnie-network",
              "redis_configs": {"maxmemory-policy": "allkeys-lru"}, **changes}
    return Resource("redis", "daf-pcg-cache-minnie", PROJECT, fields, outputs={"host": None})


def bigtable_instance() -> Resource:
    return Resource("bigtable-instance", "pychunkedgraph", DATA_PROJECT,
                    {"zone": ZONE, "storage_type": "SSD", "serve_nodes": 3, "clusters": 1})


# ---------------------------------------------------------------------- compute: network, subnet, address

def test_compute_observe_missing_is_none_without_writes(compute: FakeCompute) -> None:
    provider = ComputeProvider()
    for resource in (network(), subnet(), address()):
        assert provider.observe(resource, ctx()) is None
    assert compute.writes() == []
    assert [c.path for c in compute.calls] == [
        f"/compute/v1/projects/{PROJECT}/global/networks/daf-minnie-network",
        f"/compute/v1/projects/{PROJECT}/regions/{REGION}/subnetworks/daf-minnie-network-sub",
        f"/compute/v1/projects/{PROJECT}/regions/{REGION}/addresses/{CLUSTER}",
    ]


def test_compute_create_then_observe_equals_fields(compute: FakeCompute) -> None:
    provider = ComputeProvider()
    for resource in (network(), subnet(), address()):
        provider.create(resource, ctx())
    bodies = [c.body for c in posts(compute)]
    assert bodies == [
        {"name": "daf-minnie-network", "autoCreateSubnetworks": False},
        {"name": "daf-minnie-network-sub", "ipCidrRange": "10.142.0.0/20",
         "network": f"projects/{PROJECT}/global/networks/daf-minnie-network"},
        {"name": CLUSTER, "addressType": "EXTERNAL"},
    ]
    assert compute.networks[(PROJECT, "daf-minnie-network")]["autoCreateSubnetworks"] is False
    assert compute.subnets[(PROJECT, REGION, "daf-minnie-network-sub")]["ipCidrRange"] == "10.142.0.0/20"
    ip = compute.addresses[(PROJECT, REGION, CLUSTER)]["address"]
    compute.calls.clear()
    assert provider.observe(network(), ctx()) == dict(network().fields)
    assert provider.observe(subnet(), ctx()) == dict(subnet().fields)
    assert provider.observe(address(), ctx()) == {"region": REGION, "address": ip}
    assert compute.writes() == []


def test_compute_create_existing_is_success_without_duplicate(compute: FakeCompute) -> None:
    compute.add_network(PROJECT, "daf-minnie-network")
    compute.add_subnet(PROJECT, REGION, "daf-minnie-network-sub", "daf-minnie-network", "10.142.0.0/20")
    compute.add_address(PROJECT, REGION, CLUSTER, "34.1.2.3")
    provider = ComputeProvider()
    for resource in (network(), subnet(), address()):
        provider.create(resource, ctx())
    assert (len(compute.networks), len(compute.subnets), len(compute.addresses)) == (1, 1, 1)
    assert compute.addresses[(PROJECT, REGION, CLUSTER)]["address"] == "34.1.2.3"
    assert compute.operations == {}


def test_compute_observe_reports_differences(compute: FakeCompute) -> None:
    compute.add_network(PROJECT, "daf-minnie-network", auto=True)
    compute.add_network(PROJECT, "other")
    compute.add_subnet(PROJECT, REGION, "daf-minnie-network-sub", "other", "10.10.0.0/16")
    provider = ComputeProvider()
    assert provider.observe(network(), ctx()) == {"auto_create_subnetworks": True}
    assert provider.observe(subnet(), ctx()) == {"region": REGION, "network": "other", "ip_cidr_range": "10.10.0.0/16"}


def test_compute_waits_for_running_operations(compute: FakeCompute) -> None:
    compute.pending_polls = 1
    progress: list[str] = []
    provider = ComputeProvider()
    provider.create(network(), ctx(progress))
    provider.create(address(), ctx(progress))
    assert "network/daf-minnie-network: waiting for network creation" in progress
    assert f"address/{CLUSTER}: waiting for address creation" in progress
    ops = [c.path for c in compute.calls if "/operations/" in c.path]
    assert any("/global/operations/" in p for p in ops) and any(f"/regions/{REGION}/operations/" in p for p in ops)
    assert provider.observe(address(), ctx()) is not None


def test_compute_api_errors_are_one_line_provider_errors(compute: FakeCompute) -> None:
    provider = ComputeProvider()
    compute.fail("GET", "/global/networks/", 403, "Required 'compute.networks.get' permission for 'projects/x'")
    with pytest.raises(ProviderError) as read:
        provider.observe(network(), ctx())
    assert str(read.value) == ("network/daf-minnie-network: reading failed: Required 'compute.networks.get' "
                               "permission for 'projects/x' (HTTP 403)")
    compute.fail("POST", "/addresses", 400, "Invalid value for field 'resource.name'")
    with pytest.raises(ProviderError, match=rf"^address/{CLUSTER}: create failed: Invalid value for field "):
        provider.create(address(), ctx())
    compute.operation_error = "Quota 'STATIC_ADDRESSES' exceeded.  Limit: 8.0 in region us-east1."
    with pytest.raises(ProviderError) as failed:
        provider.create(address(), ctx())
    assert str(failed.value) == (f"address/{CLUSTER}: create failed: Quota 'STATIC_ADDRESSES' exceeded. "
                                 "Limit: 8.0 in region us-east1.")
    assert "\n" not in str(failed.value)


def test_subnet_needs_its_network(compute: FakeCompute) -> None:
    with pytest.raises(ProviderError, match="daf-minnie-network' was not found"):
        ComputeProvider().create(subnet(), ctx())


# ---------------------------------------------------------------------- GKE: cluster and node pools

def test_gke_observe_missing_is_none_without_writes(container: FakeContainer) -> None:
    provider = ContainerProvider()
    assert provider.observe(gke_cluster(), ctx()) is None
    assert provider.observe(node_pool(), ctx()) is None
    assert container.writes() == []
    assert [c.path for c in container.calls] == [
        f"/v1/projects/{PROJECT}/locations/{ZONE}/clusters/{CLUSTER}",
        f"/v1/projects/{PROJECT}/locations/{ZONE}/clusters/{CLUSTER}/nodePools/standard-pool",
    ]


def test_gke_cluster_is_created_with_all_node_pools(container: FakeContainer) -> None:
    container.pending_polls = 1
    progress: list[str] = []
    ContainerProvider().create(gke_cluster(), ctx(progress))
    assert progress == [f"gke-cluster/{CLUSTER}: waiting for cluster creation with 3 node pools"]
    (create,) = posts(container)
    assert create.path == f"/v1/projects/{PROJECT}/locations/{ZONE}/clusters"
    body = create.body["cluster"]
    assert body["name"] == CLUSTER and body["initialClusterVersion"] == "1.31"
    assert (body["network"], body["subnetwork"]) == ("daf-minnie-network", "daf-minnie-network-sub")
    assert body["workloadIdentityConfig"] == {"workloadPool": f"{PROJECT}.svc.id.goog"}
    assert body["ipAllocationPolicy"] == {"useIpAliases": True}
    assert body["shieldedNodes"] == {"enabled": True}
    assert [p["name"] for p in body["nodePools"]] == ["standard-pool", "mesh-pool", "core-pool"]
    stored = container.clusters[(PROJECT, ZONE, CLUSTER)]
    assert stored["releaseChannel"] == {"channel": "REGULAR"}
    mesh = next(p for p in stored["nodePools"] if p["name"] == "mesh-pool")
    assert mesh["autoscaling"] == {"enabled": True, "minNodeCount": 1, "maxNodeCount": 10}
    assert mesh["management"] == {"autoUpgrade": True, "autoRepair": True}
    config = mesh["config"]
    assert (config["machineType"], config["diskSizeGb"], config["preemptible"]) == ("t2d-standard-4", 40, True)
    assert config["taints"] == [{"key": "pool", "value": "mesh-pool", "effect": "NO_SCHEDULE"}]
    assert config["shieldedInstanceConfig"] == {"enableSecureBoot": True, "enableIntegrityMonitoring": True}
    assert config["workloadMetadataConfig"] == {"mode": "GKE_METADATA"}
    core = next(p for p in stored["nodePools"] if p["name"] == "core-pool")
    assert "taints" not in core["config"]


def test_gke_observe_after_create_equals_fields(container: FakeContainer) -> None:
    provider = ContainerProvider()
    provider.create(gke_cluster(), ctx())
    container.calls.clear()
    assert provider.observe(gke_cluster(), ctx()) == dict(gke_cluster().fields)
    for name in POOLS:
        assert provider.observe(node_pool(name), ctx()) == dict(node_pool(name).fields)
    assert container.writes() == []


def test_gke_without_version_leaves_it_to_the_release_channel(container: FakeContainer) -> None:
    ContainerProvider().create(gke_cluster(kubernetes_version=None), ctx())
    assert "initialClusterVersion" not in posts(container)[0].body["cluster"]


def test_gke_pool_added_later_is_created_alone(container: FakeContainer) -> None:
    provider = ContainerProvider()
    provider.create(gke_cluster(), ctx())
    container.pending_polls = 1
    progress: list[str] = []
    extra = node_pool("celery-pool", machine_type="e2-highcpu-8", max_nodes=4)
    provider.create(extra, ctx(progress))
    assert progress == ["node-pool/celery-pool: waiting for node pool creation"]
    create = posts(container)[-1]
    assert create.path == f"/v1/projects/{PROJECT}/locations/{ZONE}/clusters/{CLUSTER}/nodePools"
    assert create.body["nodePool"]["name"] == "celery-pool"
    assert provider.observe(extra, ctx()) == dict(extra.fields)


def test_gke_pool_waits_while_the_cluster_is_busy(container: FakeContainer) -> None:
    provider = ContainerProvider()
    provider.create(gke_cluster(), ctx())
    container.fail("POST", "/nodePools", 400, "Cluster is running incompatible operation operation-42.", times=2)
    progress: list[str] = []
    provider.create(node_pool("celery-pool"), ctx(progress))
    assert progress == ["node-pool/celery-pool: waiting for the cluster's running operation to finish"] * 2
    assert len(posts(container)) == 4  # the cluster, two refused attempts, the pool


def test_gke_create_existing_is_success_without_duplicate(container: FakeContainer) -> None:
    provider = ContainerProvider()
    provider.create(gke_cluster(), ctx())
    provider.create(gke_cluster(), ctx())
    provider.create(node_pool("mesh-pool"), ctx())
    assert len(container.clusters) == 1
    assert [p["name"] for p in container.clusters[(PROJECT, ZONE, CLUSTER)]["nodePools"]] == list(POOLS)
    assert len(container.operations) == 1


def test_gke_observe_reports_differences(container: FakeContainer) -> None:
    container.add_cluster(PROJECT, ZONE, {
        "name": CLUSTER, "network": "default", "subnetwork": "default", "releaseChannel": {"channel": "STABLE"},
        "nodePools": [{"name": "standard-pool", "initialNodeCount": 2,
                       "config": {"machineType": "e2-medium", "diskSizeGb": 100,
                                  "taints": [{"key": "pool", "value": "x", "effect": "NO_EXECUTE"}]}}]})
    provider = ContainerProvider()
    assert provider.observe(gke_cluster(), ctx()) == {"location": ZONE, "network": "default", "subnetwork": "default",
                                                      "workload_pool": "", "release_channel": "STABLE"}
    assert provider.observe(node_pool(), ctx()) == {
        "cluster": CLUSTER, "location": ZONE, "machine_type": "e2-medium", "disk_size_gb": 100, "min_nodes": 2,
        "max_nodes": 2, "preemptible": False, "taints": ["pool=x:NoExecute"], "sysctls": {}}


def test_gke_errors_are_one_line_provider_errors(container: FakeContainer) -> None:
    provider = ContainerProvider()
    container.fail("GET", "/clusters/", 403, "Required \"container.clusters.get\" permission(s) for \"projects/x\".")
    with pytest.raises(ProviderError) as read:
        provider.observe(gke_cluster(), ctx())
    assert str(read.value) == (f"gke-cluster/{CLUSTER}: reading failed: Required \"container.clusters.get\" "
                               "permission(s) for \"projects/x\". (HTTP 403)")
    container.operation_error = "Insufficient regional quota to satisfy request: resource \"CPUS\"."
    with pytest.raises(ProviderError) as failed:
        provider.create(gke_cluster(), ctx())
    assert str(failed.value) == (f"gke-cluster/{CLUSTER}: create failed: Insufficient regional quota to satisfy "
                                 "request: resource \"CPUS\".")
    with pytest.raises(ProviderError, match=f"^node-pool/standard-pool: create failed: Not found: .*{CLUSTER}"):
        provider.create(node_pool(), ctx())


def test_gke_rejects_bad_inputs_before_calling(container: FakeContainer) -> None:
    provider = ContainerProvider()
    odd = Resource("gke-cluster", CLUSTER, PROJECT, {**gke_cluster().fields, "release_channel": "SOMETIMES"},
                   params=gke_cluster().params)
    with pytest.raises(ProviderError, match="release channel 'SOMETIMES' is not one of"):
        provider.create(odd, ctx())
    with pytest.raises(ProviderError, match="taint 'pool' is not key=value:"):
        provider.create(node_pool(taints=["pool"]), ctx())
    assert container.writes() == []


def test_parse_taint() -> None:
    assert parse_taint("pool=mesh-pool:NoSchedule") == ("pool", "mesh-pool", "NO_SCHEDULE")
    assert parse_taint("dedicated=:PreferNoSchedule") == ("dedicated", "", "PREFER_NO_SCHEDULE")
    with pytest.raises(ValueError):
        parse_taint("pool=x:Never")


# ---------------------------------------------------------------------- Memorystore for Redis

def test_redis_observe_missing_is_none_without_writes(redis: FakeRedis) -> None:
    assert RedisProvider().observe(redis_instance(), ctx()) is None
    assert redis.writes() == []
    assert [c.path for c in redis.calls] == [
        f"/v1/projects/{PROJECT}/locations/{REGION}/instances/daf-pcg-cache-minnie"]


def test_redis_create_waits_then_observe_equals_fields_and_host(redis: FakeRedis) -> None:
    redis.lro.pending_polls = 1
    progress: list[str] = []
    net = Ref("network/daf-minnie-network", "name")
    provider = RedisProvider()
    provider.create(redis_instance(network=net), ctx(progress, {net: "daf-minnie-network"}))
    assert progress == ["redis/daf-pcg-cache-minnie: waiting for Memorystore instance creation"]
    (create,) = posts(redis)
    assert create.path == f"/v1/projects/{PROJECT}/locations/{REGION}/instances"
    stored = redis.instances[(PROJECT, REGION, "daf-pcg-cache-minnie")]
    assert (stored["tier"], stored["memorySizeGb"], stored["connectMode"]) == ("BASIC", 1, "DIRECT_PEERING")
    assert stored["authorizedNetwork"] == f"projects/{PROJECT}/global/networks/daf-minnie-network"
    assert stored["redisConfigs"] == {"maxmemory-policy": "allkeys-lru"}
    redis.calls.clear()
    assert provider.observe(redis_instance(), ctx()) == {**redis_instance().fields, "host": stored["host"]}
    assert redis.writes() == []


def test_redis_create_existing_is_success_without_duplicate(redis: FakeRedis) -> None:
    provider = RedisProvider()
    provider.create(redis_instance(), ctx())
    provider.create(redis_instance(memory_size_gb=5), ctx())
    assert len(redis.instances) == 1
    assert redis.instances[(PROJECT, REGION, "daf-pcg-cache-minnie")]["memorySizeGb"] == 1
    assert len(redis.lro.operations) == 1


def test_redis_observe_reports_differences(redis: FakeRedis) -> None:
    redis.add_instance(PROJECT, REGION, "daf-pcg-cache-minnie", {
        "tier": "STANDARD_HA", "memorySizeGb": 5, "authorizedNetwork": f"projects/{PROJECT}/global/networks/default",
        "redisConfigs": {"maxmemory-policy": "noeviction", "maxmemory-gb": "0.98"}})
    assert RedisProvider().observe(redis_instance(), ctx()) == {
        "region": REGION, "memory_size_gb": 5, "tier": "STANDARD_HA", "network": "default",
        "redis_configs": {"maxmemory-gb": "0.98", "maxmemory-policy": "noeviction"}, "host": "10.80.0.3"}


def test_redis_errors_are_one_line_provider_errors(redis: FakeRedis) -> None:
    provider = RedisProvider()
    redis.fail("GET", "/instances/", 403, "Permission 'redis.instances.get' denied on resource")
    with pytest.raises(ProviderError) as read:
        provider.observe(redis_instance(), ctx())
    assert str(read.value) == ("redis/daf-pcg-cache-minnie: reading failed: Permission 'redis.instances.get' denied "
                               "on resource (HTTP 403)")
    redis.lro.operation_error = "Not enough IP space in the authorized network.\nPick another range."
    with pytest.raises(ProviderError) as failed:
        provider.create(redis_instance(), ctx())
    assert str(failed.value) == ("redis/daf-pcg-cache-minnie: create failed: Not enough IP space in the authorized "
                                 "network. Pick another range. (HTTP 429)")
    with pytest.raises(ProviderError, match="tier 'PREMIUM' is not BASIC or STANDARD_HA"):
        provider.create(redis_instance(tier="PREMIUM"), ctx())


# ---------------------------------------------------------------------- Bigtable instance

def test_bigtable_observe_missing_is_none_without_writes(bigtable: FakeBigtable) -> None:
    assert BigtableProvider().observe(bigtable_instance(), ctx()) is None
    assert bigtable.writes() == []
    assert [c.path for c in bigtable.calls] == [f"/v2/projects/{DATA_PROJECT}/instances/pychunkedgraph"]


def test_bigtable_create_one_ssd_cluster_then_observe_equals_fields(bigtable: FakeBigtable) -> None:
    bigtable.lro.pending_polls = 1
    progress: list[str] = []
    provider = BigtableProvider()
    provider.create(bigtable_instance(), ctx(progress))
    assert progress == ["bigtable-instance/pychunkedgraph: waiting for Bigtable instance creation"]
    (create,) = posts(bigtable)
    assert create.path == f"/v2/projects/{DATA_PROJECT}/instances"
    assert create.body["instanceId"] == "pychunkedgraph"
    assert list(create.body["clusters"]) == ["pychunkedgraph-c1"]
    (cluster,) = bigtable.clusters[(DATA_PROJECT, "pychunkedgraph")].values()
    assert cluster["location"] == f"projects/{DATA_PROJECT}/locations/{ZONE}"
    assert (cluster["defaultStorageType"], cluster["serveNodes"]) == ("SSD", 3)
    assert "clusterConfig" not in cluster  # manual scaling, no autoscaling
    assert bigtable.instances[(DATA_PROJECT, "pychunkedgraph")]["type"] == "PRODUCTION"
    bigtable.calls.clear()
    assert provider.observe(bigtable_instance(), ctx()) == dict(bigtable_instance().fields)
    assert bigtable.writes() == []


def test_bigtable_create_existing_is_success_without_duplicate(bigtable: FakeBigtable) -> None:
    provider = BigtableProvider()
    provider.create(bigtable_instance(), ctx())
    provider.create(bigtable_instance(), ctx())
    assert len(bigtable.instances) == 1 and len(bigtable.lro.operations) == 1


def test_bigtable_observe_reports_replication_and_hdd(bigtable: FakeBigtable) -> None:
    location = f"projects/{DATA_PROJECT}/locations"
    bigtable.add_instance(DATA_PROJECT, "pychunkedgraph", {"displayName": "pcg"}, {
        "pcg-west": {"location": f"{location}/us-west1-a", "serveNodes": 5, "defaultStorageType": "HDD"},
        "pcg-east": {"location": f"{location}/us-east1-c", "serveNodes": 2, "defaultStorageType": "HDD"}})
    assert BigtableProvider().observe(bigtable_instance(), ctx()) == {
        "zone": "us-east1-c", "storage_type": "HDD", "serve_nodes": 2, "clusters": 2}


def test_bigtable_errors_are_one_line_provider_errors(bigtable: FakeBigtable) -> None:
    provider = BigtableProvider()
    bigtable.add_instance(DATA_PROJECT, "pychunkedgraph", {"displayName": "pcg"},
                          {"pcg-c1": {"location": f"projects/{DATA_PROJECT}/locations/{ZONE}", "serveNodes": 1}})
    bigtable.fail("GET", "/clusters", 403, "Permission 'bigtable.clusters.list' denied on project my-data.")
    with pytest.raises(ProviderError) as read:
        provider.observe(bigtable_instance(), ctx())
    assert str(read.value) == ("bigtable-instance/pychunkedgraph: reading failed: Permission 'bigtable.clusters.list'"
                               " denied on project my-data. (HTTP 403)")
    bigtable.fail("POST", "/instances", 400, "Cluster location us-east1-z is not a valid zone.")
    with pytest.raises(ProviderError, match=r"^bigtable-instance/pychunkedgraph-2: create failed: Cluster location"):
        provider.create(Resource("bigtable-instance", "pychunkedgraph-2", DATA_PROJECT, bigtable_instance().fields),
                        ctx())
    with pytest.raises(ProviderError, match="exactly one cluster"):
        provider.create(Resource("bigtable-instance", "pychunkedgraph", DATA_PROJECT,
                                 {**bigtable_instance().fields, "clusters": 2}), ctx())
