"""Logical-date alignment between two cron schedules (pure; no Airflow import).

handoff's DAGs use Airflow's ``CronTriggerTimetable`` semantics: a run's logical date is the
cron tick itself, in UTC. A downstream run with logical date ``D`` waits for the upstream run
whose logical date is the **latest upstream tick ≤ D**.

Runs without a logical date (manual or asset-triggered runs in Airflow 3) are aligned on their
``run_after`` instead; ``reference_date`` picks it, exactly as providers-standard's
``ExternalTaskSensor`` does before it calls ``execution_date_fn``.

All arithmetic is in UTC, so there is no daylight-saving ambiguity. See docs/alignment.md.
"""

from __future__ import annotations

import functools
from datetime import datetime, timedelta, timezone

from croniter import CroniterError, croniter

from handoff.errors import HandoffError

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

# alignment_warning examines the ticks of one leap year from this Monday, 00:00 UTC.
SAMPLE_START = datetime(2024, 1, 1, tzinfo=timezone.utc)
SAMPLE_SPAN = timedelta(days=366)
# ... and at most this many ticks of either schedule (every-minute schedules are cut short).
SAMPLE_MAX_TICKS = 10_000
# downstream_logical_dates refuses to list more ticks than this (e.g. minutely under yearly).
MAX_LISTED_TICKS = 100_000


@functools.lru_cache(maxsize=256)
def to_cron(schedule: str) -> str:
    """The five-field cron expression of a schedule (a preset such as @daily, or cron itself)."""
    if not isinstance(schedule, str) or not schedule.strip():
        raise HandoffError(f"schedule {schedule!r} is not a cron expression or a preset",
                           hint="use five cron fields (UTC) or one of " + " ".join(PRESETS))
    text = " ".join(schedule.split())
    expression = PRESETS.get(text.lower(), text)
    if expression.startswith("@") or len(expression.split()) != 5 or not croniter.is_valid(expression):
        raise HandoffError(f"schedule {schedule!r} is not a cron expression or a preset",
                           hint="use five cron fields (minute hour day-of-month month day-of-week, UTC) "
                                "or one of " + " ".join(PRESETS))
    try:
        croniter(expression, SAMPLE_START).get_next(datetime)
    except CroniterError as error:
        raise HandoffError(f"schedule {schedule!r} never fires ({error})",
                           hint="check the day-of-month and month fields") from error
    return expression


def reference_date(logical_date: datetime | None, run_after: datetime) -> datetime:
    """The date a run is aligned on: its logical date, or ``run_after`` when it has none."""
    return _utc(logical_date if logical_date is not None else run_after)


def upstream_logical_date(downstream_date: datetime, upstream_schedule: str) -> datetime:
    """The logical date of the upstream run a downstream run at ``downstream_date`` waits for.

    That is the latest upstream tick ≤ ``downstream_date`` (an aware datetime; the result is UTC).
    """
    return _latest_tick_at_or_before(to_cron(upstream_schedule), _utc(downstream_date))


def upstream_window(upstream_date: datetime, upstream_schedule: str) -> tuple[datetime, datetime] | None:
    """[upstream_date, next upstream tick): the downstream dates that wait on the upstream run at
    ``upstream_date``. None when ``upstream_date`` is not an upstream tick (a manual run off the
    schedule), which no scheduled downstream run waits on."""
    cron = to_cron(upstream_schedule)
    start = _utc(upstream_date)
    if not _is_tick(cron, start):
        return None
    return start, croniter(cron, start).get_next(datetime)


def downstream_logical_dates(upstream_date: datetime, upstream_schedule: str,
                             downstream_schedule: str) -> list[datetime]:
    """The downstream ticks whose runs wait for the upstream run at ``upstream_date``.

    They are the downstream ticks in [upstream_date, next upstream tick). An ``upstream_date``
    that is not an upstream tick (a manual run) is waited on by no scheduled run: the result is [].
    Inverse of ``upstream_logical_date``: D is listed iff upstream_logical_date(D) == upstream_date.
    """
    window = upstream_window(upstream_date, upstream_schedule)
    if window is None:
        return []
    start, end = window
    downstream_cron = to_cron(downstream_schedule)
    dates: list[datetime] = []
    tick = _earliest_tick_at_or_after(downstream_cron, start)
    ticks = croniter(downstream_cron, tick)
    while tick < end:
        dates.append(tick)
        if len(dates) > MAX_LISTED_TICKS:
            raise HandoffError(
                f"more than {MAX_LISTED_TICKS} runs of '{downstream_schedule}' wait on one run of "
                f"'{upstream_schedule}'", hint="the schedules are too far apart to align")
        tick = ticks.get_next(datetime)
    return dates


@functools.lru_cache(maxsize=1024)
def alignment_warning(upstream_schedule: str, downstream_schedule: str) -> str | None:
    """Say why aligning these two schedules may surprise their owners; None when it will not.

    Over the sample (the ticks of 2024, UTC, at most SAMPLE_MAX_TICKS of either schedule) it
    reports, in this order:
      * shared: a downstream run waits on the same upstream run as the downstream run before it,
        i.e. the upstream run is at least one downstream period old (downstream runs more often);
      * unawaited: an upstream run that no downstream run waits on, so its failure or lateness
        holds nothing back (upstream runs more often, or on days the downstream skips);
      * previous: a downstream run that is the first to wait on its upstream run, although that
        run is further in the past than the next upstream run is in the future (e.g. upstream
        0 5 * * *, downstream 0 3 * * *: the 03:00 run waits on yesterday's 05:00 run, 22 h
        earlier, not today's, 2 h later).
    Same-frequency schedules with the upstream tick shortly before the downstream one, and
    identical schedules, give None.
    """
    upstream_cron = to_cron(upstream_schedule)
    downstream_cron = to_cron(downstream_schedule)
    downs = _sample_ticks(downstream_cron)
    ups = _upstream_ticks_covering(upstream_cron, downs)
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

    sample = f"sample: {len(downs)} downstream runs, {_iso(downs[0])} to {_iso(downs[-1])}"
    problems = []
    if shared:
        problems.append(
            f"{shared} of {len(downs)} downstream runs wait on the same upstream run as the "
            f"downstream run before them (an upstream run up to {_duration(oldest_shared)} old), "
            f"so they do not wait for newer upstream data")
    if unawaited:
        problems.append(
            f"{unawaited} upstream runs are waited on by no downstream run, so their failure or "
            f"lateness holds nothing back")
    if previous_example:
        tick, waited_on, following = previous_example
        problems.append(
            f"{previous} downstream runs wait on an upstream run further in the past than the next "
            f"upstream run is in the future (e.g. downstream {_iso(tick)} waits on upstream "
            f"{_iso(waited_on)}, {_duration(tick - waited_on)} earlier, not on {_iso(following)}, "
            f"{_duration(following - tick)} later)")
    if not problems:
        return None
    return (f"upstream '{upstream_schedule}' -> downstream '{downstream_schedule}': "
            + "; ".join(problems) + f" ({sample})")


def _utc(moment: datetime) -> datetime:
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError(f"naive datetime {moment!r}: pass an aware datetime (UTC)")
    moment = moment.astimezone(timezone.utc)
    # A plain datetime, also when given pendulum's subclass.
    return datetime(moment.year, moment.month, moment.day, moment.hour, moment.minute,
                    moment.second, moment.microsecond, tzinfo=timezone.utc)


def _is_tick(cron: str, moment: datetime) -> bool:
    return moment.second == 0 and moment.microsecond == 0 and croniter.match(cron, moment)


def _latest_tick_at_or_before(cron: str, moment: datetime) -> datetime:
    if _is_tick(cron, moment):
        return moment
    return croniter(cron, moment).get_prev(datetime)


def _earliest_tick_at_or_after(cron: str, moment: datetime) -> datetime:
    if _is_tick(cron, moment):
        return moment
    return croniter(cron, moment).get_next(datetime)


def _sample_ticks(cron: str) -> list[datetime]:
    """Ticks from SAMPLE_START for SAMPLE_SPAN (at least three, at most SAMPLE_MAX_TICKS)."""
    end = SAMPLE_START + SAMPLE_SPAN
    tick = _earliest_tick_at_or_after(cron, SAMPLE_START)
    ticks = croniter(cron, tick)
    sample = []
    while len(sample) < SAMPLE_MAX_TICKS and (tick < end or len(sample) < 3):
        sample.append(tick)
        tick = ticks.get_next(datetime)
    return sample


def _upstream_ticks_covering(cron: str, downs: list[datetime]) -> list[datetime]:
    """Upstream ticks from the one the first downstream tick waits on to past the last one."""
    tick = _latest_tick_at_or_before(cron, downs[0])
    ticks = croniter(cron, tick)
    covering = [tick]
    while covering[-1] <= downs[-1] and len(covering) < SAMPLE_MAX_TICKS:
        covering.append(ticks.get_next(datetime))
    if len(covering) < 2:  # pragma: no cover - a valid cron always has a next tick
        covering.append(ticks.get_next(datetime))
    return covering


def _iso(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%MZ")


def _duration(delta: timedelta) -> str:
    minutes = int(delta.total_seconds() // 60)
    days, minutes = divmod(minutes, 24 * 60)
    hours, minutes = divmod(minutes, 60)
    parts = [f"{days}d" if days else "", f"{hours}h" if hours else "", f"{minutes}m" if minutes else ""]
    return "".join(parts) or "0m"
