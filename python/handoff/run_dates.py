"""Which runs a date asks for: the run-status page's ``date=`` and ``handoff explain --at`` (one
implementation for both).

* A **date-time** (``2026-11-26T10:00``; UTC unless it carries an offset, ``Z`` or ``+01:00``)
  asks for one run: the one at the latest tick of the pipeline's schedule at or before it.
* A **calendar date** (``2026-11-26``) asks for the runs whose logical date falls on that date
  **in the pipeline's own timezone** (``ticks``: what Airflow's timetable computes): none, one,
  or several — an hourly pipeline has 24 (23 or 25 on a daylight-saving day). A Europe/Berlin
  ``0 1 * * *`` pipeline's run of 31 March has the logical date 2026-03-30T23:00Z: it is the run
  of ``2026-03-31``, not of ``2026-03-30``.

Pure. Datetimes out are aware UTC.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, timezone
from typing import Any

from .errors import HandoffError
from .ticks import as_schedule, latest_tick_at_or_before, ticks_between

AT_RANGE = (1970, 2199)  # years a date may name: runs happen in this span, and cron arithmetic stays finite
HINT = "write e.g. 2026-11-24 (the runs of that date) or 2026-11-24T05:00 (one run; UTC unless an offset is given)"
MAX_TEXT = 40
MAX_RUNS = 1500  # a calendar day holds at most 1440 runs of an every-minute schedule (1500: DST)


@dataclass(frozen=True)
class Asked:
    """A parsed date: ``day`` (a calendar date) or ``moment`` (a date-time, aware UTC); one is None."""

    text: str
    day: date | None = None
    moment: datetime | None = None

    def end(self) -> datetime:
        """The last moment asked for (UTC): the moment, or the day's last microsecond in UTC —
        what commands that still read one instant use (``handoff who-depends-on --at``)."""
        if self.moment is not None:
            return self.moment
        return datetime.combine(self.calendar_day(), time.max, tzinfo=timezone.utc)

    def calendar_day(self) -> date:
        """The date asked for (a date-time: its UTC date)."""
        if self.day is not None:
            return self.day
        return (self.moment or datetime.now(timezone.utc)).date()


def parse(text: str, *, what: str = "--at") -> Asked:
    """``text`` as a date or a date-time; HandoffError naming ``what`` (``--at``, ``date=``) when it
    is neither, is too long, or is outside ``AT_RANGE``."""
    shown = f"{what} {text[:MAX_TEXT]!r}" + ("…" if len(text) > MAX_TEXT else "")
    if len(text) > MAX_TEXT:
        raise HandoffError(f"{shown} is too long to be a date", hint=HINT)
    try:
        if len(text) == 10:
            asked = Asked(text, day=date.fromisoformat(text))
            year = asked.day.year if asked.day else 0
        else:
            moment = datetime.fromisoformat(text)
            moment = moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)
            asked = Asked(text, moment=moment.astimezone(timezone.utc))
            year = asked.moment.year if asked.moment else 0
    except (ValueError, OverflowError):
        raise HandoffError(f"{shown} is not a date", hint=HINT) from None
    if not AT_RANGE[0] <= year <= AT_RANGE[1]:
        raise HandoffError(f"{shown} is outside the years {AT_RANGE[0]}-{AT_RANGE[1]}", hint=HINT)
    return asked


def runs_asked(asked: Asked, schedule: str, timezone_name: str | None) -> list[datetime]:
    """The logical dates (UTC, in order) of the runs ``asked`` names for a pipeline on ``schedule``
    in ``timezone_name`` (None: UTC): one for a date-time, those of the local calendar day for a date."""
    sched = as_schedule(schedule, timezone_name)
    if asked.moment is not None:
        return [latest_tick_at_or_before(sched, asked.moment)]
    tz, day = sched.tz, asked.calendar_day()
    start = datetime.combine(day, time.min, tzinfo=tz)
    end = datetime.combine(day + timedelta(days=1), time.min, tzinfo=tz)
    return ticks_between(sched, start.astimezone(timezone.utc), end.astimezone(timezone.utc), limit=MAX_RUNS)


def latest_before(asked: Asked, schedule: str, timezone_name: str | None) -> datetime:
    """The latest run before the asked day (for "no run on that date": where to look instead)."""
    sched = as_schedule(schedule, timezone_name)
    start = datetime.combine(asked.calendar_day(), time.min, tzinfo=sched.tz).astimezone(timezone.utc)
    return latest_tick_at_or_before(sched, start - timedelta(microseconds=1))


def describe(asked: Asked, timezone_name: str | None) -> str:
    """How the page and the CLI say what was asked: ``2026-11-26 (Europe/Berlin)`` or the UTC moment."""
    if asked.moment is not None:
        return f"{asked.moment:%Y-%m-%d %H:%M:%S} UTC"
    return f"{asked.day} ({timezone_name or 'UTC'})"


def choices(asked: Asked, schedule: str, timezone_name: str | None, dag_id: str,
            runs: list[datetime]) -> dict[str, Any]:
    """A date with no run or several runs of ``dag_id`` as ``explain --at`` reports it (JSON
    ``runs_on_date``): {"date", "timezone", "dag_id", "runs": [ISO], "latest_before"? (no run)}."""
    found: dict[str, Any] = {"date": asked.text, "timezone": timezone_name or "UTC", "dag_id": dag_id,
                             "runs": [r.isoformat() for r in runs]}
    if not runs:
        found["latest_before"] = latest_before(asked, schedule, timezone_name).isoformat()
    return found


def choices_text(found: dict[str, Any]) -> str:
    """``choices`` for people: which runs the date holds, and how to ask for one."""
    where = f"{found['date']} ({found['timezone']})"
    if not found["runs"]:
        return (f"\nNo run of {found['dag_id']} has its logical date on {where}; the latest before it is at "
                f"{found['latest_before']}: give --at {found['latest_before']} to explain it.\n")
    return (f"\n{len(found['runs'])} runs of {found['dag_id']} have their logical date on {where}; "
            "give --at one of these date-times to explain it:\n" + "".join(f"  {r}\n" for r in found["runs"]))
