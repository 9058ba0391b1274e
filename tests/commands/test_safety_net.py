"""The command line's safety net: an unexpected exception is one line, "internal error ... please report it", exit
3 (1 means "changes", 2 bad input), and never its message (it may quote a secret). Called in-process with
arguments (tests), main() lets the exception through with its traceback, so no test hides a real bug."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from compiler import main as cli
from compiler.commands import status
from tests.support import REPO

SECRET = "Zq7Rt2Lm9Xw4Kp8Vn3Bc6Hd1Fj5Gs0Ya2Ee"
CRASH = ("import compiler.commands.status as s\n"
         "def run(args): raise KeyError(" + repr(SECRET) + ")\n"
         "s.run = run\n"
         "from compiler.main import main\n"
         "raise SystemExit(main())\n")


def _cli(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", CRASH, *args], cwd=REPO, capture_output=True, text=True,
                          timeout=60, check=False, env={**os.environ, **env})


def test_unexpected_exception_is_one_line_and_exit_3() -> None:
    proc = _cli("status")
    assert proc.returncode == cli.INTERNAL_ERROR_EXIT == 3
    assert "Traceback" not in proc.stderr and SECRET not in proc.stderr + proc.stdout
    line, = proc.stderr.splitlines()
    assert line.startswith("internal error: KeyError in compiler/main.py:"), line
    assert line.endswith("(a bug: please report it with the command you ran; run it again with CAVE_DEBUG=1 to see "
                         "the traceback)")


def test_debug_shows_the_traceback() -> None:
    proc = _cli("status", CAVE_DEBUG="1")
    assert proc.returncode == 1 and "Traceback" in proc.stderr and "KeyError" in proc.stderr


def test_in_process_calls_propagate(monkeypatch: pytest.MonkeyPatch) -> None:
    def boom(args: object) -> int:
        raise ZeroDivisionError("a bug")

    monkeypatch.setattr(status, "run", boom)
    with pytest.raises(ZeroDivisionError):
        cli.main(["--root", str(REPO), "status"])
