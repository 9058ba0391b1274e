"""`bump` on copies of the example specs: downgrades refused unless asked for, versions checked like the spec does,
each problem on its own line at its spec line, and --check-registry against a fake registry on 127.0.0.1 speaking
Docker Hub's tag API and the OCI distribution API (the bot's registry client runs unchanged)."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from compiler.main import main
from tests.support import REPO
from tests.support.fake_registry import FakeRegistry
from tests.support.specs import line_of


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    shutil.copytree(REPO / "environments", tmp_path / "environments")
    return tmp_path


@pytest.fixture
def registry() -> Iterator[FakeRegistry]:
    fake = FakeRegistry()
    yield fake
    fake.stop()


def specs(repo: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted((repo / "environments").iterdir())}


def at(repo: Path, cluster: str, anchor: str) -> str:
    """`environments/<cluster>.yaml:LINE:` of the line holding `anchor`."""
    text = (repo / "environments" / f"{cluster}.yaml").read_text()
    return f"environments/{cluster}.yaml:{line_of(text, anchor)}:"


def refused(repo: Path, capsys: pytest.CaptureFixture[str], *args: str) -> list[str]:
    """Run bump expecting exit 2 with nothing written; the error lines."""
    before = specs(repo)
    assert main(["--root", str(repo), "bump", *args]) == 2
    out = capsys.readouterr()
    assert out.out == "" and "Traceback" not in out.err
    assert specs(repo) == before
    assert not (repo / "overlays").exists()
    return out.err.splitlines()


def test_a_downgrade_is_refused_at_each_spec_line(repo: Path, capsys: pytest.CaptureFixture[str]) -> None:
    errors = refused(repo, capsys, "annotation", "4.13.0")
    assert errors == [
        f"{at(repo, 'fanc', 'version: 4.14.1')}14: annotationengine 4.14.1 -> 4.13.0 is a downgrade "
        "(pass --allow-downgrade to roll back on purpose)",
        f"{at(repo, 'minnie', 'version: 4.14.1')}14: annotationengine 4.14.1 -> 4.13.0 is a downgrade "
        "(pass --allow-downgrade to roll back on purpose)",
    ]


def test_a_release_is_newer_than_its_prereleases(repo: Path, capsys: pytest.CaptureFixture[str]) -> None:
    errors = refused(repo, capsys, "annotation", "4.14.1-rc.2", "--cluster", "minnie")
    assert len(errors) == 1 and "annotationengine 4.14.1 -> 4.14.1-rc.2 is a downgrade" in errors[0]
    assert main(["--root", str(repo), "bump", "annotation", "4.15.0-rc.1", "--cluster", "minnie"]) == 0
    assert "newTag: v4.15.0-rc.1" in (repo / "overlays" / "minnie" / "kustomization.yaml").read_text()


def test_allow_downgrade_rolls_back(repo: Path, capsys: pytest.CaptureFixture[str]) -> None:
    original = (repo / "environments" / "minnie.yaml").read_text()
    assert main(["--root", str(repo), "bump", "annotation", "4.13.0", "--cluster", "minnie", "--allow-downgrade"]) == 0
    assert capsys.readouterr().out.splitlines()[0] == "minnie: annotationengine 4.14.1 -> 4.13.0"
    assert (repo / "environments" / "minnie.yaml").read_text() == original.replace(
        "    version: 4.14.1\n", "    version: 4.13.0\n", 1)
    assert "newTag: v4.13.0" in (repo / "overlays" / "minnie" / "kustomization.yaml").read_text()


def test_each_problem_on_its_own_line(repo: Path, capsys: pytest.CaptureFixture[str]) -> None:
    errors = refused(repo, capsys, "schema", "5.0.0", "--cluster", "global", "--cluster", "minnie",
                     "--cluster", "minie")
    assert len(errors) == 3, errors
    assert errors[0].startswith("unknown cluster 'minie' (did you mean 'minnie'?")
    assert errors[1] == (f"{at(repo, 'global', 'version: 5.12.0')}14: emannotationschemas 5.12.0 -> 5.0.0 is a "
                         "downgrade (pass --allow-downgrade to roll back on purpose)")
    assert errors[2] == (f"{at(repo, 'minnie', 'services:')}1: cluster 'minnie' does not run emannotationschemas "
                         "(add services.emannotationschemas to its spec first)")


@pytest.mark.parametrize("component,version,message", [
    ("annotation", "latest", "version 'latest' is a moving tag, not a version: pin a release like 4.14.1"),
    ("annotation", "4.15", "version '4.15' is not a version: write all three parts, like 4.15.0"),
    ("annotation", "not a version", "version 'not a version' cannot be an image tag"),
    ("proxy", "Requestorpays12", "version 'Requestorpays12' is not a version: write a release as semver without the "
     "v (like 4.14.1 or 4.15.0-rc.1); or one of the tags the catalogue allows for proxy: RequestorPays12"),
])
def test_the_version_is_checked_like_the_spec_does(repo: Path, capsys: pytest.CaptureFixture[str], component: str,
                                                   version: str, message: str) -> None:
    (error,) = refused(repo, capsys, component, version)
    assert error.startswith(message), error


def test_a_leading_v_is_dropped_and_explicit_tags_are_allowed(repo: Path) -> None:
    assert main(["--root", str(repo), "bump", "annotation", "v4.15.0", "--cluster", "fanc"]) == 0
    assert main(["--root", str(repo), "bump", "proxy", "1.2.0", "--cluster", "fanc"]) == 0  # RequestorPays12: no order
    assert main(["--root", str(repo), "bump", "proxy", "vRequestorPays12", "--cluster", "fanc"]) == 0
    fanc = (repo / "environments" / "fanc.yaml").read_text()
    assert "    version: 4.15.0\n" in fanc and "    version: RequestorPays12\n" in fanc
    kust = (repo / "overlays" / "fanc" / "kustomization.yaml").read_text()
    assert "newTag: v4.15.0" in kust and "newTag: vRequestorPays12" in kust


def test_check_registry_docker_hub(repo: Path, registry: FakeRegistry, capsys: pytest.CaptureFixture[str]) -> None:
    registry.push("caveconnectome/annotationengine", "v4.15.0")
    check = ("--check-registry", "--registry-url", registry.url)
    errors = refused(repo, capsys, "annotation", "4.16.0", *check)
    assert errors == [
        f"{at(repo, 'fanc', 'version: 4.14.1')}14: docker.io/caveconnectome/annotationengine:v4.16.0 is not in the "
        "registry (push it first, or pick a version that exists)",
        f"{at(repo, 'minnie', 'version: 4.14.1')}14: docker.io/caveconnectome/annotationengine:v4.16.0 is not in the "
        "registry (push it first, or pick a version that exists)",
    ]
    assert "GET /v2/repositories/caveconnectome/annotationengine/tags/v4.16.0" in registry.requests
    assert main(["--root", str(repo), "bump", "annotation", "4.15.0", *check]) == 0
    assert "GET /v2/repositories/caveconnectome/annotationengine/tags/v4.15.0" in registry.requests
    assert (repo / "environments" / "minnie.yaml").read_text().count("version: 4.15.0") == 1


def test_check_registry_asks_every_image_of_the_version(repo: Path, registry: FakeRegistry,
                                                        capsys: pytest.CaptureFixture[str]) -> None:
    registry.push("caveconnectome/pcgl2cache", "v1.4.0")  # the API image, not the worker's tag
    check = ("--check-registry", "--registry-url", registry.url)
    (error,) = refused(repo, capsys, "l2cache", "1.4.0", *check)
    assert error.endswith("docker.io/caveconnectome/pcgl2cache:worker_pcgv1_v1.4.0 is not in the registry "
                          "(push it first, or pick a version that exists)")
    registry.push("caveconnectome/pcgl2cache", "worker_pcgv1_v1.4.0")
    assert main(["--root", str(repo), "bump", "l2cache", "1.4.0", *check]) == 0


def test_check_registry_oci_with_token_handshake(repo: Path, registry: FakeRegistry,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    """The proxy's image lives in the data project's gcr.io: the OCI API, after an anonymous token."""
    check = ("--check-registry", "--registry-url", registry.url)
    (error,) = refused(repo, capsys, "proxy", "1.2.0", "--cluster", "fanc", *check)
    assert error == (f"{at(repo, 'fanc', 'version: RequestorPays12')}14: gcr.io/cave-demo-data/middle_auth_proxy:"
                     "v1.2.0 is not in the registry (push it first, or pick a version that exists)")
    registry.push("cave-demo-data/middle_auth_proxy", "v1.2.0")
    assert main(["--root", str(repo), "bump", "proxy", "1.2.0", "--cluster", "fanc", *check]) == 0
    heads = [r for r in registry.requests if r.startswith("HEAD ")]
    assert heads[-1] == "HEAD /v2/cave-demo-data/middle_auth_proxy/manifests/v1.2.0"
    assert any(r.startswith("GET /token?") for r in registry.requests)


def test_without_check_registry_no_registry_is_asked(repo: Path, registry: FakeRegistry) -> None:
    assert main(["--root", str(repo), "bump", "annotation", "4.16.0", "--registry-url", registry.url]) == 0
    assert registry.requests == []
