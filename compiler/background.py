"""Python work beside the main thread's: a check run in a forked child process while the parent plans and renders.

Threads share one interpreter lock, so a CPU-bound check run in a thread beside the planning only takes turns with
it; a forked child runs on the other core. The child inherits everything it needs (no arguments are pickled),
reports only its outcome back through a pipe (nothing, the problems of a UserError, or a crash's traceback), and
writes nothing but what the function itself writes (caches, written atomically). Where forking is not safe
(another thread is running, no os.fork) or the child dies without a word, the function runs in the parent instead,
at `wait()`: the outcome is the same either way, only the timing differs.
"""

from __future__ import annotations

import contextlib
import os
import pickle
import signal
import threading
import traceback
from collections.abc import Callable

from compiler import progress
from compiler.errors import Problem, UserError


class Background:
    """One call of `fn`, started in a child process when that is safe; `wait()` returns or raises its outcome."""

    def __init__(self, fn: Callable[[], None]) -> None:
        self._fn = fn
        self._pid = 0
        self._read = -1
        self._done = False
        if hasattr(os, "fork") and threading.active_count() == 1:
            self._fork()

    @property
    def forked(self) -> bool:
        return self._pid > 0

    def _fork(self) -> None:
        read, write = os.pipe()
        try:
            pid = os.fork()
        except OSError:  # no process to spare: run in the parent at wait()
            os.close(read)
            os.close(write)
            return
        if pid == 0:  # the child: run, report, and leave without running the parent's exit handlers
            os.close(read)
            try:
                with progress.reporting(None):  # the parent's progress display is the parent's
                    self._fn()
                outcome: tuple[str, object] = ("ok", None)
            except UserError as err:
                outcome = ("problems", err.problems)
            except BaseException:  # any failure is reported to the parent
                outcome = ("crash", traceback.format_exc())
            try:
                with os.fdopen(write, "wb") as pipe:
                    pipe.write(pickle.dumps(outcome))
            finally:
                os._exit(0)
        os.close(write)
        self._pid, self._read = pid, read

    def wait(self) -> None:
        """The function's outcome: return, raise its UserError (same problems), or raise RuntimeError on a crash.
        Runs the function here when no child was started or the child ended without reporting."""
        if self._done:
            return
        if not self.forked:
            self._done = True
            self._fn()
            return
        pipe, self._read = os.fdopen(self._read, "rb"), -1  # the file object owns the descriptor now
        with pipe:  # an interrupt here leaves the child to cancel()
            data = pipe.read()
        self._done = True
        self._reap()
        try:
            kind, value = pickle.loads(data)
        except Exception:  # killed or cut short: do the work here instead
            self._fn()
            return
        if kind == "problems":
            assert isinstance(value, list) and all(isinstance(p, Problem) for p in value)
            raise UserError(value)
        if kind == "crash":
            raise RuntimeError(f"the background check failed:\n{value}")

    def cancel(self) -> None:
        """Stop the child if it still runs (the caller no longer needs the outcome)."""
        if self.forked and not self._done:
            self._done = True
            with contextlib.suppress(ProcessLookupError):
                os.kill(self._pid, signal.SIGKILL)
            self._reap()
            if self._read >= 0:  # still ours (an interrupted wait() handed it to its file object, which closed it)
                os.close(self._read)
                self._read = -1

    def _reap(self) -> None:
        with contextlib.suppress(ChildProcessError):  # reaped already (SIGCHLD ignored by whoever started us)
            os.waitpid(self._pid, 0)
        self._pid = 0
