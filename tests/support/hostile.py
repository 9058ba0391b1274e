"""Running the CLI on hostile input: a throwaway copy of the repository, the command in a subprocess, and the
checks every bad input must pass (exit 2, one line with the place, no traceback, nothing written, nothing secret)."""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
from pathlib import Path

from tests.support import REPO

_SKIP = shutil.ignore_patterns(".venv", ".cache", "node_modules", ".git", ".mypy_cache", ".ruff_cache",
                               ".pytest_cache", "__pycache__", "tests", "bench", "*.egg-info")


def repo_copy(dest: Path) -> Path:
    """A copy of the repository (package included: `python -m compiler` runs the copy) as a fresh git repo."""
    shutil.copytree(REPO, dest, ignore=_SKIP)
    git = ["git", "-C", str(dest), "-c", "user.email=t@example.org", "-c", "user.name=t"]
    subprocess.run([*git, "init", "-q"], check=True)
    subprocess.run([*git, "add", "-A"], check=True)
    subprocess.run([*git, "commit", "-qm", "copy"], check=True)
    return dest


def run(repo: Path, *args: str, env: dict[str, str] | None = None,
        timeout: float = 60) -> subprocess.CompletedProcess[str]:
    """`python -m compiler ARGS` in `repo` (the copy's own package), output captured as text."""
    return subprocess.run([sys.executable, "-m", "compiler", *args], cwd=repo, capture_output=True, text=True,
                          errors="replace", timeout=timeout, check=False,
                          env={**os.environ, "PYTHONDONTWRITEBYTECODE": "1", **(env or {})})


def digest(repo: Path, *folders: str) -> dict[str, str]:
    """Path -> sha256 of every file under `folders` (what must not change when a command fails)."""
    return {str(p.relative_to(repo)): hashlib.sha256(p.read_bytes()).hexdigest()
            for folder in folders for p in sorted((repo / folder).rglob("*")) if p.is_file()}


def one_error(proc: subprocess.CompletedProcess[str], where: str, *, secrets: tuple[str, ...] = ()) -> str:
    """The one error line of a failed command (exit 2, no traceback) starting with `where`; stderr lines that are
    progress (`[render 1/3] ...`) are not errors."""
    assert proc.returncode == 2, (proc.returncode, proc.stderr[-3000:])
    assert "Traceback" not in proc.stderr, proc.stderr[-3000:]
    lines = [line for line in proc.stderr.splitlines() if line and not line.startswith(("[", "kustomize "))]
    assert len(lines) == 1, proc.stderr[-3000:]
    assert lines[0].startswith(where), lines[0]
    for secret in secrets:
        assert secret not in proc.stdout and secret not in proc.stderr
    return lines[0]
