"""Overlays are never half-written (compiler/build/overlays.py): build SIGKILLed between any two steps of its
write phase, two builds at once, and an overlays/ that cannot be written.

The kill points are exact: the killed build is a real process (a fork of this one, or `python -c` around
compiler.main) whose os.rename, overlays.exchange and Path.write_bytes count their calls and SIGKILL the process
right after the N-th; the real functions do the work.
"""

from __future__ import annotations

import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from compiler.build import overlays
from compiler.main import main
from tests.support import REPO

OVERLAYS = ("fanc", "global", "minnie", "argocd")  # written in this order
EDIT = b"# edited by hand\n"
Trees = dict[str, overlays.Tree]


@pytest.fixture(scope="module")
def fleet(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Trees, Trees]:
    """A repository whose every overlay build must replace: (root, old trees on disk, new trees build writes)."""
    root = tmp_path_factory.mktemp("fleet")
    for name in ("environments", "overlays"):
        shutil.copytree(REPO / name, root / name, ignore=shutil.ignore_patterns(".build-*"))
    shutil.copy(REPO / "gitops.yaml", root / "gitops.yaml")
    new = {c: overlays.read_tree(root / "overlays" / c) for c in OVERLAYS}
    assert all(new.values())
    for c in OVERLAYS:
        kust = root / "overlays" / c / "kustomization.yaml"
        kust.write_bytes(kust.read_bytes() + EDIT)
    old = {c: overlays.read_tree(root / "overlays" / c) for c in OVERLAYS}
    return root, old, new


@pytest.fixture
def repo(fleet: tuple[Path, Trees, Trees], tmp_path: Path) -> Path:
    shutil.copytree(fleet[0], tmp_path / "repo", symlinks=True)
    return tmp_path / "repo"


def leftovers(root: Path) -> list[str]:
    return sorted(p.name for p in (root / "overlays").iterdir() if p.name.startswith("."))


def install_kill(point: str, n: int, *, use_exchange: bool) -> None:
    """In the process to be killed: SIGKILL right after the n-th call of `point` (rename, exchange or write)."""
    calls = {"n": 0}

    def hit(kind: str) -> None:
        if kind == point:
            calls["n"] += 1
            if calls["n"] == n:
                os.kill(os.getpid(), signal.SIGKILL)

    real_rename, real_exchange, real_write = os.rename, overlays.exchange, Path.write_bytes

    def rename(src: Any, dst: Any) -> None:
        real_rename(src, dst)
        hit("rename")

    def exchange(a: Path, b: Path) -> bool:
        if not use_exchange:
            return False
        done = real_exchange(a, b)
        if done:
            hit("exchange")
        return done

    def write_bytes(self: Path, data: Any) -> int:
        written = real_write(self, data)
        hit("write")
        return written

    os.rename = rename  # type: ignore[assignment]
    overlays.exchange = exchange
    Path.write_bytes = write_bytes  # type: ignore[method-assign]


def killed_build(root: Path, point: str, n: int, *, use_exchange: bool) -> None:
    """`build` in a forked process, SIGKILLed at the given point of its write phase."""
    pid = os.fork()
    if pid == 0:  # the child: never returns into pytest
        code = 99
        try:
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, 1)
            os.dup2(devnull, 2)
            install_kill(point, n, use_exchange=use_exchange)
            code = main(["--root", str(root), "build"])
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    assert os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGKILL, \
        f"build was not killed at {point} #{n} (status {status}): past its last step?"


def state(root: Path, old: Trees, new: Trees) -> dict[str, str]:
    out = {}
    for c in OVERLAYS:
        tree = overlays.read_tree(root / "overlays" / c)
        out[c] = "new" if tree == new[c] else "old" if tree == old[c] else "missing" if not tree else "MIXED"
    return out


def _points(fleet: tuple[Path, Trees, Trees]) -> list[tuple[str, int, bool]]:
    files = sum(len(t) for t in fleet[2].values())
    rng = random.Random(17)  # random points, the same every run
    return [
        *[("rename", n, False) for n in (1, 3, 4, 8)],  # two renames per overlay: between, and after them
        *[("exchange", n, True) for n in (1, 4)],
        *[("write", n, use) for n, use in zip(sorted(rng.sample(range(1, files + 1), 3)), (True, False, True),
                                            strict=True)],
    ]


def test_a_build_killed_at_any_point_leaves_every_overlay_whole_and_the_next_command_repairs(
        fleet: tuple[Path, Trees, Trees], tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    template, old, new = fleet
    seen: set[str] = set()
    for i, (point, n, use_exchange) in enumerate(_points(fleet)):
        root = tmp_path / f"r{i}"
        shutil.copytree(template, root, symlinks=True)
        killed_build(root, point, n, use_exchange=use_exchange)
        where = f"killed after {point} #{n}"
        after_kill = state(root, old, new)
        seen.update(after_kill.values())
        assert "MIXED" not in after_kill.values(), where
        moved_aside = [c for c, s in after_kill.items() if s == "missing"]
        if use_exchange:
            assert not moved_aside, f"{where}: with an exchange every overlay always exists"
        for c in moved_aside:  # only between the two renames of one overlay, which lies whole beside it
            (aside,) = (root / "overlays").glob(f".build-old-{c}-*")
            assert overlays.read_tree(aside) == old[c], where
        assert leftovers(root), where

        capsys.readouterr()
        command = "check" if i % 2 else "build"
        assert main(["--root", str(root), command]) in ((0, 1) if command == "check" else (0,)), where
        err = capsys.readouterr().err
        assert "note: overlays/: removed what an interrupted build left: .build-" in err, where
        for c in moved_aside:
            assert f"note: overlays/{c}/: restored the previous overlay" in err, where
        assert leftovers(root) == [], where
        repaired = state(root, old, new)
        assert set(repaired.values()) <= {"old", "new"}, where
        if command == "check":
            assert main(["--root", str(root), "build"]) == 0
        assert state(root, old, new) == dict.fromkeys(OVERLAYS, "new"), where
        assert leftovers(root) == [], where
    assert {"old", "new", "missing"} <= seen  # the points did fall before, between and after the swaps


def _python(code: str, *args: str) -> list[str]:
    return [sys.executable, "-c", code, *args]


KILLED = """
import os, signal, sys
calls = [0]
real = os.rename
def rename(a, b):
    real(a, b)
    calls[0] += 1
    if calls[0] == int(sys.argv[2]):
        os.kill(os.getpid(), signal.SIGKILL)
os.rename = rename
from compiler.build import overlays
overlays.exchange = lambda a, b: False  # the two-rename swap, as where RENAME_EXCHANGE is missing
from compiler.main import main
sys.exit(main(["--root", sys.argv[1], "build"]))
"""


def test_python_m_compiler_check_repairs_after_a_killed_build_process(
        repo: Path, fleet: tuple[Path, Trees, Trees]) -> None:
    _, old, new = fleet
    proc = subprocess.run(_python(KILLED, str(repo), "3"), capture_output=True, text=True, timeout=60)
    assert proc.returncode == -signal.SIGKILL, proc.stderr
    # renames 1-2 swapped fanc in; rename 3 moved global aside: global is missing, whole beside its place
    assert state(repo, old, new) == {"fanc": "new", "global": "missing", "minnie": "old", "argocd": "old"}
    check = subprocess.run([sys.executable, "-m", "compiler", "--root", str(repo), "check"], capture_output=True,
                           text=True, timeout=60)
    assert check.returncode == 1, check.stderr
    assert "note: overlays/global/: restored the previous overlay, which an interrupted build had moved aside to " \
           "overlays/.build-old-global-" in check.stderr
    assert "Traceback" not in check.stderr
    assert leftovers(repo) == []
    assert state(repo, old, new) == {"fanc": "new", "global": "old", "minnie": "old", "argocd": "old"}
    assert "overlays/global/kustomization.yaml: differs from what the spec compiles to" in check.stdout


HOLDER = """
import os, sys, time
from pathlib import Path
real = os.rename
def rename(a, b):  # the write phase of this build lasts until the test releases it: it holds the lock meanwhile
    held, release = Path(sys.argv[2]), Path(sys.argv[3])
    if not held.exists():
        held.write_text("holding")
        deadline = time.monotonic() + 60
        while not release.exists() and time.monotonic() < deadline:
            time.sleep(0.02)
    real(a, b)
os.rename = rename
from compiler.build import overlays
overlays.exchange = lambda a, b: False
from compiler.main import main
sys.exit(main(["--root", sys.argv[1], "build"]))
"""


def test_two_builds_at_once_both_succeed_the_second_waits_and_says_for_whom(
        repo: Path, fleet: tuple[Path, Trees, Trees], tmp_path: Path) -> None:
    _, old, new = fleet
    held, release = tmp_path / "held", tmp_path / "release"
    first = subprocess.Popen(_python(HOLDER, str(repo), str(held), str(release)), stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True)
    guard = threading.Timer(30, release.write_text, ("go",))  # a second build that never says it waits: no hang
    guard.start()
    try:
        deadline = time.monotonic() + 30
        while not held.exists():  # the first build is in its write phase, between two renames
            assert first.poll() is None and time.monotonic() < deadline, first.communicate()
            time.sleep(0.02)
        cli = [sys.executable, "-m", "compiler", "--root", str(repo), "build"]
        refused = subprocess.run([*cli, "--no-wait"], capture_output=True, text=True, timeout=60)
        second = subprocess.Popen(cli, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        assert second.stderr is not None
        waiting = second.stderr.readline()  # blocks until the second build has waited a second for the lock
    finally:
        release.write_text("go")
        guard.cancel()
    out2, err2 = second.communicate(timeout=60)
    out1, err1 = first.communicate(timeout=60)

    assert refused.returncode == 2, refused.stderr
    (line,) = refused.stderr.splitlines()
    assert line.startswith(f"overlays/: another build is writing it (pid {first.pid}, started 20")
    assert line.endswith(") (wait until it is done, or leave out --no-wait to wait for it)")
    assert waiting.startswith(f"overlays/: waiting for another build to finish writing it (pid {first.pid}, "
                              "started 20"), waiting + err2
    assert first.returncode == 0, err1
    assert second.returncode == 0, err2
    assert "wrote overlays/minnie/" in out1
    assert "wrote overlays/" not in out2  # the second found the first's work done: nothing left to write
    assert state(repo, old, new) == dict.fromkeys(OVERLAYS, "new")
    assert leftovers(repo) == []


def _file_instead_of(folder: Path) -> None:
    shutil.rmtree(folder)
    folder.write_text("not a folder\n")


@pytest.mark.parametrize("break_it,message", [
    (lambda root: _file_instead_of(root / "overlays"),
     "overlays/: cannot write (it is a file, not a folder) (move the file overlays away, then build again)"),
    (lambda root: (root / ".cache").write_text("not a folder\n"),
     ".cache/cave-gitops/overlays.lock: cannot write (Not a directory) (build keeps its lock in .cache/: make it, "
     "and the repository's top folder, writable for you, then try again)"),
])
def test_an_unwritable_overlays_is_one_line_and_exit_2(
        repo: Path, capsys: pytest.CaptureFixture[str], break_it: Callable[[Path], object], message: str) -> None:
    break_it(repo)
    specs = {p.name: p.read_bytes() for p in (repo / "environments").iterdir()}
    assert main(["--root", str(repo), "build"]) == 2
    assert capsys.readouterr().err.splitlines() == [message]
    assert {p.name: p.read_bytes() for p in (repo / "environments").iterdir()} == specs


def test_a_failed_swap_puts_every_overlay_back(repo: Path, fleet: tuple[Path, Trees, Trees],
                                               monkeypatch: pytest.MonkeyPatch,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    """The third overlay cannot be swapped in: the two already swapped go back, and nothing is left behind."""
    _, old, new = fleet
    real = overlays.exchange
    calls = {"n": 0}

    def exchange(a: Path, b: Path) -> bool:
        calls["n"] += 1
        if calls["n"] == 3:
            raise OSError(28, "No space left on device", str(b))
        return real(a, b)

    monkeypatch.setattr(overlays, "exchange", exchange)
    assert main(["--root", str(repo), "build"]) == 2
    err = capsys.readouterr().err.splitlines()
    assert err == ["overlays/minnie: cannot write (No space left on device: overlays/minnie; overlays/ is unchanged) "
                   "(free some disk space, then build again)"]
    assert state(repo, old, new) == dict.fromkeys(OVERLAYS, "old")
    assert leftovers(repo) == []


UNREADABLE = "overlays/fanc: cannot read (Permission denied: overlays/fanc/kustomization.yaml) (make it readable " \
             "for you, then try again)"


@pytest.mark.parametrize("path,mode,commands", [
    ("overlays", 0o555, ("build",)),
    ("overlays/fanc/kustomization.yaml", 0o000, ("build", "check")),
])
def test_permission_errors_are_one_line_and_exit_2(fleet: tuple[Path, Trees, Trees], path: str, mode: int,
                                                   commands: tuple[str, ...]) -> None:
    """Real PermissionErrors. Root reads and writes through any mode, so as root the commands run as nobody."""
    template, old, _ = fleet
    as_user: list[str] = []
    if os.geteuid() == 0:
        setpriv = shutil.which("setpriv")
        if setpriv is None:
            pytest.skip("running as root without setpriv: no user a file mode stops")
        as_user = [setpriv, "--reuid=65534", "--regid=65534", "--clear-groups"]
    root = Path(tempfile.mkdtemp(prefix="cave-readonly-"))  # not under pytest's root-only temp folder
    repo = root / "repo"
    try:
        shutil.copytree(template, repo, symlinks=True)
        if as_user:
            for item in [root, *root.rglob("*")]:
                os.chown(item, 65534, 65534, follow_symlinks=False)
        (repo / path).chmod(mode)
        for command in commands:
            proc = subprocess.run([*as_user, sys.executable, "-m", "compiler", "--root", str(repo), command],
                                  capture_output=True, text=True, timeout=60)
            assert proc.returncode == 2, proc.stderr
            (line,) = proc.stderr.splitlines()
            if mode:
                assert line.startswith("overlays/fanc: cannot write (Permission denied: overlays/.build-new-fanc-")
                assert line.endswith("; overlays/ is unchanged) (make overlays/ writable for you, e.g. chmod -R u+w "
                                     "overlays, then build again)"), line
            else:
                assert line == UNREADABLE
        (repo / path).chmod(0o755 if mode else 0o644)
        assert {c: overlays.read_tree(repo / "overlays" / c) for c in OVERLAYS} == old
        assert leftovers(repo) == []
    finally:
        (repo / path).chmod(0o755 if mode else 0o644)
        shutil.rmtree(root)
