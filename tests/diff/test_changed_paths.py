"""diff's shortcut through git.changed_paths gives exactly the result of reading everything: on the examples in a
real git repository (built, committed), each change below is diffed both ways and every output format compared."""

from __future__ import annotations

import re
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest

from compiler import git
from compiler.diff.engine import diff_ref
from compiler.diff.model import DiffResult
from compiler.diff.report import format_result
from compiler.main import main
from tests.support.cli import built_examples
from tests.support.render import GitRepo, make_repo


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return built_examples(tmp_path_factory.mktemp("examples") / "repo")


@pytest.fixture
def repo(built: Path, tmp_path: Path) -> GitRepo:
    root = tmp_path / "repo"
    shutil.copytree(built, root)
    return make_repo(root, {})


def _edit(repo: GitRepo, rel: str, old: str, new: str) -> None:
    path = repo.root / rel
    text = path.read_text()
    assert old in text, f"{old!r} not in {rel}"
    path.write_text(text.replace(old, new, 1))


def _build(repo: GitRepo) -> None:
    assert main(["-C", str(repo.root), "build"]) == 0


def _new_cluster(repo: GitRepo) -> None:
    """A copy of minnie under its own names, data and address (as bench/fleet.py makes its locals)."""
    text = (repo.root / "environments/minnie.yaml").read_text().replace("minnie", "m2")
    text = text.replace("pcg_bucket: cave-demo-pcg-edges", "pcg_bucket: cave-demo-pcg-edges-m2")
    (repo.root / "environments/m2.yaml").write_text(re.sub(r"static_ip: \S+", "static_ip: 203.0.113.21", text))


def _stale_base(repo: GitRepo) -> None:
    _edit(repo, "overlays/minnie/kustomization.yaml", "resources:", "# hand-edited at the base\nresources:")
    repo.commit("a hand edit on the base")
    _build(repo)  # the working tree is fresh again; the base keeps its hand edit


CHANGES: dict[str, Callable[[GitRepo], None]] = {
    "nothing": lambda r: None,
    "one version bumped": lambda r: (_edit(r, "environments/minnie.yaml", "version: 4.14.1", "version: 4.15.0"),
                                     _build(r)),
    "a base file": lambda r: _edit(r, "base/annotationengine/service.yaml", "port: 80", "port: 8080"),
    "gitops.yaml pins": lambda r: (_edit(r, "gitops.yaml", "version: v1.19.0", "version: v1.19.1"), _build(r)),
    "a new cluster, untracked": lambda r: (_new_cluster(r), _build(r)),
    "a cluster removed": lambda r: ((r.root / "environments/fanc.yaml").unlink(), _build(r)),
    "a stale base": _stale_base,
}


def _outputs(result: DiffResult) -> dict[str, str]:
    return {fmt: format_result(result, fmt, color=False) for fmt in ("text", "markdown", "json")}


@pytest.mark.parametrize("name", list(CHANGES))
def test_the_shortcut_changes_nothing(repo: GitRepo, name: str, kustomize_tool: object) -> None:
    CHANGES[name](repo)
    slow = diff_ref(repo.root, "HEAD", use_cache=False, changed_paths=False)
    # twice through the cache: the second run reads the watch sets and compiled base specs the first one stored
    for fast in (diff_ref(repo.root, "HEAD"), diff_ref(repo.root, "HEAD")):
        assert _outputs(fast) == _outputs(slow)
        assert (fast.clusters, fast.warnings, fast.applications, fast.versions) == \
            (slow.clusters, slow.warnings, slow.applications, slow.versions)
        assert fast.sync_order is not None and slow.sync_order is not None
        assert fast.sync_order.marks == slow.sync_order.marks
    if name == "nothing":
        assert not fast.changed
    if name == "a stale base":
        assert fast.warnings and "overlays/minnie" in fast.warnings[0]


def test_git_that_cannot_vouch_for_the_tree_turns_the_shortcut_off(repo: GitRepo) -> None:
    """A spec edited behind git's back (assume-unchanged): git lists nothing, so diff must read everything."""
    repo.git("update-index", "--assume-unchanged", "environments/minnie.yaml")
    _edit(repo, "environments/minnie.yaml", "version: 4.14.1", "version: 4.15.0")
    head = repo.git("rev-parse", "HEAD").strip()
    assert git.changed_paths(repo.root, head) is None
    assert git.changed_paths(repo.root, head) is None
    result = diff_ref(repo.root, "HEAD", use_cache=False)
    assert [(v.cluster, v.new) for v in result.versions if v.service == "annotationengine"] == [("minnie", "4.15.0")]
