"""The overlays/ tree on disk: what build would write, what is there, and writing it atomically."""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

from compiler.compile import GENERATED_MARK, compile_cluster
from compiler.errors import UserError
from compiler.load import ENV_DIR, Loaded

OVERLAYS = "overlays"
Tree = dict[str, bytes]


def expected(loaded: dict[str, Loaded], clusters: list[str] | None = None) -> dict[str, Tree]:
    """Overlay files of the given clusters (all when None), compiled in memory."""
    names = sorted(loaded) if clusters is None else clusters
    return {name: compile_cluster(loaded[name].spec, f"{ENV_DIR}/{name}.yaml") for name in names}


def read_tree(directory: Path) -> Tree:
    if not directory.is_dir():
        return {}
    return {
        p.relative_to(directory).as_posix(): p.read_bytes()
        for p in sorted(directory.rglob("*"))
        if p.is_file()
    }


def generated_overlays(root: Path) -> list[str]:
    """Overlay directories this compiler wrote (their kustomization.yaml carries the generated mark)."""
    out: list[str] = []
    base = root / OVERLAYS
    if not base.is_dir():
        return out
    for d in sorted(base.iterdir()):
        k = d / "kustomization.yaml"
        if d.is_dir() and k.is_file() and GENERATED_MARK in k.read_text(encoding="utf-8", errors="replace")[:400]:
            out.append(d.name)
    return out


def _write_tree(directory: Path, tree: Tree) -> None:
    for rel, data in tree.items():
        path = directory / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)


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
