"""The README's "Quick start" and "Bringing up a cluster" are followed verbatim: their fenced `sh` commands are
read from README.md by this test and run, as written, in a copy of the repository (a git clone with a remote),
so the README cannot drift from what works. Between the commands the test does what the prose asks a person
to do: set every TODO-... placeholder `new-cluster` wrote."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.support import REPO
from tests.support.placeholders import fill, positions

SECTIONS = ("Quick start", "Bringing up a cluster")
SKIP = {"bash .ci/run"}  # the test suite itself: this test is part of it, never run it recursively
NOT_COPIED = {".venv", ".cache", "node_modules", ".git", ".pytest_cache", ".mypy_cache", ".ruff_cache",
              "__pycache__", "overlays/.build"}
PIP_LINE = re.compile(r"^\.venv/bin/python -m pip install .*$", re.MULTILINE)


def section_commands(readme: str, title: str) -> list[str]:
    """The commands of the fenced sh blocks of the `## <title>...` section, one per line (continuations joined)."""
    match = re.search(rf"^## {re.escape(title)}.*?$(.*?)(?=^## |\Z)", readme, re.MULTILINE | re.DOTALL)
    assert match, f"README has no section '## {title}'"
    commands: list[str] = []
    for block in re.findall(r"^```sh\n(.*?)^```", match.group(1), re.MULTILINE | re.DOTALL):
        for line in block.replace("\\\n", " ").splitlines():
            if line.strip() and not line.lstrip().startswith("#"):
                commands.append(line.strip())
    assert commands, f"README section '{title}' has no sh commands"
    return commands


def _ignore(folder: str, names: list[str]) -> set[str]:
    return {n for n in names if n in NOT_COPIED or n.startswith(".build-")}


@pytest.fixture(scope="module")
def clone(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, str]]:
    """A copy of the working tree as a git clone with an `origin`, with nothing beside it (a fresh clone)."""
    top = tmp_path_factory.mktemp("readme")
    work = top / "main"
    shutil.copytree(REPO, work, ignore=_ignore, symlinks=True)
    (work / ".venv").symlink_to(REPO / ".venv")
    if (REPO / ".ci" / "mermaid" / "node_modules").is_dir():  # the Mermaid renderer .ci/setup installed (npm ci)
        (work / ".ci" / "mermaid" / "node_modules").symlink_to(REPO / ".ci" / "mermaid" / "node_modules")
    # .ci/setup as written, but without `pip install -e .` into the shared .venv (which would repoint the
    # editable install at this temporary copy): the venv check and the kustomize look-up run as written.
    setup = (work / ".ci" / "setup").read_text()
    assert PIP_LINE.search(setup), "the test's stand-in for .ci/setup expects its pip install line"
    (work / ".ci" / "setup").write_text(PIP_LINE.sub(": # pip install skipped by tests/commands/test_readme.py",
                                                     setup))
    env = {**os.environ, "GIT_AUTHOR_NAME": "Operator", "GIT_AUTHOR_EMAIL": "op@example.org",
           "GIT_COMMITTER_NAME": "Operator", "GIT_COMMITTER_EMAIL": "op@example.org", "GIT_CONFIG_GLOBAL": "/dev/null",
           "PYTHONDONTWRITEBYTECODE": "1"}
    env.pop("PYTHONPATH", None)
    remote = top / "origin.git"
    for args, cwd in ((["init", "-q", "--bare", "-b", "main", str(remote)], top), (["init", "-q", "-b", "main"], work),
                      (["add", "-A"], work), (["commit", "-qm", "clone"], work),
                      (["remote", "add", "origin", str(remote)], work), (["push", "-q", "origin", "main"], work)):
        subprocess.run(["git", *args], cwd=cwd, env=env, check=True)
    (work / ".git" / "info" / "exclude").write_text(".venv\n.ci/mermaid/node_modules\n")
    return work, env


def sh(work: Path, env: dict[str, str], command: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["bash", "-c", command], cwd=work, env=env, capture_output=True, text=True, timeout=900)


def test_quick_start_runs_as_written(clone: tuple[Path, dict[str, str]]) -> None:
    work, env = clone
    commands = section_commands((REPO / "README.md").read_text(), "Quick start")
    assert any(c in SKIP for c in commands)
    for command in commands:
        if command in SKIP:
            continue
        done = sh(work, env, command)
        assert done.returncode == 0, f"README command failed: {command}\n{done.stdout}\n{done.stderr}"
    assert (work / "overlays" / "minnie" / "kustomization.yaml").is_file()


def test_bringing_up_a_cluster_runs_as_written(clone: tuple[Path, dict[str, str]]) -> None:
    work, env = clone
    commands = section_commands((REPO / "README.md").read_text(), "Bringing up a cluster")
    assert commands[0].startswith(".venv/bin/python -m compiler new-cluster ")
    name = commands[0].split()[4]
    spec = work / "environments" / f"{name}.yaml"
    for command in commands:
        done = sh(work, env, command)
        assert done.returncode == 0, f"README command failed: {command}\n{done.stdout}\n{done.stderr}"
        if spec.is_file() and (todos := positions(spec.read_text())):
            # as the README says: build names each placeholder left, at its line; a person sets them all
            refused = sh(work, env, ".venv/bin/python -m compiler build")
            assert refused.returncode == 2
            assert [ln.split(": ")[0] for ln in refused.stderr.splitlines()] == [
                f"environments/{name}.yaml:{line}:{col}" for line, col, _ in todos]
            assert all(": set it: " in ln for ln in refused.stderr.splitlines())
            spec.write_text(fill(spec.read_text(), name))
    assert (work / "overlays" / name / "kustomization.yaml").is_file()
    runbook = (work / "runbook.md").read_text()
    assert f"daf-{name}" in runbook
    pushed = subprocess.run(["git", "log", "--format=%s", "-1", f"origin/add-{name}"], cwd=work, env=env,
                            capture_output=True, text=True, check=True)
    assert pushed.stdout.strip() == f"Add cluster {name}"
