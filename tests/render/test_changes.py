"""git.changed_paths and Inputs.touched_by: diff's shortcut for clusters nothing touched. In a real git repository,
each edit of the working tree is checked against the full way (both sides' input hashes): a cluster the changed
paths do not touch must have the same inputs on both sides, and the clusters touched must be the expected ones."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from compiler import git
from compiler.paths import overlay_rel
from compiler.render.hashing import InputHasher, Inputs
from compiler.render.sources import GitSource, worktree_source
from tests.support.render import GitRepo, make_repo, overlay, service_base, two_cluster_files

VERSION = "5.8.1"


def _files() -> dict[str, str]:
    files = two_cluster_files()
    files |= service_base("extra")
    files |= overlay("solo", {"extra": "v1"})  # the only user of base/extra
    files["overlays/solo/kustomization.yaml"] += "components:\n- ../../base/optional\n"  # not there (yet)
    files[".gitignore"] = "*.local\n.cache/\n"
    return files


@pytest.fixture
def repo(tmp_path: Path) -> GitRepo:
    return make_repo(tmp_path / "repo", _files())


def _touched(repo: GitRepo, root: Path | None = None) -> dict[str, bool]:
    """cluster → touched by the working tree's changes; asserts that untouched means equal inputs."""
    root = root or repo.root
    head = repo.git("rev-parse", "HEAD").strip()
    changed = git.changed_paths(root, head)
    old, new = InputHasher(GitSource(root, head)), InputHasher(worktree_source(root))
    out = {}
    for cluster in sorted(p.name for p in (root / "overlays").iterdir()):
        rel = overlay_rel(cluster)
        touched = old.inputs(rel).touched_by(changed)
        if not touched:
            assert old.overlay_hash(rel, VERSION) == new.overlay_hash(rel, VERSION), (cluster, sorted(changed))
        out[cluster] = touched
    return out


def _write(repo: GitRepo, rel: str, text: str) -> None:
    path = repo.root / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


EDITS: dict[str, tuple[Callable[[GitRepo], None], set[str]]] = {
    "nothing": (lambda r: None, set()),
    "an overlay's config": (lambda r: _write(r, "overlays/minnie/configs/annotationengine.cfg", "X=1\n"), {"minnie"}),
    "a shared base file": (
        lambda r: _write(r, "base/annotationengine/service.yaml", "# edited\n"), {"minnie", "pinky"}),
    "a base only one cluster uses": (lambda r: _write(r, "base/extra/hpa.yaml", "# edited\n"), {"solo"}),
    "an untracked file in a base no kustomization names": (
        lambda r: _write(r, "base/extra/notes.txt", "kustomize never reads it, the hash covers it\n"), {"solo"}),
    "an untracked directory in an overlay": (
        lambda r: _write(r, "overlays/pinky/new/deep/file.yaml", "a: 1\n"), {"pinky"}),
    "an ignored file in a base": (lambda r: _write(r, "base/extra/secret.local", "x\n"), {"solo"}),
    "a kustomization appearing where a missing component was named": (
        lambda r: _write(r, "base/optional/kustomization.yaml", "kind: Component\n"), {"solo"}),
    "a deleted base file": (lambda r: (r.root / "base/extra/service.yaml").unlink(), {"solo"}),
    "a staged new file in an overlay": (
        lambda r: (_write(r, "overlays/solo/extra.yaml", "b: 2\n"), r.git("add", "overlays/solo/extra.yaml")),
        {"solo"}),
    "files outside every input": (
        lambda r: (_write(r, "docs/notes.md", "x\n"), _write(r, ".cache/render/x", "y\n")), set()),
}  # fmt: skip


@pytest.mark.parametrize("name", list(EDITS))
def test_untouched_clusters_have_the_same_inputs(repo: GitRepo, name: str) -> None:
    edit, expected = EDITS[name]
    edit(repo)
    touched = _touched(repo)
    assert {c for c, t in touched.items() if t} == expected


def test_committed_changes_are_seen_against_an_older_commit(repo: GitRepo) -> None:
    first = repo.git("rev-parse", "HEAD").strip()
    _write(repo, "base/extra/deployment.yaml", "# committed edit\n")
    repo.commit()
    changed = git.changed_paths(repo.root, first)
    assert changed == {"base/extra/deployment.yaml"}
    assert git.changed_paths(repo.root, repo.git("rev-parse", "HEAD").strip()) == frozenset()


def test_paths_are_relative_to_a_root_inside_the_repository(tmp_path: Path) -> None:
    outer = make_repo(tmp_path / "outer", {f"fleet/{rel}": text for rel, text in _files().items()} | {"x.txt": "x"})
    (outer.root / "x.txt").write_text("changed outside the fleet\n")
    (outer.root / "fleet/base/extra/hpa.yaml").write_text("# edited\n")
    (outer.root / "fleet/overlays/pinky/untracked/a.yaml").parent.mkdir(parents=True)
    (outer.root / "fleet/overlays/pinky/untracked/a.yaml").write_text("a: 1\n")
    head = outer.git("rev-parse", "HEAD").strip()
    assert git.changed_paths(outer.root / "fleet", head) == {"base/extra/hpa.yaml", "overlays/pinky/untracked/"}
    touched = _touched(outer, outer.root / "fleet")
    assert {c for c, t in touched.items() if t} == {"solo", "pinky"}


def test_touched_by_rules() -> None:
    inputs = Inputs({"base/a/k.yaml": "1", "base/a/x.yaml": "2", "overlays/c/k.yaml": "3", "base/gone": "missing"},
                    frozenset(), frozenset({"base/a", "overlays/c", "base/gone"}))
    assert not inputs.touched_by(frozenset())
    assert not inputs.touched_by(frozenset({"base/b/x.yaml", "base/ab/x.yaml", "overlays/cc/", ".cache/"}))
    assert inputs.touched_by(frozenset({"base/a/x.yaml"}))  # an input file
    assert inputs.touched_by(frozenset({"base/a/sub/new.yaml"}))  # anything under a walked directory
    assert inputs.touched_by(frozenset({"base/gone/kustomization.yaml"}))  # a missing target appearing
    assert inputs.touched_by(frozenset({"base/"}))  # an untracked directory holding inputs
    assert inputs.touched_by(frozenset({"overlays/c/tmp/"}))  # an untracked directory inside a walked one
    outside = Inputs({"../shared/x.yaml": "1"}, frozenset(), frozenset())
    assert outside.touched_by(frozenset())  # nothing outside the tree is ever listed: always look
