"""Smaller fidelity fixes (issue 12, item 3), through the real loader, compiler and kustomize.

- tourguide writes its scratch files to a sized emptyDir, not /dev/shm (64 MiB in a container);
- celery-deltalake is deployed only with a `dump_bucket` to export to;
- celery producer and consumer have their own --concurrency (the old single value stays their default);
- the spec is strict: no YAML value is silently coerced to another type (`day_of_week: true` is not 1).
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest
import yaml

from compiler.errors import UserError
from compiler.main import main
from compiler.render import kustomize
from compiler.render.manifests import parse_objects
from compiler.spec.load import load_all, load_environments, validate_document
from compiler.spec.model import LocalCluster
from compiler.spec.yamlio import load_document
from tests.support import REPO
from tests.support.render import containers

FIXTURE = REPO / "tests" / "fixtures" / "fleet_2026_12_06"


def make_repo(tmp: Path, edits: dict[str, tuple[str, str]] | None = None) -> Path:
    """A copy of the example specs and bases; `edits` maps a cluster to one (old, new) text replacement."""
    shutil.copytree(REPO / "environments", tmp / "environments")
    shutil.copytree(REPO / "base", tmp / "base")
    for cluster, (old, new) in (edits or {}).items():
        edit(tmp, cluster, old, new)
    return tmp


def edit(repo: Path, cluster: str, old: str, new: str) -> None:
    path = repo / "environments" / f"{cluster}.yaml"
    text = path.read_text()
    assert text.count(old) == 1, f"{old!r} not once in {cluster}.yaml"
    path.write_text(text.replace(old, new))


def render(repo: Path, cluster: str) -> list[dict[str, Any]]:
    assert main(["--root", str(repo), "build", cluster]) == 0
    return parse_objects(kustomize.find(REPO).build(repo / "overlays" / cluster), cluster)


def named(objects: list[dict[str, Any]], kind: str, name: str) -> dict[str, Any] | None:
    return next((o for o in objects if o["kind"] == kind and o["metadata"]["name"] == name), None)


def env_of(container: dict[str, Any]) -> dict[str, str]:
    return {e["name"]: e.get("value", "") for e in container.get("env", [])}


def problems(repo: Path) -> list[str]:
    with pytest.raises(UserError) as err:
        load_all(repo)
    return str(err.value).splitlines()


@pytest.fixture(scope="module")
def minnie() -> list[dict[str, Any]]:
    """The committed minnie overlay, rendered."""
    return parse_objects(kustomize.find(REPO).build(REPO / "overlays" / "minnie"), "minnie")


# ---------------------------------------------------------------------- tourguide's scratch directory

def test_tourguide_tmp_dir_is_an_emptydir_sized_like_its_ephemeral_request(minnie: list[dict[str, Any]]) -> None:
    deployment = named(minnie, "Deployment", "tourguide")
    assert deployment is not None
    pod = deployment["spec"]["template"]["spec"]
    main_container = next(c for c in containers(deployment) if c["name"] == "tourguide")
    tmp_dir = env_of(main_container)["TOURGUIDE_TMP_DIR"]
    assert not tmp_dir.startswith("/dev/shm")
    (mount,) = [m for m in main_container["volumeMounts"] if m["mountPath"] == tmp_dir]
    (volume,) = [v for v in pod["volumes"] if v["name"] == mount["name"]]
    assert set(volume) == {"name", "emptyDir"}, "a node-disk emptyDir, not memory or a host path"
    assert volume["emptyDir"].get("medium") is None
    assert volume["emptyDir"]["sizeLimit"] == main_container["resources"]["requests"]["ephemeral-storage"]


# ---------------------------------------------------------------------- celery-deltalake needs its bucket

def test_deltalake_is_not_deployed_without_a_dump_bucket(minnie: list[dict[str, Any]]) -> None:
    spec = load_environments(REPO)["minnie"]
    assert isinstance(spec, LocalCluster) and spec.services.materializationengine is not None
    assert spec.services.materializationengine.dump_bucket is None  # the example has none
    assert named(minnie, "Deployment", "celery-deltalake") is None
    assert named(minnie, "HorizontalPodAutoscaler", "celery-deltalake-scaler") is None
    for worker in ("celery-producer", "celery-consumer", "celery-orchestration"):
        assert named(minnie, "Deployment", worker) is not None


def test_deltalake_is_deployed_with_a_dump_bucket(tmp_path: Path) -> None:
    repo = make_repo(tmp_path, {"minnie": ("    upload_bucket: cave-demo-minnie-uploads",
                                           "    dump_bucket: cave-demo-minnie-dumps\n"
                                           "    upload_bucket: cave-demo-minnie-uploads")})
    edit(repo, "minnie", "    workloads:\n      celery-producer:",
         "    workloads:\n      celery-deltalake: {replicas: {min: 1, max: 4}, resources: {cpu: 900m, memory: 3Gi}}\n"
         "      celery-producer:")
    objects = render(repo, "minnie")
    deltalake = named(objects, "Deployment", "celery-deltalake")
    hpa = named(objects, "HorizontalPodAutoscaler", "celery-deltalake-scaler")
    assert deltalake is not None and hpa is not None
    # Treated like the other workers: service label, Cloud SQL proxy, pool placement, the spec's settings.
    for obj in (deltalake, hpa):
        assert obj["metadata"]["labels"]["cave.io/service"] == "materializationengine"
    pod = deltalake["spec"]["template"]["spec"]
    assert "cloudsql-proxy" in {c["name"] for c in pod.get("initContainers", [])}
    assert pod["nodeSelector"] == {"cloud.google.com/gke-nodepool": "mesh-pool"}
    celery = next(c for c in pod["containers"] if c["name"] == "celery")
    assert celery["resources"]["requests"] == {"cpu": "900m", "memory": "3Gi"}
    assert (hpa["spec"]["minReplicas"], hpa["spec"]["maxReplicas"]) == (1, 4)
    others = {o["metadata"]["labels"].get("cave.io/service") for o in objects if o["kind"] != "Deployment"
              or o["metadata"]["name"] != "celery-deltalake"}
    assert len(others) > 2, "the component's label must not spread to other objects"
    config = (repo / "overlays" / "minnie" / "configs" / "materializationengine.config.cfg").read_text()
    assert "DELTALAKE_OUTPUT_BUCKET = 'gs://cave-demo-minnie-dumps/deltalake_exports'" in config


def test_deltalake_settings_without_a_dump_bucket_are_an_error(tmp_path: Path) -> None:
    repo = make_repo(tmp_path, {"minnie": ("      celery-beat-scheduler: {replicas: 1}\n",
                                           "      celery-beat-scheduler: {replicas: 1}\n"
                                           "      celery-deltalake: {replicas: {min: 1, max: 2}}\n")})
    found = [p for p in problems(repo) if "celery-deltalake" in p]
    assert len(found) == 1
    line = (repo / "environments" / "minnie.yaml").read_text().splitlines().index(
        "      celery-deltalake: {replicas: {min: 1, max: 2}}") + 1
    assert found[0] == (f"environments/minnie.yaml:{line}:7: celery-deltalake is deployed only when "
                        "services.materializationengine.dump_bucket is set, and it is not (set dump_bucket, or "
                        "remove this entry)")


# ---------------------------------------------------------------------- producer and consumer concurrency

def _env_literals(repo: Path, cluster: str) -> list[str]:
    kustomization = yaml.safe_load((repo / "overlays" / cluster / "kustomization.yaml").read_text())
    (gen,) = [g for g in kustomization["configMapGenerator"] if g["name"] == "materializationengine-env"]
    return [x for x in gen["literals"] if "CONCURRENCY" in x]


@pytest.mark.parametrize("settings,producer,consumer", [
    ("", 2, 2),  # the old default of both
    ("    celery_concurrency: 3\n", 3, 3),  # an existing spec keeps its meaning
    ("    celery_producer_concurrency: 4\n", 4, 2),
    ("    celery_concurrency: 3\n    celery_consumer_concurrency: 6\n", 3, 6),
])
def test_producer_and_consumer_concurrency(tmp_path: Path, settings: str, producer: int, consumer: int) -> None:
    anchor = "    upload_bucket: cave-demo-minnie-uploads"
    repo = make_repo(tmp_path, {"minnie": (anchor, settings + anchor)})
    assert main(["--root", str(repo), "build", "minnie"]) == 0
    assert _env_literals(repo, "minnie") == [f"CELERY_PRODUCER_CONCURRENCY={producer}",
                                             f"CELERY_CONSUMER_CONCURRENCY={consumer}"]


def test_each_worker_reads_its_own_concurrency(tmp_path: Path) -> None:
    repo = make_repo(tmp_path, {"minnie": ("    upload_bucket: cave-demo-minnie-uploads",
                                           "    dump_bucket: cave-demo-minnie-dumps\n"
                                           "    upload_bucket: cave-demo-minnie-uploads")})
    objects = render(repo, "minnie")
    expected = {"celery-producer": "$(CELERY_PRODUCER_CONCURRENCY)",
                "celery-consumer": "$(CELERY_CONSUMER_CONCURRENCY)",
                "celery-deltalake": "$(CELERY_CONSUMER_CONCURRENCY)"}
    for worker, variable in expected.items():
        deployment = named(objects, "Deployment", worker)
        assert deployment is not None
        celery = next(c for c in containers(deployment) if c["name"] == "celery")
        command = " ".join([*celery.get("command", []), *celery.get("args", [])])
        assert f"--concurrency={variable}" in command, worker
        assert "$(CELERY_CONCURRENCY)" not in command


def test_fixture_specs_keep_their_concurrency() -> None:
    for path in sorted((FIXTURE / "environments").glob("*.yaml")):
        doc, found = load_document(path, path.name)
        assert doc is not None and not found
        spec, errors = validate_document(doc)
        assert spec is not None and not errors, errors
        mat = getattr(spec.services, "materializationengine", None)
        if mat is not None:
            assert (mat.producer_concurrency, mat.consumer_concurrency) == (2, 2)


# ---------------------------------------------------------------------- strict types: no silent coercion

STRICT_CASES = [
    # (old, new, anchor on the edited line, expected message after "environments/minnie.yaml:LINE:COL: ")
    ("hour: 8, day_of_week: 5}", "hour: 8, day_of_week: true}", "day_of_week: true",
     "services.materializationengine.beat_schedule[1].day_of_week: expected an integer, a list or a string, "
     "got a boolean (true); YAML true/false is not a number"),
    ("min_databases: 3", "min_databases: 3.0", "min_databases: 3.0",
     "services.materializationengine.min_databases: expected an integer, got a number (3.0); write 3"),
    ("min_databases: 3", "min_databases: '3'", "min_databases: '3'",
     "services.materializationengine.min_databases: expected an integer, got a string ('3')"),
    ("min_databases: 3", "min_databases: true", "min_databases: true",
     "services.materializationengine.min_databases: expected an integer, got a boolean (true); "
     "YAML true/false is not a number"),
    ("merge_databases: false", "merge_databases: 'false'", "merge_databases: 'false'",
     "services.materializationengine.merge_databases: expected a boolean (true or false), got a string "
     "('false'); write true or false, unquoted"),
    ("merge_databases: false", "merge_databases: 0", "merge_databases: 0",
     "services.materializationengine.merge_databases: expected a boolean (true or false), got an integer (0); "
     "write true or false, unquoted"),
    ("  materializationengine:\n    version: 4.23.0", "  materializationengine:\n    version: 4.23",
     "version: 4.23\n", "services.materializationengine.version: expected a string, got a number (4.23); "
     "quote it as you meant it, e.g. \"4.23\" (unquoted YAML reads 1.30 as the number 1.3)"),
    ("replicas: {min: 1, max: 5}", "replicas: {min: 1, max: 5.0}", "max: 5.0",
     "services.annotationengine.replicas.max: expected an integer, got a number (5.0); write 5"),
    ("replicas: {min: 1, max: 5}", "replicas: true", "replicas: true",
     "services.annotationengine.replicas: expected an integer or a mapping, got a boolean (true); "
     "YAML true/false is not a number"),
]


@pytest.mark.parametrize("old,new,anchor,message", STRICT_CASES, ids=[c[1] for c in STRICT_CASES])
def test_no_silent_coercion(tmp_path: Path, old: str, new: str, anchor: str, message: str) -> None:
    repo = make_repo(tmp_path, {"minnie": (old, new)})
    text = (repo / "environments" / "minnie.yaml").read_text()
    line = text[: text.index(anchor)].count("\n") + 1
    col = len(text[: text.index(anchor)].rsplit("\n", 1)[-1]) + 1
    value_col = col + anchor.index(":") + 2  # the position is the value's
    assert f"environments/minnie.yaml:{line}:{value_col}: {message}" in problems(repo)


def test_yaml_natural_inputs_still_load(tmp_path: Path) -> None:
    """Quoted versions, IP addresses and networks as strings, integers where numbers go, enums, literals."""
    repo = make_repo(tmp_path, {"minnie": ("kubernetes_version: ", "network: {subnet_cidr: 10.20.0.0/20}\n"
                                                                    "kubernetes_version: ")})
    spec = load_all(repo)["minnie"].spec
    assert str(spec.network.subnet_cidr) == "10.20.0.0/20"
    assert spec.kubernetes_version == "1.31"  # quoted in the spec: a string
    assert str(spec.static_ip) == "203.0.113.20"
    assert spec.release_channel == "REGULAR" and spec.node_pools[0].min_nodes >= 0


def test_an_ip_that_is_not_one_is_reported(tmp_path: Path) -> None:
    repo = make_repo(tmp_path, {"minnie": ("kubernetes_version: ", "network: {subnet_cidr: 10.20.0.0/99}\n"
                                                                    "kubernetes_version: ")})
    found = [p for p in problems(repo) if "network.subnet_cidr" in p]
    assert len(found) == 1 and found[0].startswith("environments/minnie.yaml:")


@pytest.mark.parametrize("root", [REPO, FIXTURE], ids=["examples", "fixture-2026-12-06"])
def test_every_example_and_fixture_spec_validates_strictly(root: Path) -> None:
    paths = sorted((root / "environments").glob("*.yaml"))
    assert paths
    for path in paths:
        doc, found = load_document(path, path.name)
        assert doc is not None and not found
        spec, errors = validate_document(doc)
        assert spec is not None, [str(e) for e in errors]
