"""Hostile env files for import-env (issue 17, class 1): expansions nested thousands deep (RecursionError),
/dev/zero (MemoryError), a FIFO (hung forever), a directory, binary bytes, a file too large. Each is one line
`path[:line:col]: what (how to fix)`, exit 2, in well under a second, and environments/ is left as it was."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from compiler.importenv.shell import MAX_NESTING
from tests.support.hostile import digest, one_error, repo_copy, run

SECRET = "Zq7Rt2Lm9Xw4Kp8Vn3Bc6Hd1Fj5Gs0Ya2Ee"


@pytest.fixture(scope="module")
def copy(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return repo_copy(tmp_path_factory.mktemp("hostile-env") / "repo")


@pytest.fixture
def repo(copy: Path) -> Iterator[Path]:
    before = digest(copy, "environments", "overlays")
    yield copy
    assert digest(copy, "environments", "overlays") == before, "a failed import-env wrote a file"


def _import(repo: Path, path: Path | str) -> tuple[str, float]:
    started = time.monotonic()
    proc = run(repo, "import-env", str(path), "--kind", "local", timeout=30)
    elapsed = time.monotonic() - started
    return one_error(proc, str(path), secrets=(SECRET,)), elapsed


def _header() -> str:
    return f"export ENVIRONMENT=minnie2\nexport POSTGRES_PASSWORD={SECRET}\n"


@pytest.mark.parametrize(("name", "opener", "closer"), [
    ("command substitution", "$(echo ", ")"),
    ("parameter default", "${A:-", "}"),
    ("quoted command substitution", '"$(echo ', ')"'),
    ("defaults and substitutions mixed", "${A:-$(echo ", ")}"),
])
def test_deeply_nested_expansions(repo: Path, tmp_path: Path, name: str, opener: str, closer: str) -> None:
    env = tmp_path / "deep.sh"
    env.write_text(_header() + "export A=" + opener * 3000 + "x" + closer * 3000 + "\n")
    line, elapsed = _import(repo, env)
    assert line.startswith(f"{env}:3:"), line
    assert f"expansions nested deeper than {MAX_NESTING} levels" in line
    assert elapsed < 10


@pytest.mark.parametrize("kind", ["device", "fifo", "directory"])
def test_special_files_are_refused_before_reading(repo: Path, tmp_path: Path, kind: str) -> None:
    path: Path
    if kind == "device":
        path = Path("/dev/zero")
        expected = "is a device, not a regular file"
    elif kind == "fifo":
        path = tmp_path / "env.sh"
        os.mkfifo(path)  # no writer: an open for reading would block forever
        expected = "is a named pipe (FIFO), not a regular file"
    else:
        path = tmp_path
        expected = "is a directory, not a regular file"
    line, elapsed = _import(repo, path)
    assert line == f"{path}: {expected} (give the path of a CAVEdeployment env file)"
    assert elapsed < 10


def test_too_large(repo: Path, tmp_path: Path) -> None:
    env = tmp_path / "big.sh"
    env.write_text(_header() + "# " + "x" * (1024 * 1024) + "\n")
    line, _ = _import(repo, env)
    assert line == f"{env}: larger than 1024 KiB, the most a CAVEdeployment env file may be (is it the right file?)"


@pytest.mark.parametrize(("data", "where", "what"), [
    (b"export ENVIRONMENT=caf\xe9\n", ":1:23:", "byte 0xe9 is not UTF-8 text"),
    (b"export ENVIRONMENT=minnie\n\x7fELF\x02\x01\x01\x00\x00", ":2:1:", "control character '\\x7f'"),
    (b"export ENVIRONMENT=minnie\nexport A=\x00\n", ":2:10:", "control character '\\x00'"),
])
def test_binary_bytes(repo: Path, tmp_path: Path, data: bytes, where: str, what: str) -> None:
    env = tmp_path / "bin.sh"
    env.write_bytes(data)
    line, _ = _import(repo, env)
    assert line.startswith(f"{env}{where} {what}"), line
