"""`python -m compiler --version`: the package, the Python running it, the kustomize renders use and the pin."""

from __future__ import annotations

import importlib.metadata
import platform
import subprocess
import sys
from pathlib import Path

import pytest

from compiler.main import main
from compiler.render import kustomize
from tests.support import REPO


def test_version_names_package_python_and_kustomize(capsys: pytest.CaptureFixture[str]) -> None:
    tool = kustomize.find(REPO)
    with pytest.raises(SystemExit) as exit_:
        main(["-C", str(REPO), "--version"])
    assert exit_.value.code == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == f"cave-gitops {importlib.metadata.version('cave-gitops')} ({REPO / 'compiler'})"
    assert lines[1] == f"Python {platform.python_version()} ({sys.executable})"
    assert lines[2].startswith(f"kustomize {tool.version} ({' '.join(tool.command)})")
    assert lines[2].endswith("; gitops.yaml pins v5.8.1")
    assert len(lines) == 3


def test_version_without_a_kustomize_says_so(tmp_path: Path) -> None:
    """As a process: a bad $KUSTOMIZE is reported on the kustomize line, still exit 0, no traceback."""
    proc = subprocess.run([sys.executable, "-m", "compiler", "--version"], cwd=tmp_path, capture_output=True,
                          text=True, check=False, env={"KUSTOMIZE": str(tmp_path / "none"), "PATH": "/usr/bin:/bin"})
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert lines[0].startswith("cave-gitops ")
    assert lines[2].startswith(f"kustomize: none usable ({tmp_path / 'none'}: cannot run it")
    assert "; gitops.yaml pins" not in lines[2]  # no gitops.yaml here
    assert proc.stderr == ""
