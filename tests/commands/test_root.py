"""Commands work from any folder inside the repository: the root is found the way git finds its top."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from compiler.main import main
from compiler.paths import find_root
from tests.support import REPO
from tests.support.render import make_repo


@pytest.fixture
def root(tmp_path: Path) -> Path:
    """The examples, built, in a git repository."""
    root = tmp_path / "repo"
    for folder in ("environments", "base"):
        shutil.copytree(REPO / folder, root / folder)
    shutil.copy(REPO / "gitops.yaml", root / "gitops.yaml")
    assert main(["-C", str(root), "build"]) == 0
    make_repo(root, {})
    return root


def test_cli_from_environments_folder(root: Path) -> None:
    # The real command line, started inside environments/: it used to say "no cluster specs found".
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = subprocess.run([sys.executable, "-m", "compiler", "check"], cwd=root / "environments", env=env,
                          capture_output=True, text=True, timeout=120, check=False)
    assert (proc.returncode, proc.stdout, proc.stderr) == (0, "overlays are in sync with environments/\n", "")


def test_commands_from_a_service_base(root: Path, monkeypatch: pytest.MonkeyPatch,
                                      capsys: pytest.CaptureFixture[str], kustomize_tool: object) -> None:
    monkeypatch.chdir(root / "base" / "proxy")
    capsys.readouterr()
    assert main(["build"]) == 0
    assert capsys.readouterr().err == "overlays up to date (3 clusters)\n"
    assert main(["render", "global"]) == 0
    assert "kind: Deployment" in capsys.readouterr().out
    assert not (root / "base" / "proxy" / "overlays").exists()
    assert not (root / "base" / "proxy" / ".cache").exists()  # the render cache is the root's


def test_errors_stay_relative_to_the_root(root: Path, monkeypatch: pytest.MonkeyPatch,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    spec = root / "environments" / "minnie.yaml"
    lines = spec.read_text().splitlines(keepends=True)
    line = next(i for i, text in enumerate(lines) if text.startswith("kubernetes_version:"))
    lines.insert(line, "kubernetes_verison: '1.31'\n")
    spec.write_text("".join(lines))
    monkeypatch.chdir(root / "environments")
    capsys.readouterr()
    assert main(["build"]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"environments/minnie.yaml:{line + 1}:1: "), err
    assert "kubernetes_verison" in err


def test_find_root(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    (repo / "environments").mkdir(parents=True)
    (repo / "overlays" / "minnie").mkdir(parents=True)
    (repo / ".git").mkdir()
    assert find_root(repo / "overlays" / "minnie") == repo.absolute()
    assert find_root(repo / "environments") == repo.absolute()
    assert find_root(repo) == repo  # the folder given, as given
    # A git repository without specs yet: its top. Outside any repository: where the command started.
    bare = tmp_path / "bare"
    (bare / ".git").mkdir(parents=True)
    (bare / "docs").mkdir()
    assert find_root(bare / "docs") == bare.absolute()
    (tmp_path / "plain" / "sub").mkdir(parents=True)
    assert find_root(tmp_path / "plain" / "sub") == tmp_path / "plain" / "sub"
