"""The freshness check reads overlays from git's index where git vouches for them: on the examples in a real git
repository, every kind of working-tree state gives the same verdict as reading every file (a copy without .git)."""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest

from compiler.build.check import _DiskBlobs, stale
from tests.support.cli import built_examples
from tests.support.render import GitRepo, make_repo


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return built_examples(tmp_path_factory.mktemp("examples") / "repo")


def _append(rel: str, text: str) -> Callable[[Path], None]:
    def edit(root: Path) -> None:
        with (root / rel).open("a") as f:
            f.write(text)
    return edit


def _linked(root: Path) -> None:
    """A file replaced by a link to the same content: read through, it is fresh."""
    target = root / "overlays/minnie/kustomization.yaml"
    (root / "elsewhere.yaml").write_bytes(target.read_bytes())
    target.unlink()
    os.symlink(root / "elsewhere.yaml", target)


def _staged_edit(root: Path) -> None:
    _append("overlays/fanc/kustomization.yaml", "# staged\n")(root)
    GitRepo(root).git("add", "overlays/fanc/kustomization.yaml")


def _assume_unchanged(root: Path) -> None:
    """A hand edit git is told not to look at: the index cannot vouch for the tree, every file is read."""
    GitRepo(root).git("update-index", "--assume-unchanged", "overlays/minnie/kustomization.yaml")
    _append("overlays/minnie/kustomization.yaml", "# edited behind git's back\n")(root)


def _crlf(root: Path) -> None:
    """Files checked out with CRLF: git calls them unmodified, their bytes are not what build writes."""
    repo = GitRepo(root)
    (root / ".gitattributes").write_text("overlays/** text eol=crlf\n")
    repo.git("add", ".gitattributes")
    repo.git("commit", "-qm", "crlf")
    shutil.rmtree(root / "overlays/fanc")
    repo.git("checkout", "--", "overlays/fanc")


STATES: dict[str, tuple[Callable[[Path], None], set[str]]] = {
    "as built": (lambda root: None, set()),
    "a hand-edited file": (_append("overlays/minnie/kustomization.yaml", "# edited\n"), {"minnie"}),
    "a staged edit": (_staged_edit, {"fanc"}),
    "an untracked file": (lambda root: (root / "overlays/fanc/extra.yaml").write_text("a: 1\n"), {"fanc"}),
    "an untracked directory": (
        lambda root: ((root / "overlays/global/new").mkdir(), (root / "overlays/global/new/x.yaml").write_text("x")),
        {"global"}),
    "an ignored file": (lambda root: ((root / ".gitignore").write_text("*.local\n"),
                                      (root / "overlays/minnie/notes.local").write_text("x")), {"minnie"}),
    "a deleted file": (lambda root: next((root / "overlays/fanc").rglob("*.cfg")).unlink(), {"fanc"}),
    "a deleted overlay": (lambda root: shutil.rmtree(root / "overlays/fanc"), {"fanc"}),
    "a file behind a link": (_linked, set()),
    "an edit git is told to ignore": (_assume_unchanged, {"minnie"}),
    "files checked out with CRLF": (_crlf, {"fanc"}),
}  # fmt: skip


@pytest.mark.parametrize("name", list(STATES))
def test_index_and_files_agree(built: Path, tmp_path: Path, name: str) -> None:
    shutil.copytree(built, tmp_path / "repo")
    repo = make_repo(tmp_path / "repo", {})
    plain = tmp_path / "plain"  # the same tree without git: every file is read
    edit, expected = STATES[name]
    edit(repo.root)
    shutil.copytree(repo.root, plain, ignore=shutil.ignore_patterns(".git"), symlinks=True)
    verdicts = {}
    for root in (repo.root, plain):
        problems = stale(root, None, argocd=True)  # build's compiled records, copied along: nothing compiles
        verdicts[root] = sorted(p.message for p in problems)
    assert verdicts[repo.root] == verdicts[plain]
    assert {m.split()[0].removeprefix("overlays/") for m in verdicts[plain]} == expected
    # Only what git cannot vouch for is read: the other overlays' blob ids come from the index.
    disk = _DiskBlobs(repo.root)
    if name in ("an edit git is told to ignore", "files checked out with CRLF"):
        assert not disk._git
    else:
        assert disk._git
        if name == "as built":
            assert disk._unsure == set() and disk._by["minnie"]  # every overlay from the index
