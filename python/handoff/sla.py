"""The SLA model: a deadline per run, defined relative to that run (pure; docs/convention.md).

A model promises that the data of each of its runs is complete by a deadline. Two forms:

* ``available_within: 45m`` — a duration after the run's scheduled time (its logical date, the
  cron tick). Meaningful for every schedule, hourly and several-ticks-a-day crons included.
* ``available_by: "06:30"`` — a time of day in the pipeline's timezone, only for schedules that
  fire at most once a day (cron minute and hour fields each one number, or @daily, @weekly,
  @monthly, @yearly), and only later than the schedule's own time of day. The deadline of a run
  is the first moment at or after the run's scheduled time at which the pipeline's wall clock
  reads 06:30 or later, on the run's (local) day. Across daylight-saving switches: on the
  spring-forward day a time the clock skips (02:30 in Europe/Berlin) is due when the clock jumps
  (03:00 CEST); on the fall-back day a repeated time is due at its first occurrence at or after
  the run's start.

``sla_form_problem`` says what is ambiguous about an SLA for a schedule (rule HO208, enforced by
the Python resolver and the dbt macros alike); ``deadline`` is the one function every part of
handoff uses to turn a run into its deadline.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import TYPE_CHECKING

from .ticks import PRESETS, Schedule, as_schedule, local_aware, utc, wall_clock

if TYPE_CHECKING:
    from .plan_model import DbtTask, PlanPipeline

_SINGLE_NUMBER = re.compile(r"[0-9]{1,2}")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
_DURATION = re.compile(r"([1-9][0-9]{0,8})([smhd])")
_TIME_OF_DAY = re.compile(r"([01][0-9]|2[0-3]):[0-5][0-9]")
# The longest available_within (schemas/meta.schema.json#/$defs/sla_duration says the same): a
# yearly run plus a month of slack. Anything longer is a typo, and a deadline must stay far inside
# the datetimes Python can represent (a 3000000d SLA stopped the watch for every domain).
MAX_SLA_SECONDS = 400 * 86400


@dataclass(frozen=True)
class Sla:
    """One model's SLA: ``available_by`` ("HH:MM", the pipeline's timezone) or ``available_within_s``
    (seconds after the run's scheduled time); at most one is set. ``Sla()`` is no SLA."""

    available_by: str | None = None
    available_within_s: int | None = None

    def __bool__(self) -> bool:
        return self.available_by is not None or self.available_within_s is not None

    def describe(self) -> str:
        """How the YAML says it: ``available_by 06:30`` or ``available_within 45m``."""
        if self.available_by is not None:
            return f"available_by {self.available_by}"
        if self.available_within_s is not None:
            return f"available_within {format_duration(self.available_within_s)}"
        return "no SLA"

    def problem(self) -> str | None:
        """Why this SLA (as read back from a plan or the registry, both untrusted) cannot be
        used, or None: ``available_within_s`` must be a whole number of seconds in
        1..MAX_SLA_SECONDS, ``available_by`` an HH:MM time."""
        within, by = self.available_within_s, self.available_by
        if within is not None and (isinstance(within, bool) or not isinstance(within, int)
                                   or not 0 < within <= MAX_SLA_SECONDS):
            return f"available_within_s {within!r} is not a whole number of seconds in 1..{MAX_SLA_SECONDS} (400d)"
        if by is not None and (not isinstance(by, str) or _TIME_OF_DAY.fullmatch(by) is None):
            return f"available_by {by!r} is not an HH:MM time"
        return None

    @classmethod
    def of(cls, task: DbtTask) -> Sla:
        """The SLA of a plan task."""
        return cls(task.available_by, task.available_within_s)


def duration_seconds(text: str) -> int:
    """'45m' -> 2700: a whole positive number of s, m, h or d, at most 400 days (MAX_SLA_SECONDS).

    Raises ValueError otherwise."""
    found = _DURATION.fullmatch(text)
    if found is None:
        raise ValueError(f"{text!r} is not a duration such as 45m, 2h or 1d")
    seconds = int(found.group(1)) * _UNITS[found.group(2)]
    if seconds > MAX_SLA_SECONDS:
        raise ValueError(f"{text!r} is longer than 400d")
    return seconds


def format_duration(seconds: int) -> str:
    """2700 -> '45m', 7200 -> '2h', 5400 -> '90m': the largest unit that divides it exactly
    (``duration_seconds`` reads it back)."""
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds % size == 0:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


def daily_time_of(schedule: str) -> str | None:
    """The time of day ("HH:MM") at which a schedule fires, when it fires at most once a day: its
    cron minute and hour fields are each a single number (presets included). None otherwise."""
    fields = PRESETS.get(schedule, schedule).split()
    if len(fields) != 5:
        return None
    minute, hour = fields[:2]
    if not (_SINGLE_NUMBER.fullmatch(minute) and _SINGLE_NUMBER.fullmatch(hour)):
        return None
    return f"{int(hour):02d}:{int(minute):02d}"


def sla_form_problem(schedule: str, available_by: str | None, available_within: str | None) -> str | None:
    """Why this SLA is ambiguous for a pipeline on ``schedule`` (rule HO208), or None.

    The same rule, in the same words, is the dbt macro ``handoff_rule_sla_form``."""
    if available_by is not None and available_within is not None:
        return ("both available_by and available_within are set: keep one (available_by: a time of day, "
                "for pipelines that run at most once a day; available_within: a duration after each run starts)")
    if available_by is None:
        return None
    runs_at = daily_time_of(schedule)
    if runs_at is None:
        return (f"available_by '{available_by}' is a time of day, but the pipeline runs more than once a day "
                f"('{schedule}'): use available_within, e.g. 45m for 'each run's data is complete 45 minutes "
                "after the run starts'")
    if available_by <= runs_at:
        gap = (_minutes(available_by) - _minutes(runs_at)) % 1440 or 1440
        within = f"{gap // 60}h" if gap % 60 == 0 else f"{gap}m"
        return (f"available_by '{available_by}' is not after the pipeline's start at {runs_at} ('{schedule}'): "
                f"it would fall before the run starts on the run's day; write a later time, or "
                f"available_within: {within} for a deadline on the following day")
    return None


def _minutes(hh_mm: str) -> int:
    hour, minute = hh_mm.split(":")
    return int(hour) * 60 + int(minute)


def deadline(run: datetime, sla: Sla, schedule: str | Schedule, timezone_name: str | None = None) -> datetime | None:
    """The deadline of the run at ``run`` (its logical date, an aware datetime) of a model with
    ``sla`` in a pipeline on ``schedule`` (read in ``timezone_name``, default UTC); None without
    an SLA. A UTC datetime; never before ``run``.

    ``available_within``: run + the duration. ``available_by``: the first moment at or after the
    run whose wall clock (pipeline timezone) reads the time or later, on the run's local day
    (module docstring for daylight-saving switches)."""
    start = utc(run)
    if sla.available_within_s is not None:
        return start + timedelta(seconds=sla.available_within_s)
    if sla.available_by is None:
        return None
    cadence = as_schedule(schedule, timezone_name)
    return by_deadline(start, sla.available_by, cadence)


def by_deadline(start: datetime, available_by: str, schedule: Schedule) -> datetime:
    """``available_by`` of a run at ``start`` (UTC): see ``deadline``."""
    wall = wall_clock(start, schedule)
    hour, minute = available_by.split(":")
    target = time(int(hour), int(minute))
    if wall.time() >= target:
        return start  # e.g. a tick moved past the time by a spring-forward gap
    tz = schedule.tz
    naive = datetime.combine(wall.date(), target)
    first = naive.replace(tzinfo=tz, fold=0)
    second = naive.replace(tzinfo=tz, fold=1)
    if first.utcoffset() == second.utcoffset() or utc(first) < utc(second):
        # the time exists; on a fall-back day it happens twice: the first one at or after the run
        candidates = sorted({utc(first), utc(second)})
        return next((c for c in candidates if c >= start), candidates[-1])
    return _clock_jump_after(wall.date(), target, schedule)


def _clock_jump_after(day: date, target: time, schedule: Schedule) -> datetime:
    """The moment the clock jumps over ``target`` (a time it skips on ``day``): the first wall-clock
    minute after it that exists, read in the new offset."""
    moment = datetime.combine(day, target)
    tz = schedule.tz
    for _ in range(24 * 60):
        moment += timedelta(minutes=1)
        first, second = moment.replace(tzinfo=tz, fold=0), moment.replace(tzinfo=tz, fold=1)
        if not utc(first) > utc(second):  # exists (a gap reads fold=0 later than fold=1)
            return utc(first)
    return local_aware(datetime.combine(day, target), tz)  # pragma: no cover - gaps last hours at most


def deadline_of_run(task: DbtTask, pipeline: PlanPipeline, logical_date: datetime) -> datetime | None:
    """The deadline of a plan task's run at ``logical_date`` (None: the task has no SLA), read in
    its pipeline's schedule and timezone."""
    return deadline(logical_date, Sla.of(task), pipeline.schedule, pipeline.timezone)


def sla_text(sla: Sla, timezone_name: str = "UTC") -> str:
    """An SLA for people (explain, the UI), ``available_by`` read in ``timezone_name``."""
    if sla.available_within_s:
        return f"available within {format_duration(sla.available_within_s)} of each run's scheduled time"
    if sla.available_by:
        return f"available by {sla.available_by} {timezone_name} on each run's day"
    return "none"
