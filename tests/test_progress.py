"""Progress on stderr (compiler/progress.py): one line per step when stderr is not a terminal, a transient bar
when it is, nothing without a reporter; and the stages that report (renders, validate) as a real command."""

from __future__ import annotations

import io
import os
import subprocess
import sys
from collections.abc import Iterator

import pytest

from compiler import progress
from compiler.progress import ENV, Event, Reporter, each, line, mode, reporting, stage, to_stream
from tests.support import REPO


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def ticking(step: float = 0.5) -> Iterator[float]:
    now = 100.0
    while True:
        yield now
        now += step


def test_lines_one_per_step_with_the_seconds_since_the_stage_began() -> None:
    out = io.StringIO()
    clock = ticking()
    with reporting(Reporter(out, "lines")), stage("render", 3, clock=lambda: next(clock)) as step:
        step("overlays/minnie")
        step("overlays/fanc")
        step("overlays/global")
    assert out.getvalue().splitlines() == [
        "[render 1/3] overlays/minnie (0.5 s)",
        "[render 2/3] overlays/fanc (1.0 s)",
        "[render 3/3] overlays/global (1.5 s)",
    ]


def test_without_a_reporter_a_stage_costs_nothing_and_says_nothing(capsys: pytest.CaptureFixture[str]) -> None:
    with stage("render", 2) as step:
        step("a")
    assert list(each("validate", ["x", "y"], str)) == ["x", "y"]
    assert capsys.readouterr() == ("", "")


def test_each_reports_a_step_when_its_body_is_done() -> None:
    events: list[Event] = []
    with reporting(events.append):
        for item in each("validate", ["fanc", "minnie", "global"], str.upper):
            assert [e.label for e in events] == ["", *(x.upper() for x in ["fanc", "minnie"][: len(events) - 1])]
            if item == "minnie":
                break
    assert [(e.stage, e.label, e.done, e.total) for e in events] == [
        ("validate", "", 0, 3), ("validate", "FANC", 1, 3)]  # minnie's body never finished


def test_mode_follows_the_stream_and_the_environment() -> None:
    assert mode(io.StringIO(), {}) == "lines"
    assert mode(Terminal(), {}) == "bar"
    assert mode(Terminal(), {ENV: "lines"}) == "lines"
    assert mode(io.StringIO(), {ENV: "off"}) == "off"
    assert mode(Terminal(), {ENV: "nonsense"}) == "bar"  # an unknown value is `auto`


def test_bar_on_a_terminal_is_drawn_and_gone_when_the_stage_ends(monkeypatch: pytest.MonkeyPatch) -> None:
    out = Terminal()
    reporter = Reporter(out, "bar")
    with reporting(reporter), stage("render", 2) as step:
        step("overlays/minnie")
        assert reporter._bar is not None
        step("overlays/fanc")
    assert reporter._bar is None  # stopped once every task finished
    drawn = out.getvalue()
    assert "render" in drawn and "2/2" in drawn and "\x1b[" in drawn
    assert "[render" not in drawn  # no log lines on a terminal


def test_to_stream_off_installs_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(ENV, "off")
    out = io.StringIO()
    with to_stream(out), stage("render", 1) as step:
        step("x")
    assert out.getvalue() == ""
    monkeypatch.setenv(ENV, "auto")
    with to_stream(out), stage("render", 1) as step:
        step("x")
    assert out.getvalue().startswith("[render 1/1] x (")
    assert progress._callback.get() is None  # uninstalled after the block


def test_a_command_logs_its_renders_and_validations_on_stderr(kustomize_tool: object) -> None:
    """As CI runs it: stderr a pipe, so one line per step; stdout (the findings) untouched."""
    env = {**os.environ, ENV: "auto"}
    proc = subprocess.run([sys.executable, "-m", "compiler", "validate", "minnie", "global", "--no-fleet-rules"],
                          cwd=REPO, capture_output=True, text=True, check=False, env=env)
    assert proc.returncode == 0, proc.stderr
    steps = [ln.split(" (")[0] for ln in proc.stderr.splitlines() if ln.startswith("[")]
    # renders in the order they finish (parallel), then one validation per cluster
    assert sorted(steps[:2]) == ["[render 1/2] global", "[render 2/2] minnie"] or \
        {s.split("] ")[1] for s in steps[:2]} == {"global", "minnie"}
    assert [s.split("] ")[0] for s in steps[:2]] == ["[render 1/2", "[render 2/2"]
    assert steps[2:] == ["[validate 1/2] global", "[validate 2/2] minnie"]
    assert all(ln.endswith(" s)") for ln in proc.stderr.splitlines() if ln.startswith("["))
    assert "[" not in proc.stdout


def test_line_format() -> None:
    assert line(Event("bootstrap apply", "sql:cave-minnie-sql", 4, 40, 12.345)) == (
        "[bootstrap apply 4/40] sql:cave-minnie-sql (12.3 s)")
