"""Cron ticks in a timezone, computed exactly as Airflow's ``CronTriggerTimetable`` computes them.

A pipeline's schedule is a cron expression read in the pipeline's timezone (an IANA name,
``UTC`` by default). Its *ticks* are the logical dates of its runs: UTC instants. Every part of
handoff that reasons about runs — the sensors' alignment, recovery's windows, the SLA deadlines
and the feasibility check — takes its ticks from here, so they all agree with the scheduler.

Airflow 3.3 (``airflow.timetables._cron.CronMixin``) computes the next tick after ``current`` by
running croniter on the *local wall-clock* time and then:

* for a cron whose hour field is ``*`` (it fires at least once an hour), it adds the wall-clock
  distance to the next match to ``current`` as an absolute duration: the ticks are evenly
  spaced across daylight-saving switches (an hourly schedule has 23 ticks on the spring-forward
  day and 25 on the fall-back day);
* otherwise it reads the next matching wall-clock time in the timezone with ``fold=1``: a time
  that happens twice (fall-back) is the *second* occurrence, and a time that does not exist
  (spring-forward) moves forward by the gap (02:30 becomes 03:30).

This module reproduces both rules with the standard library's ``zoneinfo`` (no Airflow, no
pendulum); ``tests/airflow/test_ticks_match_airflow.py`` compares it with Airflow's own
timetable over a year in several timezones. Pure and cached; datetimes in are aware, out are
plain ``datetime`` in ``timezone.utc``.
"""

from __future__ import annotations

import bisect
import functools
import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, timezone, tzinfo
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from croniter import CroniterError, croniter

from .errors import HandoffError

# The presets Airflow maps to cron (airflow.utils.dates.cron_presets), plus @annually, which
# the meta schema accepts as a synonym of @yearly.
PRESETS: dict[str, str] = {
    "@hourly": "0 * * * *",
    "@daily": "0 0 * * *",
    "@weekly": "0 0 * * 0",
    "@monthly": "0 0 1 * *",
    "@quarterly": "0 0 1 */3 *",
    "@yearly": "0 0 1 1 *",
    "@annually": "0 0 1 1 *",
}
DEFAULT_TIMEZONE = "UTC"
# What the meta schema accepts as a timezone name (an IANA Area/Location, or UTC); the name
# must also exist in the timezone database (rule HO208).
TIMEZONE_PATTERN = re.compile(
    r"UTC|(Africa|America|Antarctica|Arctic|Asia|Atlantic|Australia|Europe|Indian|Pacific|Etc)"
    r"/[A-Za-z0-9_+-]{1,40}(/[A-Za-z0-9_+-]{1,40})?")
_PROBE = datetime(2024, 1, 1, tzinfo=timezone.utc)
_EPSILON = timedelta(microseconds=1)


@functools.lru_cache(maxsize=256)
def to_cron(schedule: str) -> str:
    """The five-field cron expression of a schedule (a preset such as @daily, or cron itself).

    Raises HandoffError for anything Airflow's CronTriggerTimetable would not run on a schedule
    (``@once``, ``None``, six fields, a cron that never fires)."""
    if not isinstance(schedule, str) or not schedule.strip():
        raise HandoffError(f"schedule {schedule!r} is not a cron expression or a preset",
                           hint="use five cron fields or one of " + " ".join(PRESETS))
    text = " ".join(schedule.split())
    expression = PRESETS.get(text.lower(), text)
    if expression.startswith("@") or len(expression.split()) != 5 or not croniter.is_valid(expression):
        raise HandoffError(f"schedule {schedule!r} is not a cron expression or a preset",
                           hint="use five cron fields (minute hour day-of-month month day-of-week) "
                                "or one of " + " ".join(PRESETS))
    try:
        croniter(expression, _PROBE).get_next(datetime)
    except CroniterError as error:
        raise HandoffError(f"schedule {schedule!r} never fires ({error})",
                           hint="check the day-of-month and month fields") from error
    return expression


@functools.lru_cache(maxsize=256)
def zone(name: str) -> tzinfo:
    """The tzinfo of an IANA timezone name; HandoffError when the name is not one."""
    if name == "UTC":
        return timezone.utc
    if not isinstance(name, str) or not TIMEZONE_PATTERN.fullmatch(name):
        raise HandoffError(f"timezone {name!r} is not an IANA timezone name",
                           hint="write e.g. UTC, Europe/Berlin or America/New_York")
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise HandoffError(f"timezone {name!r} is not in the timezone database",
                           hint="write e.g. UTC, Europe/Berlin or America/New_York") from None


@dataclass(frozen=True)
class Schedule:
    """A cron schedule read in a timezone: what one pipeline's DAG runs on.

    ``cron`` is the five-field expression (presets expanded), ``timezone`` an IANA name. Build it
    with ``schedule_of`` (validated, cached)."""

    cron: str
    timezone: str = DEFAULT_TIMEZONE

    @property
    def tz(self) -> tzinfo:
        return zone(self.timezone)

    @property
    def is_utc(self) -> bool:
        return self.timezone == "UTC"

    @functools.cached_property
    def every_hour(self) -> bool:
        """Airflow's test for the evenly spaced rule: croniter normalises the hour field to '*'."""
        return bool(croniter(self.cron).expanded[1] == ["*"])

    def describe(self) -> str:
        return self.cron if self.is_utc else f"{self.cron} ({self.timezone})"


@functools.lru_cache(maxsize=1024)
def schedule_of(schedule: str, timezone_name: str | None = DEFAULT_TIMEZONE) -> Schedule:
    """A validated Schedule of a schedule string (cron or preset) and a timezone name (None: UTC)."""
    name = DEFAULT_TIMEZONE if timezone_name is None else timezone_name
    zone(name)
    return Schedule(to_cron(schedule), name)


def as_schedule(schedule: str | Schedule, timezone_name: str | None = None) -> Schedule:
    """``schedule`` itself, or the Schedule of a schedule string in ``timezone_name`` (None: UTC)."""
    if isinstance(schedule, Schedule):
        return schedule
    return schedule_of(schedule, timezone_name)


def utc(moment: datetime) -> datetime:
    """An aware datetime as a plain ``datetime`` in UTC (pendulum's subclass in, datetime out)."""
    if type(moment) is datetime and moment.tzinfo is timezone.utc:
        return moment  # already what callers get (the common case, by far)
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError(f"naive datetime {moment!r}: pass an aware datetime")
    moment = moment.astimezone(timezone.utc)
    return datetime(moment.year, moment.month, moment.day, moment.hour, moment.minute,
                    moment.second, moment.microsecond, tzinfo=timezone.utc)


# --------------------------------------------------------------------------------------
# Wall-clock cron arithmetic. croniter answers the same questions but costs 0.2-0.6 ms per
# call on this machine (it re-parses and re-normalises every time); the feasibility check asks
# tens of thousands of them. Built from croniter's own expansion of the fields, so the meaning
# is croniter's (and Airflow's): a day matches when its day-of-month OR its day-of-week is listed
# if both fields are restricted, else when both match. Expressions using croniter extensions
# (L, #, W) fall back to croniter.
# --------------------------------------------------------------------------------------

@dataclass(frozen=True)
class _Fields:
    minutes: tuple[int, ...]
    hours: tuple[int, ...]
    days: frozenset[int] | None  # None: every day of the month
    months: frozenset[int] | None
    weekdays: frozenset[int] | None  # 0 = Sunday

    def day_matches(self, day: date) -> bool:
        if self.months is not None and day.month not in self.months:
            return False
        by_date = self.days is None or day.day in self.days
        by_weekday = self.weekdays is None or day.isoweekday() % 7 in self.weekdays
        if self.days is not None and self.weekdays is not None:
            return by_date or by_weekday
        return by_date and by_weekday

    def matches(self, naive: datetime) -> bool:
        return (naive.second == 0 and naive.microsecond == 0 and naive.minute in self.minutes
                and naive.hour in self.hours and self.day_matches(naive.date()))

    def after(self, naive: datetime) -> datetime:
        """The first matching minute strictly after ``naive``."""
        start = naive.replace(second=0, microsecond=0) + timedelta(minutes=1)
        day, hour, minute = start.date(), start.hour, start.minute
        for _ in range(_SEARCH_DAYS):
            if self.day_matches(day):
                for h in self.hours[bisect.bisect_left(self.hours, hour):]:
                    first = bisect.bisect_left(self.minutes, minute) if h == hour else 0
                    if first < len(self.minutes):
                        return datetime.combine(day, time(h, self.minutes[first]))
            day, hour, minute = day + timedelta(days=1), 0, 0
        raise HandoffError("the schedule does not fire within 28 years")  # pragma: no cover

    def before(self, naive: datetime) -> datetime:
        """The last matching minute strictly before ``naive``."""
        floor = naive.replace(second=0, microsecond=0)
        end = floor if floor < naive else floor - timedelta(minutes=1)  # the latest allowed minute
        day, hour, minute = end.date(), end.hour, end.minute
        for _ in range(_SEARCH_DAYS):
            if self.day_matches(day):
                for h in reversed(self.hours[:bisect.bisect_right(self.hours, hour)]):
                    last = bisect.bisect_right(self.minutes, minute) if h == hour else len(self.minutes)
                    if last > 0:
                        return datetime.combine(day, time(h, self.minutes[last - 1]))
            day, hour, minute = day - timedelta(days=1), 23, 59
        raise HandoffError("the schedule does not fire within 28 years")  # pragma: no cover


_SEARCH_DAYS = 366 * 28
_IS_WEEKDAY = (False, False, False, False, True)  # croniter's field order: minute hour day month weekday


@functools.lru_cache(maxsize=256)
def _fields(cron: str) -> _Fields | None:
    expanded = croniter(cron).expanded
    values: list[tuple[int, ...] | None] = []
    for field, weekday in zip(expanded, _IS_WEEKDAY, strict=True):
        if field == ["*"]:
            values.append(None)
        elif all(isinstance(v, int) for v in field):
            values.append(tuple(sorted({int(v) % 7 if weekday else int(v) for v in field})))
        else:
            return None  # L, #, W: croniter's extensions
    minutes, hours, days, months, weekdays = values
    return _Fields(minutes or tuple(range(60)), hours or tuple(range(24)),
                   None if days is None else frozenset(days), None if months is None else frozenset(months),
                   None if weekdays is None else frozenset(weekdays))


def _naive_next(cron: str, naive: datetime) -> datetime:
    fields = _fields(cron)
    if fields is None:
        return croniter(cron, naive).get_next(datetime)
    return fields.after(naive)


def _naive_prev(cron: str, naive: datetime) -> datetime:
    fields = _fields(cron)
    if fields is None:
        return croniter(cron, naive).get_prev(datetime)
    return fields.before(naive)


def _naive_matches(cron: str, naive: datetime) -> bool:
    fields = _fields(cron)
    if fields is None:
        return bool(naive.second == 0 and naive.microsecond == 0 and croniter.match(cron, naive))
    return fields.matches(naive)


def local_aware(naive: datetime, tz: tzinfo) -> datetime:
    """A wall-clock time in ``tz`` as a UTC instant, the way Airflow's ``make_aware`` reads it:
    the second occurrence of a repeated time, and a missing time moved forward by the gap."""
    first = naive.replace(tzinfo=tz, fold=0).astimezone(timezone.utc)
    second = naive.replace(tzinfo=tz, fold=1).astimezone(timezone.utc)
    return utc(max(first, second))


def _wall(moment: datetime, tz: tzinfo) -> datetime:
    return moment.astimezone(tz).replace(tzinfo=None, fold=0)


def next_tick(schedule: Schedule, moment: datetime) -> datetime:
    """The first tick strictly after ``moment`` (Airflow's ``_get_next``)."""
    current = utc(moment)
    if schedule.is_utc:
        return _naive_next(schedule.cron, current.replace(tzinfo=None)).replace(tzinfo=timezone.utc)
    tz = schedule.tz
    naive = _wall(current, tz)
    scheduled = _naive_next(schedule.cron, naive)
    if not schedule.every_hour:
        return local_aware(scheduled, tz)
    return current + (scheduled - naive)


def previous_tick(schedule: Schedule, moment: datetime) -> datetime:
    """The latest tick strictly before ``moment`` (Airflow's ``_get_prev``, corrected so that the
    answer is always before ``moment`` and is a tick that ``next_tick`` reaches)."""
    current = utc(moment)
    found = latest_tick_at_or_before(schedule, current)
    return found if found < current else latest_tick_at_or_before(schedule, current - _EPSILON)


def latest_tick_at_or_before(schedule: Schedule, moment: datetime) -> datetime:
    """The latest tick ≤ ``moment``: ``moment`` itself when it is a tick."""
    current = utc(moment)
    if schedule.is_utc:
        naive = current.replace(tzinfo=None)
        if _naive_matches(schedule.cron, naive):
            return current
        return _naive_prev(schedule.cron, naive).replace(tzinfo=timezone.utc)
    anchor = current
    if schedule.every_hour and _offset_changes(schedule.tz, current - _SETTLE, current):
        # Around a switch Airflow's _get_prev is not the inverse of _get_next (with a 30-minute
        # shift, Lord Howe's '30 * * * *' goes 01:30 -> 02:00 -> 02:30 local): follow the
        # sequence the scheduler walks, from a tick before the switch.
        anchor = current - _SETTLE
    candidate = _airflow_prev(schedule, anchor)
    following = next_tick(schedule, candidate)
    while following <= current:  # walk on to the last tick of the sequence that is <= moment
        candidate, following = following, next_tick(schedule, following)
    return candidate


_SETTLE = timedelta(hours=3)


def _offset_changes(tz: tzinfo, start: datetime, end: datetime) -> bool:
    return start.astimezone(tz).utcoffset() != end.astimezone(tz).utcoffset()


def _airflow_prev(schedule: Schedule, current: datetime) -> datetime:
    """Airflow's ``_get_prev``, stepped back further while its answer is after ``current`` (a
    wall-clock time the clock skips is moved forward by the gap, past ``current``)."""
    tz = schedule.tz
    naive = _wall(current, tz)
    scheduled = _naive_prev(schedule.cron, naive)
    if schedule.every_hour:
        return current - (naive - scheduled)
    candidate = local_aware(scheduled, tz)
    while candidate > current:
        scheduled = _naive_prev(schedule.cron, scheduled)
        candidate = local_aware(scheduled, tz)
    return candidate


def earliest_tick_at_or_after(schedule: Schedule, moment: datetime) -> datetime:
    """The earliest tick ≥ ``moment``."""
    current = utc(moment)
    found = latest_tick_at_or_before(schedule, current)
    return found if found == current else next_tick(schedule, current)


def is_tick(schedule: Schedule, moment: datetime) -> bool:
    """Whether ``moment`` is one of the schedule's ticks (a scheduled run's logical date)."""
    current = utc(moment)
    return latest_tick_at_or_before(schedule, current) == current


def iter_ticks(schedule: Schedule, start: datetime) -> Iterator[datetime]:
    """The ticks ≥ ``start``, in order, without end."""
    tick = earliest_tick_at_or_after(schedule, start)
    while True:
        yield tick
        tick = next_tick(schedule, tick)


def ticks_between(schedule: Schedule, start: datetime, end: datetime, limit: int = 100_000) -> list[datetime]:
    """The ticks in [start, end), at most ``limit`` of them (HandoffError beyond)."""
    found: list[datetime] = []
    stop = utc(end)
    for tick in iter_ticks(schedule, start):
        if tick >= stop:
            break
        found.append(tick)
        if len(found) > limit:
            raise HandoffError(f"more than {limit} ticks of '{schedule.describe()}' between {start} and {end}",
                               hint="the schedules are too far apart to compare")
    return found


def wall_clock(moment: datetime, schedule: Schedule) -> datetime:
    """``moment`` on the wall clock of the schedule's timezone (naive)."""
    return _wall(utc(moment), schedule.tz)
