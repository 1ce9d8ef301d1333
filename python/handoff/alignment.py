"""Logical-date alignment between two schedules (pure; no Airflow import).

handoff's DAGs use Airflow's ``CronTriggerTimetable`` in each pipeline's timezone: a run's
logical date is the cron tick itself (``handoff.ticks`` computes ticks exactly as Airflow does).
A downstream run with logical date ``D`` waits for the upstream run whose logical date is the
**latest upstream tick ≤ D** — a comparison of UTC instants, so two pipelines in different
timezones align the same way as two in one.

Runs without a logical date (manual or asset-triggered runs in Airflow 3) are aligned on their
``run_after`` instead; ``reference_date`` picks it, exactly as providers-standard's
``ExternalTaskSensor`` does before it calls ``execution_date_fn``.

A schedule is given as a cron string or preset plus an optional timezone name (``None``: UTC),
or as a ``handoff.ticks.Schedule``. See docs/alignment.md.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any

from .errors import HandoffError
from .ticks import (
    PRESETS,
    Schedule,
    as_schedule,
    is_tick,
    iter_ticks,
    latest_tick_at_or_before,
    next_tick,
    previous_tick,
    schedule_of,
    to_cron,
    utc,
)

__all__ = ["PRESETS", "AlignmentReport", "Schedule", "alignment_report", "alignment_warning", "data_interval",
           "downstream_logical_dates", "reference_date", "schedule_of", "to_cron", "upstream_logical_date",
           "upstream_window"]

# alignment_report examines the ticks of one leap year from this Monday, 00:00 UTC.
SAMPLE_START = datetime(2024, 1, 1, tzinfo=timezone.utc)
SAMPLE_SPAN = timedelta(days=366)
# ... and at most this many ticks of either schedule (every-minute schedules are cut short).
SAMPLE_MAX_TICKS = 10_000
# downstream_logical_dates refuses to list more ticks than this (e.g. minutely under yearly).
MAX_LISTED_TICKS = 100_000


def reference_date(logical_date: datetime | None, run_after: datetime) -> datetime:
    """The date a run is aligned on: its logical date, or ``run_after`` when it has none."""
    return utc(logical_date if logical_date is not None else run_after)


def upstream_logical_date(downstream_date: datetime, upstream_schedule: str | Schedule,
                          upstream_timezone: str | None = None) -> datetime:
    """The logical date of the upstream run a downstream run at ``downstream_date`` waits for.

    That is the latest upstream tick ≤ ``downstream_date`` (an aware datetime; the result is UTC).
    """
    return latest_tick_at_or_before(as_schedule(upstream_schedule, upstream_timezone), downstream_date)


def upstream_window(upstream_date: datetime, upstream_schedule: str | Schedule,
                    upstream_timezone: str | None = None) -> tuple[datetime, datetime] | None:
    """[upstream_date, next upstream tick): the downstream dates that wait on the upstream run at
    ``upstream_date``. None when ``upstream_date`` is not an upstream tick (a manual run off the
    schedule), which no scheduled downstream run waits on."""
    schedule = as_schedule(upstream_schedule, upstream_timezone)
    start = utc(upstream_date)
    if not is_tick(schedule, start):
        return None
    return start, next_tick(schedule, start)


def downstream_logical_dates(upstream_date: datetime, upstream_schedule: str | Schedule,
                             downstream_schedule: str | Schedule, upstream_timezone: str | None = None,
                             downstream_timezone: str | None = None) -> list[datetime]:
    """The downstream ticks whose runs wait for the upstream run at ``upstream_date``.

    They are the downstream ticks in [upstream_date, next upstream tick). An ``upstream_date``
    that is not an upstream tick (a manual run) is waited on by no scheduled run: the result is [].
    Inverse of ``upstream_logical_date``: D is listed iff upstream_logical_date(D) == upstream_date.
    """
    window = upstream_window(upstream_date, upstream_schedule, upstream_timezone)
    if window is None:
        return []
    start, end = window
    downstream = as_schedule(downstream_schedule, downstream_timezone)
    dates: list[datetime] = []
    for tick in iter_ticks(downstream, start):
        if tick >= end:
            break
        dates.append(tick)
        if len(dates) > MAX_LISTED_TICKS:
            raise HandoffError(
                f"more than {MAX_LISTED_TICKS} runs of '{downstream.describe()}' wait on one run of "
                f"'{as_schedule(upstream_schedule, upstream_timezone).describe()}'",
                hint="the schedules are too far apart to align")
    return dates


def data_interval(reference: datetime, schedule: str | Schedule,
                  timezone_name: str | None = None) -> tuple[datetime, datetime]:
    """The data interval of the run aligned on ``reference``: [previous tick, reference).

    For a scheduled run, ``reference`` is its logical date (a tick) and the interval is the time
    since the schedule's previous tick: a daily run at 2024-03-10 00:00 covers 2024-03-09 00:00 to
    2024-03-10 00:00. A run off the schedule (manual, at ``run_after``) covers the time since the
    latest tick before it. UTC instants; start < end."""
    end = utc(reference)
    return previous_tick(as_schedule(schedule, timezone_name), end), end


# --------------------------------------------------------------------------------------
# What aligning two schedules does that may surprise their owners (HO306)
# --------------------------------------------------------------------------------------

@dataclass(frozen=True)
class AlignmentReport:
    """What happens over the sample when runs of ``downstream`` wait on runs of ``upstream``.

    ``shared``: downstream runs waiting on the same upstream run as the downstream run before them
    (``oldest_shared``: the oldest such upstream run's age at the downstream tick). ``unawaited``:
    upstream runs no downstream run waits on. ``previous``: downstream runs that are the first to
    wait on their upstream run although it is further in the past than the next upstream run is in
    the future (``previous_example``: one such (downstream, waited-on, next upstream) triple).
    """

    upstream: Schedule
    downstream: Schedule
    runs: int
    first: datetime
    last: datetime
    shared: int = 0
    oldest_shared: timedelta = timedelta(0)
    unawaited: int = 0
    previous: int = 0
    previous_example: tuple[datetime, datetime, datetime] | None = None

    @property
    def surprising(self) -> bool:
        return bool(self.shared or self.unawaited or self.previous)

    def summary(self) -> str:
        """One short line: the pair and what surprises, with the biggest number of each kind."""
        parts = []
        if self.shared:
            parts.append(f"{self.shared}/{self.runs} runs re-read an upstream run already read "
                         f"(up to {_duration(self.oldest_shared)} old)")
        if self.unawaited:
            parts.append(f"{self.unawaited} upstream runs are awaited by no run")
        if self.previous_example is not None:
            tick, waited_on, following = self.previous_example
            parts.append(f"{self.previous}/{self.runs} runs read the previous upstream run "
                         f"({_duration(tick - waited_on)} old, not the one {_duration(following - tick)} later)")
        return (f"'{self.upstream.describe()}' -> '{self.downstream.describe()}': " + "; ".join(parts)
                if parts else "")

    def as_dict(self) -> dict[str, Any]:
        example = None
        if self.previous_example is not None:
            tick, waited_on, following = self.previous_example
            example = {"downstream_run": _iso(tick), "waits_on": _iso(waited_on), "next_upstream_run": _iso(following)}
        return {
            "upstream_schedule": self.upstream.cron, "upstream_timezone": self.upstream.timezone,
            "downstream_schedule": self.downstream.cron, "downstream_timezone": self.downstream.timezone,
            "sample": {"runs": self.runs, "first": _iso(self.first), "last": _iso(self.last)},
            "shared": {"runs": self.shared, "oldest_upstream_run_age": _duration(self.oldest_shared)},
            "unawaited_upstream_runs": self.unawaited,
            "previous": {"runs": self.previous, "example": example},
        }


def alignment_report(upstream_schedule: str | Schedule, downstream_schedule: str | Schedule,
                     upstream_timezone: str | None = None, downstream_timezone: str | None = None) -> AlignmentReport:
    """How runs of the downstream schedule wait on runs of the upstream one, over the sample.

    The sample: every downstream tick of 2024 (from 2024-01-01 00:00 UTC, 366 days; at least 3, at
    most SAMPLE_MAX_TICKS ticks), with the upstream ticks around them. Cached per pair."""
    return _report(as_schedule(upstream_schedule, upstream_timezone),
                   as_schedule(downstream_schedule, downstream_timezone))


def alignment_warning(upstream_schedule: str | Schedule, downstream_schedule: str | Schedule,
                      upstream_timezone: str | None = None, downstream_timezone: str | None = None) -> str | None:
    """One line saying why aligning these two schedules may surprise their owners; None when it
    will not (``alignment_report`` has the numbers)."""
    report = alignment_report(upstream_schedule, downstream_schedule, upstream_timezone, downstream_timezone)
    return report.summary() if report.surprising else None


@functools.lru_cache(maxsize=1024)
def _report(upstream: Schedule, downstream: Schedule) -> AlignmentReport:
    downs = _sample_ticks(downstream)
    ups = _upstream_ticks_covering(upstream, downs)
    downs = [tick for tick in downs if tick < ups[-1]]  # each needs its next upstream tick

    shared = unawaited = previous = 0
    oldest_shared = timedelta(0)
    previous_example: tuple[datetime, datetime, datetime] | None = None
    index = 0  # ups[index] = latest upstream tick <= the current downstream tick
    last_index: int | None = None
    for tick in downs:
        while ups[index + 1] <= tick:
            index += 1
        waited_on, following = ups[index], ups[index + 1]
        if last_index is not None and index != last_index:
            unawaited += index - last_index - 1
        if index == last_index:
            shared += 1
            oldest_shared = max(oldest_shared, tick - waited_on)
        elif tick - waited_on > following - tick:
            previous += 1
            previous_example = previous_example or (tick, waited_on, following)
        last_index = index
    return AlignmentReport(upstream, downstream, len(downs), downs[0], downs[-1], shared, oldest_shared,
                           unawaited, previous, previous_example)


def _sample_ticks(schedule: Schedule) -> list[datetime]:
    """Ticks from SAMPLE_START for SAMPLE_SPAN (at least three, at most SAMPLE_MAX_TICKS)."""
    end = SAMPLE_START + SAMPLE_SPAN
    sample: list[datetime] = []
    for tick in iter_ticks(schedule, SAMPLE_START):
        if len(sample) >= SAMPLE_MAX_TICKS or (tick >= end and len(sample) >= 3):
            break
        sample.append(tick)
    return sample


def _upstream_ticks_covering(schedule: Schedule, downs: list[datetime]) -> list[datetime]:
    """Upstream ticks from the one the first downstream tick waits on to past the last one."""
    covering: list[datetime] = []
    for tick in iter_ticks(schedule, latest_tick_at_or_before(schedule, downs[0])):
        covering.append(tick)
        if len(covering) >= 2 and (tick > downs[-1] or len(covering) >= SAMPLE_MAX_TICKS):
            break
    return covering


def _iso(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%MZ")


def _duration(delta: timedelta) -> str:
    minutes = int(delta.total_seconds() // 60)
    days, minutes = divmod(minutes, 24 * 60)
    hours, minutes = divmod(minutes, 60)
    parts = [f"{days}d" if days else "", f"{hours}h" if hours else "", f"{minutes}m" if minutes else ""]
    return "".join(parts) or "0m"
