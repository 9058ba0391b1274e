"""Progress of long stages (renders, validation, bootstrap actions, import, the bot's lookups) on stderr.

The stages only call `stage(name, total)` and its step function; what happens to a step is the callback the
command line installs with `reporting(...)` (compiler/main.py), so the core stays quiet and testable: without one,
a step costs a context-variable lookup. `Reporter` is that callback: on a terminal, a rich progress bar per stage
(transient: gone when the command ends); otherwise one line per step, `[render 2/3] overlays/minnie (1.4 s)`, the
seconds since the stage began, so a CI log shows where the time goes.

$CAVE_GITOPS_PROGRESS chooses: `auto` (default: a bar on a terminal, lines elsewhere), `bar`, `lines` or `off`.
"""

from __future__ import annotations

import contextlib
import os
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any, TextIO, TypeVar

ENV = "CAVE_GITOPS_PROGRESS"
MODES = ("auto", "bar", "lines", "off")
T = TypeVar("T")


@dataclass(frozen=True)
class Event:
    """A stage began (done 0, label "") or one of its steps finished."""

    stage: str
    label: str
    done: int
    total: int
    elapsed: float  # seconds since the stage began


Callback = Callable[[Event], None]
Step = Callable[[str], None]
_callback: ContextVar[Callback | None] = ContextVar("cave_gitops_progress", default=None)


@contextlib.contextmanager
def reporting(callback: Callback | None) -> Iterator[None]:
    """Send the events of every stage run inside this block to `callback` (None: to nobody)."""
    token = _callback.set(callback)
    try:
        yield
    finally:
        _callback.reset(token)


@contextlib.contextmanager
def stage(name: str, total: int, *, clock: Callable[[], float] = time.monotonic) -> Iterator[Step]:
    """A stage of `total` steps; call the step function yielded with a label when each step finishes."""
    callback = _callback.get()
    if callback is None or total <= 0:
        yield lambda label: None
        return
    start = clock()
    done = 0
    callback(Event(name, "", 0, total, 0.0))

    def step(label: str) -> None:
        nonlocal done
        done += 1
        callback(Event(name, label, done, total, clock() - start))

    yield step


def each(name: str, items: Sequence[T], label: Callable[[T], str]) -> Iterator[T]:
    """The items, one stage step reported as each one's loop body finishes (`for x in each(...)`)."""
    with stage(name, len(items)) as step:
        for item in items:
            yield item
            step(label(item))


def mode(stream: TextIO, env: dict[str, str] | os._Environ[str] | None = None) -> str:
    """The reporting mode for `stream`: $CAVE_GITOPS_PROGRESS, with `auto` resolved by whether it is a terminal."""
    chosen = (env if env is not None else os.environ).get(ENV, "auto").strip().lower() or "auto"
    if chosen not in MODES:
        chosen = "auto"
    if chosen == "auto":
        return "bar" if stream.isatty() else "lines"
    return chosen


class Reporter:
    """The command line's callback: a transient rich bar per stage on a terminal, else one line per step."""

    def __init__(self, stream: TextIO, how: str) -> None:
        self.stream = stream
        self.how = how
        self._bar: Any = None  # rich.progress.Progress, imported only for a terminal
        self._tasks: dict[str, Any] = {}

    def __call__(self, event: Event) -> None:
        if self.how == "lines":
            if event.done:
                self.stream.write(line(event) + "\n")
                self.stream.flush()
        elif self.how == "bar":
            self._draw(event)

    def _draw(self, event: Event) -> None:
        if self._bar is None:
            from rich.console import Console
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

            # stdout goes above the bar only when it is the same terminal; a redirected stdout is left alone
            self._bar = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                                 TimeElapsedColumn(), TextColumn("{task.fields[label]}"),
                                 console=Console(file=self.stream), transient=True,
                                 redirect_stdout=sys.stdout.isatty(), redirect_stderr=True)
            self._bar.start()
        if event.done == 0 or event.stage not in self._tasks:
            self._tasks[event.stage] = self._bar.add_task(event.stage, total=event.total, label="")
        self._bar.update(self._tasks[event.stage], completed=event.done, label=event.label)
        if all(task.finished for task in self._bar.tasks):  # gone between stages: the command's output is not
            self.close()                                     # written under a live bar

    def close(self) -> None:
        if self._bar is not None:
            self._bar.stop()
            self._bar = None
            self._tasks = {}



def line(event: Event) -> str:
    """`[render 2/3] overlays/minnie (1.4 s)`: one step, for logs."""
    return f"[{event.stage} {event.done}/{event.total}] {event.label} ({event.elapsed:.1f} s)"


@contextlib.contextmanager
def to_stream(stream: TextIO) -> Iterator[None]:
    """Report every stage of this block on `stream` as $CAVE_GITOPS_PROGRESS and the stream say (compiler/main.py)."""
    how = mode(stream)
    if how == "off":
        yield
        return
    reporter = Reporter(stream, how)
    try:
        with reporting(reporter):
            yield
    finally:
        reporter.close()
