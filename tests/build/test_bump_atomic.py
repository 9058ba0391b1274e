"""`bump` is all or nothing: when the rebuild after the spec edit fails, every spec is put back byte for byte,
overlays/ is untouched, and the error is one line with exit 2. Failures injected the way they happen (tests run as
root, where chmod stops no write): a file where overlays/ should be, a broken gitops.yaml only the rebuild reads,
a template the rebuild cannot render (in a copy of the compiler, run as `python -m compiler`)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from compiler.main import main
from tests.support import REPO

BUMP = ("bump", "materialize", "4.24.1")  # minnie and fanc run it at 4.23.0


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    root = tmp_path / "repo"
    for name in ("environments", "overlays"):
        shutil.copytree(REPO / name, root / name, ignore=shutil.ignore_patterns(".build-*"))
    shutil.copy(REPO / "gitops.yaml", root / "gitops.yaml")
    return root


def files(root: Path) -> dict[str, bytes]:
    """Every file of the repository but build's cache."""
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*"))
            if p.is_file() and ".cache" not in p.parts}


def overlays_a_file(root: Path) -> None:
    shutil.rmtree(root / "overlays")
    (root / "overlays").write_text("not a folder\n")


def gitops_broken(root: Path) -> None:
    path = root / "gitops.yaml"
    path.write_text(path.read_text().replace("  project: cave ", "  project: [cave] "))


@pytest.mark.parametrize("break_it,message", [
    (overlays_a_file, "overlays/: cannot write (it is a file, not a folder) (move the file overlays away, then "
                      "build again); nothing was bumped: environments/ is as it was"),
    (gitops_broken, "gitops.yaml:5:12: argocd.project: expected a string, got a list"),
])
def test_a_failed_rebuild_leaves_every_file_as_it_was(repo: Path, capsys: pytest.CaptureFixture[str],
                                                      break_it: Callable[[Path], None], message: str) -> None:
    break_it(repo)
    before = files(repo)
    assert main(["--root", str(repo), *BUMP]) == 2
    out, err = capsys.readouterr()
    (line,) = err.splitlines()
    assert line.startswith(message)
    assert line.endswith("; nothing was bumped: environments/ is as it was")
    assert out == ""
    assert files(repo) == before  # specs and overlays byte for byte, no temporary file left


def test_a_template_the_rebuild_cannot_render_leaves_the_specs_as_they_were(repo: Path) -> None:
    shutil.copytree(REPO / "compiler", repo / "compiler", ignore=shutil.ignore_patterns("__pycache__"))
    template = repo / "compiler" / "templates" / "materializationengine" / "config.cfg.j2"
    template.write_text(template.read_text() + "BROKEN = {{ svc.no_such_setting }}\n")
    before = files(repo)
    proc = subprocess.run([sys.executable, "-m", "compiler", *BUMP], cwd=repo, capture_output=True, text=True,
                          env={**os.environ, "PYTHONPATH": str(repo)}, timeout=120)
    assert proc.returncode == 2, proc.stderr
    (line,) = proc.stderr.splitlines()
    assert line.startswith("compiler/templates/materializationengine/config.cfg.j2: ")
    assert "no_such_setting" in line
    assert line.endswith("; nothing was bumped: environments/ is as it was")
    assert _outside_compiler(files(repo)) == _outside_compiler(before)  # (the copy's compiler gains bytecode)


def _outside_compiler(found: dict[str, bytes]) -> dict[str, bytes]:
    return {p: d for p, d in found.items() if not p.startswith("compiler/")}


def test_a_bump_that_succeeds_writes_specs_and_overlays(repo: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """The control: the same bump in an unbroken repository changes the specs and the overlays."""
    before = files(repo)
    assert main(["--root", str(repo), *BUMP]) == 0
    after = files(repo)
    changed = {p for p in after if before.get(p) != after[p]}
    assert {"environments/minnie.yaml", "environments/fanc.yaml", "overlays/minnie/kustomization.yaml",
            "overlays/fanc/kustomization.yaml"} <= changed
    assert "4.24.1" in after["environments/minnie.yaml"].decode()
