"""The CLI run in-process on a copy of the examples, as most command tests use it."""

from __future__ import annotations

import contextlib
import io
import shutil
from collections.abc import Sequence
from pathlib import Path

from compiler.main import main
from tests.support import REPO


def run(root: Path, *args: str) -> int:
    """`python -m compiler --root ROOT ARGS...`'s exit code (its output goes where pytest captures it)."""
    return main(["--root", str(root), *args])


def run_captured(root: Path, *args: str) -> tuple[int, str, str]:
    """The exit code, stdout and stderr of `python -m compiler --root ROOT ARGS...`."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(["--root", str(root), *args])
    return code, out.getvalue(), err.getvalue()


def copy_examples(dest: Path, folders: Sequence[str] = ("environments",)) -> Path:
    """`dest` holding a copy of the repository's `folders` and gitops.yaml."""
    for folder in folders:
        shutil.copytree(REPO / folder, dest / folder)
    shutil.copy(REPO / "gitops.yaml", dest / "gitops.yaml")
    return dest


def built_examples(dest: Path) -> Path:
    """`dest` holding the examples' specs, bases and gitops.yaml, built (overlays written): a fleet in sync."""
    copy_examples(dest, ("environments", "base"))
    assert main(["-C", str(dest), "build"]) == 0
    return dest
