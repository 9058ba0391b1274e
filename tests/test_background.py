"""compiler/background.py: a check run in a forked child, its outcome (return, the same UserError problems, a crash)
carried back to the parent, and the fallbacks (run in the parent) when forking is not safe or the child dies.

Each scenario runs in a fresh interpreter: Background forks only when its process has no other thread, and the test
session's own fixtures (fake servers) may keep threads alive."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

from tests.support import REPO

PRELUDE = """\
import os, sys, threading, time
from pathlib import Path
from compiler.background import Background
from compiler.errors import Problem, UserError
tmp = Path(sys.argv[1])
"""


def _run(tmp_path: Path, body: str) -> str:
    """Run the scenario in a fresh interpreter; its stdout (it fails the test on any error)."""
    done = subprocess.run([sys.executable, "-c", PRELUDE + textwrap.dedent(body), str(tmp_path)], cwd=REPO,
                          capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout


def test_runs_in_another_process_while_the_parent_works(tmp_path: Path) -> None:
    out = _run(tmp_path, """
        def work():
            time.sleep(1.5)
            (tmp / "pid").write_text(str(os.getpid()))
        started = time.monotonic()
        job = Background(work)
        assert job.forked
        assert time.monotonic() - started < 1.0  # the parent did not wait for it
        assert not (tmp / "pid").exists()
        job.wait()
        child = int((tmp / "pid").read_text())
        assert child != os.getpid()
        job.wait()  # a second wait is a no-op, not a second run
        assert int((tmp / "pid").read_text()) == child
        print("ok")
    """)
    assert out == "ok\n"


def test_user_error_comes_back_with_its_problems(tmp_path: Path) -> None:
    out = _run(tmp_path, """
        problems = [Problem("environments/a.yaml", 3, 7, "stale overlay"), Problem("", message="second")]
        def fail():
            raise UserError(problems)
        job = Background(fail)
        assert job.forked
        try:
            job.wait()
        except UserError as err:
            assert err.problems == sorted(problems), err.problems
            print("\\n".join(str(p) for p in err.problems))
    """)
    assert out == "second\nenvironments/a.yaml:3:7: stale overlay\n"


def test_a_crash_is_a_runtime_error_with_the_childs_traceback(tmp_path: Path) -> None:
    out = _run(tmp_path, """
        def crash():
            raise KeyError("nowhere")
        job = Background(crash)
        assert job.forked
        try:
            job.wait()
        except RuntimeError as err:
            print(str(err).splitlines()[0], "|", str(err).strip().splitlines()[-1])
    """)
    assert out == "the background check failed: | KeyError: 'nowhere'\n"


def test_a_child_that_dies_silently_is_replaced_by_a_run_here(tmp_path: Path) -> None:
    out = _run(tmp_path, """
        parent = os.getpid()
        def die_in_child():
            if os.getpid() != parent:
                os._exit(9)  # as if killed before reporting
            print("ran in the parent")
        job = Background(die_in_child)
        assert job.forked
        job.wait()
    """)
    assert out == "ran in the parent\n"


def test_no_fork_while_another_thread_runs(tmp_path: Path) -> None:
    out = _run(tmp_path, """
        stop = threading.Event()
        other = threading.Thread(target=stop.wait)
        other.start()
        ran_in = []
        job = Background(lambda: ran_in.append(os.getpid()))
        assert not job.forked
        assert ran_in == []  # run at wait(), not before
        job.wait()
        assert ran_in == [os.getpid()]
        stop.set()
        other.join()
        print("ok")
    """)
    assert out == "ok\n"


def test_cancel_stops_the_child(tmp_path: Path) -> None:
    out = _run(tmp_path, """
        def slow():
            time.sleep(2)
            (tmp / "late").write_text("should not happen")
        job = Background(slow)
        assert job.forked
        job.cancel()
        time.sleep(2.3)
        assert not (tmp / "late").exists()
        job.wait()  # after cancel: nothing to wait for
        assert not (tmp / "late").exists()
        print("ok")
    """)
    assert out == "ok\n"
