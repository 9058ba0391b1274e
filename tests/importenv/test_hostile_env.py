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


# --------------------------------------------------------------------------- embedded languages (values.py)

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "import_env"


@pytest.fixture(scope="module")
def lab(copy: Path) -> Path:
    """The copy with labglobal imported: a local import needs its global spec."""
    if not (copy / "environments" / "labglobal.yaml").exists():
        proc = run(copy, "import-env", str(FIXTURES / "labglobal.sh"), "--kind", "global")
        assert proc.returncode == 0, proc.stderr[-2000:]
    return copy


def _lab_env(tmp_path: Path, name: str, variable: str, line: str, files: dict[str, str | bytes]) -> Path:
    """The fixture env file `name` with `variable`'s line replaced by `line`, its `$(cat FILE)` files in
    tmp_path (the fixture's, then `files`)."""
    for fixture in FIXTURES.glob(name.removesuffix(".sh") + "_*"):
        (tmp_path / fixture.name).write_bytes(fixture.read_bytes())
    for file, content in files.items():
        target = tmp_path / file
        target.write_bytes(content) if isinstance(content, bytes) else target.write_text(content)
    lines = (FIXTURES / name).read_text().replace("${ENV_REPO_PATH}/", f"{tmp_path}/").splitlines()
    index = next(i for i, text in enumerate(lines) if text.startswith(f"export {variable}="))
    lines[index] = line
    env = tmp_path / name
    env.write_text("\n".join(lines) + "\n")
    return env


def _lab_import(repo: Path, env: Path, kind: str, where: str) -> str:
    started = time.monotonic()
    # --force: labglobal itself is in the copy; --output -: nothing would be written anyway
    proc = run(repo, "import-env", str(env), "--kind", kind, "--force", "--output", "-", timeout=60)
    assert time.monotonic() - started < 10
    return one_error(proc, where)


def test_python_literal_nested_by_signs(lab: Path, repo: Path, tmp_path: Path) -> None:
    env = _lab_env(tmp_path, "labglobal.sh", "AUTH_DEFAULT_ADMINS",
                   'export AUTH_DEFAULT_ADMINS="[' + "-" * 100_000 + '1, 2]"', {})
    line_no = env.read_text().splitlines().index('export AUTH_DEFAULT_ADMINS="[' + "-" * 100_000 + '1, 2]"') + 1
    line = _lab_import(lab, env, "global", f"{env}:{line_no}:")
    assert "AUTH_DEFAULT_ADMINS: nested deeper than 64 levels, the limit (flatten it)" in line
    assert len(line) < 400


@pytest.mark.parametrize(("content", "where", "what"), [
    ("[" * 100_000, ":1:65:", "nested deeper than 64 levels, the limit"),
    ("[" + "{}, " * 100_001 + "{}]", ":1:1:", "has more than 100000 values, the limit"),
    ("[" + " " * (1024 * 1024) + "]", ":1:1:", "longer than 1048576 characters, the limit"),
])
def test_schedule_file_bounds(lab: Path, repo: Path, tmp_path: Path, content: str, where: str, what: str) -> None:
    env = _lab_env(tmp_path, "labmouse.sh", "MAT_BEAT_SCHEDULES",
                   f"export MAT_BEAT_SCHEDULES=$(cat {tmp_path}/big.json)", {"big.json": content})
    line = _lab_import(lab, env, "local", f"{tmp_path}/big.json")
    if "longer" in what:  # the file itself is larger than read_text's cap
        assert "larger than 1024 KiB, the most the file MAT_BEAT_SCHEDULES reads" in line, line
    else:
        assert line.startswith(f"{tmp_path}/big.json{where} {what}"), line
        assert "(fix the schedule file MAT_BEAT_SCHEDULES reads on" in line


def test_schedule_file_that_is_a_directory_or_binary(lab: Path, repo: Path, tmp_path: Path) -> None:
    (tmp_path / "dir.json").mkdir()
    env = _lab_env(tmp_path, "labmouse.sh", "MAT_BEAT_SCHEDULES",
                   f"export MAT_BEAT_SCHEDULES=$(cat {tmp_path}/dir.json)", {})
    line = _lab_import(lab, env, "local", f"{tmp_path}/dir.json: is a directory, not a regular file")
    assert "the file MAT_BEAT_SCHEDULES reads" in line
    env = _lab_env(tmp_path, "labmouse.sh", "MAT_BEAT_SCHEDULES",
                   f"export MAT_BEAT_SCHEDULES=$(cat {tmp_path}/bin.json)", {"bin.json": b"[\x00]"})
    line = _lab_import(lab, env, "local", f"{tmp_path}/bin.json:1:2: control character '\\x00'")


def test_dash_config_shared_references_are_bounded(lab: Path, repo: Path, tmp_path: Path) -> None:
    """`B1 = [B0] * 10` nested 11 deep is 10**11 values once expanded: refused at the first name past the limit."""
    bomb = ("from dash_connectivity_viewer.app import create_app\nB0 = 1\n"
            + "".join(f"B{i} = [{', '.join([f'B{i - 1}'] * 10)}]\n" for i in range(1, 12))
            + "DASH_DATASTACK_SUPPORT = {'x': {'app': {'create_app': create_app.x, 'config': {'k': B11}}}}\n")
    env = _lab_env(tmp_path, "labmouse.sh", "DASH_CONFIG",
                   f"export DASH_CONFIG=$(cat {tmp_path}/dash.py)", {"dash.py": bomb})
    started = time.monotonic()
    proc = run(lab, "import-env", str(env), "--kind", "local", "--output", "-", timeout=60)
    assert time.monotonic() - started < 10
    assert proc.returncode == 0 and "Traceback" not in proc.stderr, proc.stderr[-2000:]
    # the dash app is left out with the reason, as for any dash config import-env cannot read
    assert f"{tmp_path}/dash.py:7:1: expands to more than 100000 values, the limit" in proc.stderr + proc.stdout


@pytest.mark.parametrize("body", ["X = a" + ".b" * 100_000, "X = " + "-" * 100_000 + "1", "X = " + "(" * 100_000])
def test_dash_config_deep_expressions(lab: Path, repo: Path, tmp_path: Path, body: str) -> None:
    env = _lab_env(tmp_path, "labmouse.sh", "DASH_CONFIG",
                   f"export DASH_CONFIG=$(cat {tmp_path}/dash.py)", {"dash.py": body + "\n"})
    proc = run(lab, "import-env", str(env), "--kind", "local", "--output", "-", timeout=60)
    assert proc.returncode == 0 and "Traceback" not in proc.stderr, proc.stderr[-2000:]
    assert f"{tmp_path}/dash.py:1:" in proc.stderr + proc.stdout
    assert "nested deeper than 64 levels, the limit" in proc.stderr + proc.stdout
