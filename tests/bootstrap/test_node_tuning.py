"""Node tuning that replaced CAVEdeployment's privileged sysctl sidecars (issue 12, item 2).

net.core.somaxconn is a node-pool setting bootstrap plans and creates (GKE node system configuration, through the
real google-cloud-container client against tests/support/fake_gcp/container.py) and reports, never changes, when an
existing pool differs. net.ipv4.ip_local_port_range is not a node-pool sysctl GKE accepts: the pods of the
workloads that had a sidecar set it themselves (base/components/port-range), rendered with real kustomize.
"""

from __future__ import annotations

from typing import Any

import pytest

from compiler.bootstrap.desired import NODE_SYSCTLS, desired
from compiler.bootstrap.engine import plan
from compiler.bootstrap.gcp_container import ContainerProvider
from compiler.bootstrap.model import ProviderError, Resource
from compiler.render import kustomize
from compiler.render.manifests import parse_objects
from compiler.spec.load import load_environments
from tests.support import REPO
from tests.support.fake_gcp.cloud import context as ctx
from tests.support.fake_gcp.cloud import fake_fixture
from tests.support.fake_gcp.container import FakeContainer

SPECS = load_environments(REPO)
PROJECT, ZONE, CLUSTER = "my-project", "us-east1-b", "daf-minnie"
SOMAXCONN = {"net.core.somaxconn": "32768"}
PORT_RANGE = {"name": "net.ipv4.ip_local_port_range", "value": "1024 65535"}
# Deployments that ran a `sysctl-buddy` sidecar or tourguide's `sysctl-startup` init container
# (cave-deployment-facts 2.1 BUDDY and the Side column of 2.2).
HAD_SIDECAR = {"auth", "sticky-auth", "nglstate", "infoservice", "emannotationschemas-dep", "annotationengine",
               "pychunkedgraph", "pychunkedgraph-read", "meshing", "pcgl2cache", "skeletoncache", "guidebook",
               "tourguide", "dash", "proxy", "pprogress", "pmanagement", "cavecanary"}

container = fake_fixture(FakeContainer, "container")


def pool(name: str = "standard-pool", **changes: Any) -> Resource:
    fields = {"cluster": CLUSTER, "location": ZONE, "machine_type": "e2-standard-4", "disk_size_gb": 40,
              "min_nodes": 1, "max_nodes": 3, "preemptible": False, "taints": [f"pool={name}:NoSchedule"],
              "sysctls": dict(SOMAXCONN), **changes}
    return Resource("node-pool", name, PROJECT, fields)


def cluster(*pools: Resource) -> Resource:
    return Resource("gke-cluster", CLUSTER, PROJECT,
                    {"location": ZONE, "network": "n", "subnetwork": "s", "workload_pool": f"{PROJECT}.svc.id.goog",
                     "release_channel": "REGULAR"},
                    params={"node_pools": [{"name": p.name, **p.fields} for p in pools]})


# ---------------------------------------------------------------------- the plan (offline)

@pytest.mark.parametrize("name", sorted(SPECS))
def test_every_planned_pool_carries_somaxconn(name: str) -> None:
    resources = desired(SPECS[name])
    pools = [r for r in resources if r.kind == "node-pool"]
    assert [p.name for p in pools] == [p.name for p in SPECS[name].node_pools]
    for p in pools:
        assert p.fields["sysctls"] == SOMAXCONN, p.key
    (gke,) = [r for r in resources if r.kind == "gke-cluster"]
    assert [p["sysctls"] for p in gke.params["node_pools"]] == [SOMAXCONN] * len(pools)
    assert NODE_SYSCTLS == SOMAXCONN  # CAVEdeployment's value; the port range is not a node sysctl


def test_offline_plan_lists_the_pools() -> None:
    outcome = plan(desired(SPECS["minnie"]), lambda kind: ContainerProvider(), offline=True)
    rows = [r for r in outcome.rows if r.resource.kind == "node-pool"]
    assert rows and all(r.status == "offline" and r.resource.fields["sysctls"] == SOMAXCONN for r in rows)


# ---------------------------------------------------------------------- GKE gets them on create

def test_cluster_create_sends_sysctls_for_every_pool(container: FakeContainer) -> None:
    ContainerProvider().create(cluster(pool("standard-pool"), pool("core-pool", taints=[])), ctx())
    (create,) = [c for c in container.writes() if c.method == "POST"]
    sent = [p["config"].get("linuxNodeConfig") for p in create.body["cluster"]["nodePools"]]
    assert sent == [{"sysctls": SOMAXCONN}] * 2
    stored = container.clusters[(PROJECT, ZONE, CLUSTER)]["nodePools"]
    assert [p["config"]["linuxNodeConfig"]["sysctls"] for p in stored] == [SOMAXCONN] * 2


def test_pool_added_later_sends_sysctls_and_reads_back_equal(container: FakeContainer) -> None:
    provider = ContainerProvider()
    provider.create(cluster(pool()), ctx())
    extra = pool("mesh-pool")
    provider.create(extra, ctx())
    create = [c for c in container.writes() if c.method == "POST"][-1]
    assert create.body["nodePool"]["config"]["linuxNodeConfig"] == {"sysctls": SOMAXCONN}
    assert provider.observe(extra, ctx()) == dict(extra.fields)
    assert plan([extra], lambda kind: provider).rows[0].status == "exists"


def test_pool_without_sysctls_sends_no_linux_config(container: FakeContainer) -> None:
    ContainerProvider().create(cluster(pool(sysctls={})), ctx())
    (create,) = [c for c in container.writes() if c.method == "POST"]
    assert "linuxNodeConfig" not in create.body["cluster"]["nodePools"][0]["config"]


def test_gke_refuses_the_port_range_as_a_node_sysctl(container: FakeContainer) -> None:
    """Why ip_local_port_range is set on the pods: GKE's node system configuration does not take it."""
    bad = pool(sysctls={**SOMAXCONN, "net.ipv4.ip_local_port_range": "1024 65535"})
    with pytest.raises(ProviderError, match=r"Unsupported kernel parameter net\.ipv4\.ip_local_port_range"):
        ContainerProvider().create(cluster(bad), ctx())
    assert container.clusters == {}


# ---------------------------------------------------------------------- existing pools: compared, never changed

@pytest.mark.parametrize("have", [{}, {"net.core.somaxconn": "4096"},
                                  {**SOMAXCONN, "net.ipv4.tcp_tw_reuse": "1"}])
def test_existing_pool_with_other_sysctls_differs_and_is_left_alone(container: FakeContainer,
                                                                    have: dict[str, str]) -> None:
    config: dict[str, Any] = {"machineType": "e2-standard-4", "diskSizeGb": 40,
                              "taints": [{"key": "pool", "value": "standard-pool", "effect": "NO_SCHEDULE"}]}
    if have:
        config["linuxNodeConfig"] = {"sysctls": have}
    container.add_cluster(PROJECT, ZONE, {"name": CLUSTER, "nodePools": [{
        "name": "standard-pool", "config": config,
        "autoscaling": {"enabled": True, "minNodeCount": 1, "maxNodeCount": 3}}]})
    (row,) = plan([pool()], lambda kind: ContainerProvider()).rows
    assert row.status == "differs"
    assert [(d.field, d.want, d.have) for d in row.differences] == [("sysctls", SOMAXCONN, have)]
    assert row.action == "report only (never changed by bootstrap)"
    ContainerProvider().create(pool(), ctx())  # apply: "already exists" is done, nothing is updated
    assert [c.method for c in container.writes()] == ["POST"]  # the create GKE refused (409); no update call
    assert container.clusters[(PROJECT, ZONE, CLUSTER)]["nodePools"][0]["config"].get(
        "linuxNodeConfig", {}).get("sysctls", {}) == have


# ---------------------------------------------------------------------- the pods: ip_local_port_range

def _pod_sysctls(obj: dict[str, Any]) -> list[dict[str, str]]:
    return list(obj["spec"]["template"]["spec"].get("securityContext", {}).get("sysctls", []))


@pytest.mark.parametrize("name", sorted(SPECS))
def test_port_range_is_set_on_exactly_the_workloads_that_had_the_sidecar(name: str) -> None:
    objects = parse_objects(kustomize.find(REPO).build(REPO / "overlays" / name), name)
    deployments = {o["metadata"]["name"]: o for o in objects if o["kind"] == "Deployment"}
    tuned = {n for n, o in deployments.items() if PORT_RANGE in _pod_sysctls(o)}
    assert tuned == HAD_SIDECAR & set(deployments)
    assert tuned, f"{name}: no workload of the sidecar list is deployed"
    for o in objects:
        if o["kind"] in ("Deployment", "Job"):
            pod = o["spec"]["template"]["spec"]
            for c in [*pod.get("containers", []), *pod.get("initContainers", [])]:
                assert not c.get("securityContext", {}).get("privileged"), f"{o['metadata']['name']}/{c['name']}"
                assert c["name"] not in ("sysctl-buddy", "sysctl-startup")
