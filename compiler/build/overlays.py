"""The overlays/ tree on disk: what build would write, what is there, and writing it atomically."""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

from compiler.build.argocd import compile_argocd
from compiler.build.compile import GENERATED_MARK, compile_cluster
from compiler.errors import Problem, UserError
from compiler.paths import ARGOCD_DIR, ENV_DIR, OVERLAYS, SETTINGS_FILE
from compiler.spec.load import Loaded
from compiler.spec.settings import load_settings

ARGOCD = ARGOCD_DIR  # overlays/argocd/: the app-of-apps, never a cluster, never removed as an orphan
Tree = dict[str, bytes]


def expected(loaded: dict[str, Loaded], clusters: list[str] | None = None) -> dict[str, Tree]:
    """Overlay files of the given clusters (all when None), compiled in memory."""
    if ARGOCD in loaded:
        doc = loaded[ARGOCD].doc
        raise UserError([Problem(doc.path, 1, 1, f"the name {ARGOCD!r} is reserved for {OVERLAYS}/{ARGOCD}/, the "
                                                 "Argo CD app-of-apps (rename the spec and its `name`)")])
    names = sorted(loaded) if clusters is None else clusters
    return {name: compile_cluster(loaded[name].spec, f"{ENV_DIR}/{name}.yaml") for name in names}


def expected_argocd(root: Path, loaded: dict[str, Loaded]) -> Tree | None:
    """Files of overlays/argocd/ from gitops.yaml and every spec; None when the repository has no gitops.yaml."""
    settings = load_settings(root)
    return None if settings is None else compile_argocd(settings, loaded)


def expected_all(root: Path, loaded: dict[str, Loaded], clusters: list[str] | None = None) -> dict[str, Tree]:
    """Cluster overlays (all when None) plus overlays/argocd/, which spans every cluster and so is always built."""
    trees = expected(loaded, clusters)
    argocd = expected_argocd(root, loaded)
    if argocd is not None:
        trees[ARGOCD] = argocd
    return trees


def is_generated(directory: Path) -> bool:
    k = directory / "kustomization.yaml"
    return k.is_file() and GENERATED_MARK in k.read_text(encoding="utf-8", errors="replace")[:400]


def abandoned_argocd(root: Path) -> str | None:
    """Why overlays/argocd/ is left as it is though build no longer writes it (gitops.yaml is gone), if so."""
    if (root / SETTINGS_FILE).is_file() or not is_generated(root / OVERLAYS / ARGOCD):
        return None
    return (f"{OVERLAYS}/{ARGOCD}/: {SETTINGS_FILE} is gone, so build no longer writes it and never deletes it "
            f"(restore {SETTINGS_FILE}, or delete {OVERLAYS}/{ARGOCD}/ by hand if Argo CD no longer deploys this "
            "repository)")


def read_tree(directory: Path) -> Tree:
    if not directory.is_dir():
        return {}
    return {
        p.relative_to(directory).as_posix(): p.read_bytes()
        for p in sorted(directory.rglob("*"))
        if p.is_file()
    }


def generated_overlays(root: Path) -> list[str]:
    """Cluster overlay directories this compiler wrote (their kustomization.yaml carries the generated mark)."""
    base = root / OVERLAYS
    if not base.is_dir():
        return []
    return [d.name for d in sorted(base.iterdir()) if d.name != ARGOCD and d.is_dir() and is_generated(d)]


def _write_tree(directory: Path, tree: Tree) -> None:
    for parent in sorted({(directory / rel).parent for rel in tree}):  # one mkdir per directory, not per file
        parent.mkdir(parents=True, exist_ok=True)
    for rel, data in tree.items():
        (directory / rel).write_bytes(data)


def write(root: Path, trees: dict[str, Tree], remove: list[str]) -> tuple[list[str], list[str]]:
    """Replace changed overlays and delete `remove`; return (written, removed).

    Everything is first written to a temporary directory beside overlays/; each overlay is then swapped in
    with two renames, so an interrupted build never leaves a half-written overlay behind.
    """
    target = root / OVERLAYS
    target.mkdir(exist_ok=True)
    changed = {name: tree for name, tree in trees.items() if read_tree(target / name) != tree}
    if not changed and not remove:
        return [], []
    with tempfile.TemporaryDirectory(prefix=".build-", dir=target) as tmp:
        staging = Path(tmp) / "new"
        trash = Path(tmp) / "old"
        trash.mkdir()
        for name, tree in changed.items():
            _write_tree(staging / name, tree)
        placed: list[str] = []
        try:
            for name in [*changed, *remove]:
                if (target / name).exists():
                    os.rename(target / name, trash / name)
                if name in changed:
                    os.rename(staging / name, target / name)
                    placed.append(name)
        except OSError as err:
            # Put every previous overlay back: a failed build leaves overlays/ as it was.
            for name in placed:
                shutil.rmtree(target / name, ignore_errors=True)
            for old in trash.iterdir():
                os.replace(old, target / old.name)
            raise UserError(f"overlays/: could not write ({err}); the previous overlays are unchanged") from None
        shutil.rmtree(trash, ignore_errors=True)
    return sorted(changed), sorted(remove)
