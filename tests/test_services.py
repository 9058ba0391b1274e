"""Every catalogue service, rendered with real kustomize: enabled → its objects and pinned images; disabled → gone."""

from __future__ import annotations

import re
import shutil
from pathlib import Path
from typing import Any

import pytest

from compiler import catalog
from compiler.main import main
from compiler.render import kustomize
from compiler.render.manifests import parse_objects
from compiler.spec.load import load_environments
from tests.support import REPO
from tests.support.render import containers

SPECS = load_environments(REPO)
# (service, example cluster that runs it): every catalogue service appears in at least one example.
CASES = sorted({(name, cluster) for cluster, spec in SPECS.items() for name in catalog.BY_NAME
                if getattr(spec.services, name, None) is not None})


def test_every_service_is_in_an_example() -> None:
    assert {s for s, _ in CASES} == set(catalog.BY_NAME)


def make_repo(tmp: Path) -> Path:
    shutil.copytree(REPO / "environments", tmp / "environments")
    shutil.copytree(REPO / "base", tmp / "base")
    return tmp


def render(repo: Path, cluster: str) -> list[dict[str, Any]]:
    assert main(["--root", str(repo), "build", cluster]) == 0
    return parse_objects(kustomize.find(REPO).build(repo / "overlays" / cluster), cluster)


def images(objects: list[dict[str, Any]]) -> set[str]:
    return {c["image"] for o in objects for c in containers(o)}


@pytest.fixture(scope="module")
def rendered(tmp_path_factory: pytest.TempPathFactory) -> dict[str, list[dict[str, Any]]]:
    repo = make_repo(tmp_path_factory.mktemp("repo"))
    return {cluster: render(repo, cluster) for cluster in SPECS}


@pytest.mark.parametrize("service,cluster", CASES)
def test_enabled_service_renders_its_workloads_and_images(
    rendered: dict[str, list[dict[str, Any]]], service: str, cluster: str
) -> None:
    entry = catalog.BY_NAME[service]
    spec = SPECS[cluster]
    objects = [o for o in rendered[cluster] if o["metadata"].get("labels", {}).get("cave.io/service") == service]
    present = {(o["kind"], o["metadata"]["name"]) for o in objects}
    deployed = entry.deployed(getattr(spec.services, service))
    for w in entry.workloads:
        if w not in deployed:  # its `requires` setting is unset in this spec (e.g. no dump_bucket)
            assert (w.kind, w.name) not in present, f"{service}: {w.kind}/{w.name} deployed without {w.requires}"
            continue
        assert (w.kind, w.name) in present, f"{service}: {w.kind}/{w.name} missing"
        obj = next(o for o in objects if (o["kind"], o["metadata"]["name"]) == (w.kind, w.name))
        assert w.container in {c["name"] for c in containers(obj)}
    version = getattr(spec.services, service).version
    main_image = entry.images[0]
    registry = {"repository": f"{spec.docker_repository}/", "dockerhub": ""}.get(main_image.registry)
    expected_tag = main_image.tag.format(version=version)
    found = images(objects)
    if registry is not None:
        assert f"{registry}{main_image.name}:{expected_tag}" in found
    else:
        assert any(i.endswith(f"/{main_image.name}:{expected_tag}") and i.startswith("gcr.io/") for i in found)
    for image in images(rendered[cluster]):
        assert "--" not in image.split("/")[-1], f"unmapped placeholder image {image}"
        assert ":" in image.split("/")[-1] and not image.endswith(":latest"), f"unpinned image {image}"


@pytest.mark.parametrize("service,cluster", CASES)
def test_disabled_service_is_absent(tmp_path: Path, service: str, cluster: str) -> None:
    repo = make_repo(tmp_path)
    path = repo / "environments" / f"{cluster}.yaml"
    text, count = re.subn(rf"^(  {service}:.*\n)", r"\1    enabled: false\n", path.read_text(), flags=re.M)
    assert count == 1
    path.write_text(text)
    objects = render(repo, cluster)
    assert objects, "the rest of the cluster still renders"
    assert not [o for o in objects if o["metadata"].get("labels", {}).get("cave.io/service") == service]
    entry = catalog.BY_NAME[service]
    backends = {p["backend"]["service"]["name"] for o in objects if o["kind"] == "Ingress"
                for r in o["spec"].get("rules", []) for p in r["http"]["paths"]}
    assert not backends & {p.service for p in entry.ingress}
    remaining = {o["metadata"].get("labels", {}).get("cave.io/service") for o in objects}
    for other in catalog.SERVICES:
        if other.name != service and getattr(SPECS[cluster].services, other.name, None) is not None:
            assert other.name in remaining
