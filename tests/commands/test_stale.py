"""render, validate and diff never answer from overlays the specs no longer compile to (real git, real kustomize)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from compiler.main import main
from tests.support import REPO
from tests.support.render import GitRepo, make_repo

VERSION_LINE = "    version: 4.14.1"  # minnie's annotationengine


def stale(name: str) -> str:
    return f"{name} is stale: run python -m compiler build\n"


@pytest.fixture
def repo(tmp_path: Path) -> GitRepo:
    """The examples (specs, gitops.yaml, bases) in a fresh git repository, built and committed: in sync."""
    root = tmp_path / "repo"
    for folder in ("environments", "base"):
        shutil.copytree(REPO / folder, root / folder)
    shutil.copy(REPO / "gitops.yaml", root / "gitops.yaml")
    assert main(["-C", str(root), "build"]) == 0
    return make_repo(root, {})


def run(repo: GitRepo, capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(["-C", str(repo.root), *args])
    out, err = capsys.readouterr()
    return code, out, err


def edit(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert old in text, f"{old!r} not in {path}"
    path.write_text(text.replace(old, new, 1))


def test_spec_edited_without_build_is_refused_then_build_fixes_it(
    repo: GitRepo, capsys: pytest.CaptureFixture[str], kustomize_tool: object
) -> None:
    capsys.readouterr()
    edit(repo.root / "environments/minnie.yaml", VERSION_LINE, "    version: 4.14.2")
    for args in (("render", "minnie"), ("validate", "minnie", "--no-fleet-rules"), ("validate", "minnie"),
                 ("validate",), ("diff", "--base", "HEAD"), ("diff", "minnie", "--base", "HEAD"),
                 ("diff", "--base", "HEAD", "--format", "json")):
        assert run(repo, capsys, *args) == (2, "", stale("overlays/minnie")), args
    # Only what the command reads must be fresh: fanc's overlay and the app-of-apps are.
    code, out, _ = run(repo, capsys, "render", "fanc")
    assert code == 0 and "kind: Deployment" in out
    assert run(repo, capsys, "diff", "fanc", "--base", "HEAD")[0] == 0

    assert run(repo, capsys, "build")[0] == 0
    code, out, _ = run(repo, capsys, "render", "minnie")
    assert code == 0 and "docker.io/caveconnectome/annotationengine:v4.14.2" in out
    code, out, _ = run(repo, capsys, "diff", "--base", "HEAD")
    assert code == 1 and "annotationengine: v4.14.1 → v4.14.2  [minnie]" in out
    assert "warning" not in out
    code, _, err = run(repo, capsys, "validate", "minnie", "--no-fleet-rules")
    assert "stale" not in err and err.splitlines()[-1].startswith("validated minnie: ")


def test_new_spec_without_build_is_missing(repo: GitRepo, capsys: pytest.CaptureFixture[str]) -> None:
    capsys.readouterr()
    text = (repo.root / "environments/fanc.yaml").read_text()
    (repo.root / "environments/fanc2.yaml").write_text(text)
    missing = "overlays/fanc2 is missing: run python -m compiler build\n"
    assert run(repo, capsys, "render", "fanc2") == (2, "", missing)
    args = ("validate", "fanc2", "--no-fleet-rules", "--kubernetes-version", "1.31")
    assert run(repo, capsys, *args) == (2, "", missing)


def test_hand_edited_argocd_overlay_is_refused(
    repo: GitRepo, capsys: pytest.CaptureFixture[str], kustomize_tool: object
) -> None:
    capsys.readouterr()
    kustomization = repo.root / "overlays/argocd/kustomization.yaml"
    kustomization.write_text(kustomization.read_text() + "# hand edit\n")
    # The fleet rules and diff read the app-of-apps; one cluster's render or validation does not.
    assert run(repo, capsys, "validate", "minnie") == (2, "", stale("overlays/argocd"))
    assert run(repo, capsys, "diff", "--base", "HEAD") == (2, "", stale("overlays/argocd"))
    assert run(repo, capsys, "render", "minnie")[0] == 0
    assert "stale" not in run(repo, capsys, "validate", "minnie", "--no-fleet-rules")[2]


def test_hand_edited_cluster_overlay_is_refused(repo: GitRepo, capsys: pytest.CaptureFixture[str]) -> None:
    capsys.readouterr()
    config = next(p for p in sorted((repo.root / "overlays/global").rglob("*")) if p.suffix == ".cfg")
    config.write_text(config.read_text() + "EXTRA = 1\n")
    assert run(repo, capsys, "render", "global") == (2, "", stale("overlays/global"))


def test_stale_base_is_said_in_every_format(
    repo: GitRepo, capsys: pytest.CaptureFixture[str], kustomize_tool: object
) -> None:
    capsys.readouterr()
    edit(repo.root / "environments/minnie.yaml", VERSION_LINE, "    version: 4.14.2")
    repo.commit("spec edited, build forgotten")  # the base: overlays/minnie is stale there
    assert run(repo, capsys, "build")[0] == 0
    warning = ("overlays/minnie at HEAD is stale: it differs from what environments/minnie.yaml there compiles to, "
               "so this diff also shows what building it would change")
    code, out, _ = run(repo, capsys, "diff", "--base", "HEAD")
    assert code == 1 and out.splitlines()[2] == f"warning: {warning}"
    code, out, _ = run(repo, capsys, "diff", "--base", "HEAD", "--format", "markdown")
    assert f"> **Warning:** {warning}" in out.splitlines()
    code, out, _ = run(repo, capsys, "diff", "--base", "HEAD", "--format", "json")
    assert json.loads(out)["warnings"] == [warning]
    # Against the first commit, in sync: no warning, and the JSON has no `warnings`.
    code, out, _ = run(repo, capsys, "diff", "--base", "HEAD~1", "--format", "json")
    assert code == 1 and "warnings" not in json.loads(out)


def test_build_records_what_it_compiled(
    repo: GitRepo, capsys: pytest.CaptureFixture[str], kustomize_tool: object
) -> None:
    # build remembers each overlay's files by a hash of its inputs: the next command compiles nothing.
    cache = repo.root / ".cache/cave-gitops/compiled"
    assert len(list(cache.glob("*.json"))) == 4  # fanc, global, minnie, argocd
    capsys.readouterr()
    spec = repo.root / "environments/minnie.yaml"
    original = spec.read_text()
    edit(spec, VERSION_LINE, "    version: 4.14.2")
    assert run(repo, capsys, "render", "minnie", "--no-cache") == (2, "", stale("overlays/minnie"))
    assert run(repo, capsys, "render", "minnie") == (2, "", stale("overlays/minnie"))
    assert len(list(cache.glob("*.json"))) == 5  # the edited spec's compilation, remembered
    spec.write_text(original)  # back as it was built: fresh again
    assert run(repo, capsys, "render", "minnie")[0] == 0
