"""Cron fields are range-checked: the beat schedule's celery crontab fields (numbers, lists, ranges a-b, steps */n
and a-b/n, day names) and pmanagement's tally CronJob schedule, each refused at its spec line."""

from __future__ import annotations

from pathlib import Path

import pytest

from compiler.spec import cron
from tests.support.specs import build_errors, edit, line_of

DAILY = "{name: daily-materialization, task: run_daily_periodic_materialization, minute: 10, hour: 8, day_of_week: "
BEAT = "services.materializationengine.beat_schedule"

# (cluster, old text, new text, the value reported (its line and column are the position), the message after it)
CASES = [
    ("fanc", 'hour: "*/6"', 'hour: "*/77"', '"*/77"',
     f"{BEAT}[1].hour: '*/77' is not a cron field: step /77 is outside 1-23 (hour is 0-23; e.g. 6, '*/4', '8-18')"),
    ("fanc", "minute: 0, hour: 6", "minute: 60, hour: 6", "60, hour: 6",
     f"{BEAT}[0].minute: 60 is not a cron field: outside 0-59 (minute is 0-59; e.g. 5, '*/15', '0,30')"),
    ("minnie", DAILY + "[1, 2, 3, 4, 6]", DAILY + "[1, 2, 3, 4, 7]", "[1, 2, 3, 4, 7]",
     f"{BEAT}[0].day_of_week: [1, 2, 3, 4, 7] is not a cron field: 7 is outside 0-6 (day_of_week is 0-6 or sun-sat; "
     "e.g. 1, 'mon-fri' or [1, 3, 5]; 0 and sun are Sunday)"),
    ("minnie", 'day_of_month: "1-7"', 'day_of_month: "0-7"', '"0-7"',
     f"{BEAT}[2].day_of_month: '0-7' is not a cron field: 0 is outside 1-31 (day_of_month is 1-31; "
     "e.g. 1, '1-7', '*/2')"),
    ("minnie", 'day_of_month: "1-7"', 'day_of_month: "1-7", month_of_year: "*/13"', '"*/13"',
     f"{BEAT}[2].month_of_year: '*/13' is not a cron field: step /13 is outside 1-12 (month_of_year is 1-12; "
     "e.g. 1, '*/3', '1,7')"),
    ("minnie", DAILY + "[1, 2, 3, 4, 6]", DAILY + "fri-mon", "fri-mon",
     f"{BEAT}[0].day_of_week: 'fri-mon' is not a cron field: range fri-mon runs backwards (write mon-fri, or two "
     "ranges to wrap around) (day_of_week is 0-6 or sun-sat; e.g. 1, 'mon-fri' or [1, 3, 5]; 0 and sun are Sunday)"),
    ("minnie", 'minute: "*/15", hour: "*"', 'minute: "*/15", hour: "5/2"', '"5/2"',
     f"{BEAT}[4].hour: '5/2' is not a cron field: a step needs a range: write 5-23/2 or */2 (hour is 0-23; "
     "e.g. 6, '*/4', '8-18')"),
    ("minnie", "    auth_database_name: ", '    tally_schedule: "0 24 * * *"\n    auth_database_name: ',
     '"0 24 * * *"', "services.pmanagement.tally_schedule: '0 24 * * *': the hour field '24' is invalid: 24 is "
     "outside 0-23 (hour is 0-23, e.g. 6)"),
    ("minnie", "    auth_database_name: ", '    tally_schedule: "0 0 * *"\n    auth_database_name: ',
     '"0 0 * *"', "services.pmanagement.tally_schedule: '0 0 * *' has 4 fields, not 5 (minute hour day-of-month month "
     "day-of-week, e.g. '0 3 * * *')"),
]


@pytest.mark.parametrize("cluster,old,new,value,message", CASES, ids=[c[4][len(BEAT):][:40] for c in CASES])
def test_bad_cron_fields(repo: Path, capsys: pytest.CaptureFixture[str], cluster: str, old: str, new: str,
                         value: str, message: str) -> None:
    text = edit(repo, cluster, old, new)
    errors = build_errors(repo, capsys)
    line = line_of(text, value)
    col = text.splitlines()[line - 1].index(value) + 1
    assert errors == [f"environments/{cluster}.yaml:{line}:{col}: {message}"]


@pytest.mark.parametrize("field,value", [
    ("minute", 0), ("minute", 59), ("minute", "*/15"), ("minute", "0,30"), ("minute", "*"), ("hour", "8-18/2"),
    ("hour", 23), ("day_of_week", "mon-fri"), ("day_of_week", "SUN"), ("day_of_week", [0, 6]), ("day_of_week", "1,3,5"),
    ("day_of_month", 31), ("day_of_month", "1-7"), ("month_of_year", "*/3"), ("month_of_year", 12),
])
def test_valid_beat_fields(field: str, value: int | str | list[int]) -> None:
    assert cron.beat_field_problem(field, value) is None


@pytest.mark.parametrize("field,value", [
    ("minute", -1), ("hour", 24), ("hour", "*/0"), ("hour", "1-24"), ("day_of_week", "7"), ("day_of_week", "sunday"),
    ("day_of_week", []), ("day_of_month", 0), ("day_of_month", "32"), ("month_of_year", "jan"), ("minute", "1,,2"),
    ("minute", "?"), ("hour", "every 6h"),
])
def test_invalid_beat_fields(field: str, value: int | str | list[int]) -> None:
    assert cron.beat_field_problem(field, value) is not None


@pytest.mark.parametrize("schedule,ok", [
    ("0 0 * * *", True), ("*/5 * * * mon-fri", True), ("30 2 1 jan,jul ?", True), ("5/15 * * * *", True),
    ("@daily", True), ("0 0 * * 7", False), ("*/77 * * * *", False), ("0 0 0 * *", False), ("0 0 * 13 *", False),
    ("@sometimes", False), ("0 0 * * * *", False),
])
def test_tally_schedule(schedule: str, ok: bool) -> None:
    assert (cron.crontab_problem(schedule) is None) is ok
