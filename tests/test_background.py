"""compiler/background.py: a check run in a forked child, its outcome (return, the same UserError problems, a crash)
carried back to the parent, and the fallbacks (run in the parent) when forking is not safe or the child dies."""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path

import pytest

from compiler.background import Background
from compiler.errors import Problem, UserError


def test_runs_in_another_process_while_the_parent_works(tmp_path: Path) -> None:
    marker = tmp_path / "pid"

    def work() -> None:
        time.sleep(1.5)
        marker.write_text(str(os.getpid()))

    started = time.monotonic()
    job = Background(work)
    assert job.forked
    assert time.monotonic() - started < 1.0  # the parent did not wait for it
    assert not marker.exists()
    job.wait()
    assert int(marker.read_text()) != os.getpid()
    job.wait()  # a second wait is a no-op, not a second run
    assert int(marker.read_text()) != os.getpid()


def test_user_error_comes_back_with_its_problems() -> None:
    problems = [Problem("environments/a.yaml", 3, 7, "stale overlay"), Problem("", message="second")]

    def fail() -> None:
        raise UserError(problems)

    job = Background(fail)
    assert job.forked
    with pytest.raises(UserError) as caught:
        job.wait()
    assert caught.value.problems == sorted(problems)


def test_a_crash_is_a_runtime_error_with_the_childs_traceback() -> None:
    def crash() -> None:
        raise KeyError("nowhere")

    with pytest.raises(RuntimeError, match=r"(?s)background check failed.*KeyError: 'nowhere'"):
        Background(crash).wait()


def test_a_child_that_dies_silently_is_replaced_by_a_run_here(tmp_path: Path) -> None:
    runs = tmp_path / "runs"
    parent = os.getpid()

    def die_in_child() -> None:
        if os.getpid() != parent:
            os._exit(9)  # as if killed before reporting
        runs.write_text("parent")

    job = Background(die_in_child)
    assert job.forked
    job.wait()
    assert runs.read_text() == "parent"


def test_no_fork_while_another_thread_runs() -> None:
    ran_in: list[int] = []
    stop = threading.Event()
    other = threading.Thread(target=stop.wait)
    other.start()
    try:
        job = Background(lambda: ran_in.append(os.getpid()))
        assert not job.forked
        assert ran_in == []  # run at wait(), not before
        job.wait()
        assert ran_in == [os.getpid()]
    finally:
        stop.set()
        other.join()


def test_cancel_stops_the_child(tmp_path: Path) -> None:
    marker = tmp_path / "late"

    def slow() -> None:
        time.sleep(2)
        marker.write_text("should not happen")

    job = Background(slow)
    assert job.forked
    job.cancel()
    time.sleep(2.3)
    assert not marker.exists()
    job.wait()  # after cancel: nothing to wait for
    assert not marker.exists()
