"""Cron fields, range-checked: celery beat's crontab fields (the beat schedule) and Kubernetes CronJob schedules.

Celery and Kubernetes accept some out-of-range values without complaint and run something else than meant:
celery's `hour: "*/77"` fires once a day at midnight. So every number, range `a-b` and step `*/n` or `a-b/n` is
checked against the field's range here, where the spec line can be named.
"""

from __future__ import annotations

import re
from typing import NamedTuple


class Field(NamedTuple):
    name: str
    low: int
    high: int
    names: tuple[str, ...] = ()  # names of low, low+1, ... (day_of_week: sun=0)
    example: str = ""


DAYS = ("sun", "mon", "tue", "wed", "thu", "fri", "sat")
MONTHS = ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec")

# celery.schedules.crontab's fields (celery accepts day names, and no month names, in every field; only
# day_of_week has days).
BEAT_FIELDS = {
    "minute": Field("minute", 0, 59, example="5, '*/15', '0,30'"),
    "hour": Field("hour", 0, 23, example="6, '*/4', '8-18'"),
    "day_of_week": Field("day_of_week", 0, 6, DAYS, "1, 'mon-fri' or [1, 3, 5]; 0 and sun are Sunday"),
    "day_of_month": Field("day_of_month", 1, 31, example="1, '1-7', '*/2'"),
    "month_of_year": Field("month_of_year", 1, 12, example="1, '*/3', '1,7'"),
}
# A Kubernetes CronJob's five fields (minute hour day-of-month month day-of-week), names as robfig/cron reads them.
CRONTAB_FIELDS = (
    Field("minute", 0, 59, example="5"),
    Field("hour", 0, 23, example="6"),
    Field("day of month", 1, 31, example="1"),
    Field("month", 1, 12, MONTHS, "1 or jan"),
    Field("day of week", 0, 6, DAYS, "1 or mon"),
)
MACROS = ("@yearly", "@annually", "@monthly", "@weekly", "@daily", "@midnight", "@hourly")
_PART = re.compile(r"^(?P<base>\*|\?|[0-9a-z]+(?:-[0-9a-z]+)?)(?:/(?P<step>[0-9]+))?$")


def _value(field: Field, text: str) -> int:
    if text.isdigit():
        number = int(text)
        if not field.low <= number <= field.high:
            raise ValueError(f"{number} is outside {field.low}-{field.high}")
        return number
    if text in field.names:
        return field.low + field.names.index(text)
    if field.names:
        raise ValueError(f"{text!r} is neither a number {field.low}-{field.high} nor one of {', '.join(field.names)}")
    raise ValueError(f"{text!r} is not a number {field.low}-{field.high}")


def _part(field: Field, part: str, *, value_steps: bool) -> None:
    m = _PART.match(part)
    if m is None:
        raise ValueError(f"{part!r} is neither a number, a range a-b nor a step */n")
    base, step = m.group("base"), m.group("step")
    if base == "?" and field.name not in ("day of month", "day of week"):
        raise ValueError("'?' is only for the day fields")
    if step is not None and not 1 <= int(step) <= field.high:
        raise ValueError(f"step /{step} is outside 1-{field.high}")
    if base in ("*", "?"):
        return
    low, _, high = base.partition("-")
    first = _value(field, low)
    if high:
        last = _value(field, high)
        if last < first:
            raise ValueError(f"range {base} runs backwards (write {high}-{low}, or two ranges to wrap around)")
    elif step is not None and not value_steps:
        raise ValueError(f"a step needs a range: write {base}-{field.high}/{step} or */{step}")


def check_text(field: Field, text: str, *, value_steps: bool = False) -> None:
    """ValueError saying what is wrong when `text` (comma-separated parts) is not a valid value of `field`;
    `value_steps` admits `a/n` (from a to the end, every n), which Kubernetes reads and celery does not."""
    if not text.strip():
        raise ValueError("empty")
    for part in text.strip().lower().split(","):
        _part(field, part.strip(), value_steps=value_steps)


def beat_field_problem(name: str, value: int | str | list[int]) -> str | None:
    """Why `value` is not a valid celery crontab field `name` (with the field's range and an example), or None."""
    field = BEAT_FIELDS[name]
    items: list[int | str] = list(value) if isinstance(value, list) else [value]
    try:
        if isinstance(value, list) and not value:
            raise ValueError("an empty list never fires")
        for item in items:
            if isinstance(item, str):
                check_text(field, item)
            elif not field.low <= item <= field.high:
                raise ValueError(f"{item} is outside {field.low}-{field.high}" if isinstance(value, list)
                                 else f"outside {field.low}-{field.high}")
    except ValueError as err:
        names = f" or {field.names[0]}-{field.names[-1]}" if field.names else ""
        detail = str(err).removeprefix(f"{value!r} is ")  # a single value: said once
        return (f"{value!r} is not a cron field: {detail} "
                f"({name} is {field.low}-{field.high}{names}; e.g. {field.example})")
    return None


def crontab_problem(schedule: str) -> str | None:
    """Why a Kubernetes CronJob schedule (five fields, or a macro like @daily) is invalid, or None."""
    text = schedule.strip()
    if text.startswith("@"):
        return None if text in MACROS else f"{schedule!r}: unknown macro (use one of {', '.join(MACROS)})"
    parts = text.split()
    if len(parts) != len(CRONTAB_FIELDS):
        return (f"{schedule!r} has {len(parts)} fields, not 5 "
                "(minute hour day-of-month month day-of-week, e.g. '0 3 * * *')")
    for field, part in zip(CRONTAB_FIELDS, parts, strict=True):
        try:
            check_text(field, part, value_steps=True)
        except ValueError as err:
            return (f"{schedule!r}: the {field.name} field {part!r} is invalid: {err} "
                    f"({field.name} is {field.low}-{field.high}, e.g. {field.example})")
    return None
