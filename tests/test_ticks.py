"""Cron ticks in a timezone (handoff.ticks) and a run's data interval (handoff.alignment.data_interval).

What Airflow itself computes is checked in tests/airflow/test_ticks_match_airflow.py; here, the
rules on hand-picked days and the fast wall-clock engine against croniter.
"""

from __future__ import annotations

import random
from datetime import datetime, timedelta, timezone

import pytest
from croniter import croniter
from handoff.alignment import data_interval, downstream_logical_dates, upstream_logical_date
from handoff.errors import HandoffError
from handoff.ticks import _fields, is_tick, latest_tick_at_or_before, next_tick, schedule_of, ticks_between


def utc(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=timezone.utc)


def day_of(schedule: str, zone: str, day: str) -> list[str]:
    start = utc(f"{day}T00:00") - timedelta(hours=14)
    ticks = ticks_between(schedule_of(schedule, zone), start, start + timedelta(hours=38))
    local = [t.astimezone(schedule_of(schedule, zone).tz) for t in ticks]
    return [t.strftime("%H:%M%z") for t in local if t.strftime("%Y-%m-%d") == day]


def test_hourly_ticks_stay_an_hour_apart_across_both_switches() -> None:
    """Europe/Berlin: 23 runs on the spring-forward day, 25 on the fall-back day (Airflow's rule
    for crons firing every hour: evenly spaced absolute time)."""
    spring = day_of("@hourly", "Europe/Berlin", "2024-03-31")
    assert len(spring) == 23 and spring[1:3] == ["01:00+0100", "03:00+0200"]
    autumn = day_of("@hourly", "Europe/Berlin", "2024-10-27")
    assert len(autumn) == 25 and autumn[2:5] == ["02:00+0200", "02:00+0100", "03:00+0100"]


def test_a_daily_time_the_clock_skips_moves_forward_and_a_repeated_one_runs_once_second() -> None:
    assert day_of("30 2 * * *", "Europe/Berlin", "2024-03-31") == ["03:30+0200"]
    assert day_of("30 2 * * *", "Europe/Berlin", "2024-10-27") == ["02:30+0100"]
    assert day_of("30 2 * * *", "Europe/Berlin", "2024-10-28") == ["02:30+0100"]
    # southern hemisphere: Sydney falls back on 2024-04-07 and springs forward on 2024-10-06
    assert day_of("30 2 * * *", "Australia/Sydney", "2024-04-07") == ["02:30+1000"]
    assert day_of("30 2 * * *", "Australia/Sydney", "2024-10-06") == ["03:30+1100"]


def test_a_utc_instant_aligns_across_timezones() -> None:
    """A UTC pipeline at 03:00 waits on the Berlin 02:00 run: 01:00 UTC in winter, 00:00 in summer."""
    assert upstream_logical_date(utc("2024-01-10T03:00"), "0 2 * * *", "Europe/Berlin") == utc("2024-01-10T01:00")
    assert upstream_logical_date(utc("2024-07-10T03:00"), "0 2 * * *", "Europe/Berlin") == utc("2024-07-10T00:00")
    # the inverse lists exactly the UTC runs of that window
    assert downstream_logical_dates(utc("2024-07-10T00:00"), "0 2 * * *", "0 * * * *", "Europe/Berlin") == [
        utc(f"2024-07-10T{h:02d}:00") for h in range(24)]


@pytest.mark.parametrize(("schedule", "zone", "reference", "expected"), [
    ("@daily", "UTC", "2024-03-10T00:00", ("2024-03-09T00:00", "2024-03-10T00:00")),
    ("0 3 * * *", "UTC", "2024-03-01T03:00", ("2024-02-29T03:00", "2024-03-01T03:00")),
    ("0 3 * * MON-FRI", "UTC", "2024-03-18T03:00", ("2024-03-15T03:00", "2024-03-18T03:00")),  # Monday: the weekend
    ("@monthly", "UTC", "2024-03-01T00:00", ("2024-02-01T00:00", "2024-03-01T00:00")),
    ("@hourly", "UTC", "2024-03-10T05:17", ("2024-03-10T05:00", "2024-03-10T05:17")),  # a manual run
    # Berlin midnight runs: the day before spring-forward lasts 23 hours
    ("@daily", "Europe/Berlin", "2024-03-31T22:00", ("2024-03-30T23:00", "2024-03-31T22:00")),
    # ... and the fall-back day 25 hours
    ("@daily", "Europe/Berlin", "2024-10-27T23:00", ("2024-10-26T22:00", "2024-10-27T23:00")),
    # 02:30 does not exist on 2024-03-31 in Berlin: that run moves forward by the gap (03:30 CEST), the next is 23 h later
    ("30 2 * * *", "Europe/Berlin", "2024-03-31T01:30", ("2024-03-30T01:30", "2024-03-31T01:30")),
    ("30 2 * * *", "Europe/Berlin", "2024-04-01T00:30", ("2024-03-31T01:30", "2024-04-01T00:30")),
    # hourly stays one real hour across the repeated hour
    ("@hourly", "Europe/Berlin", "2024-10-27T01:00", ("2024-10-27T00:00", "2024-10-27T01:00")),
    # New York's Monday run after spring-forward covers Friday 06:00 EST to Monday 06:00 EDT (71 h)
    ("0 6 * * MON-FRI", "America/New_York", "2024-03-11T10:00", ("2024-03-08T11:00", "2024-03-11T10:00")),
    # Lord Howe's half-hour switch back (2024-04-07): the 13:00 run's day lasts 24.5 hours
    ("0 13 * * *", "Australia/Lord_Howe", "2024-04-07T02:30", ("2024-04-06T02:00", "2024-04-07T02:30")),
    # India has no daylight saving: 24 hours all year
    ("30 5 * * *", "Asia/Kolkata", "2024-03-31T00:00", ("2024-03-30T00:00", "2024-03-31T00:00")),
])
def test_data_interval_is_the_time_since_the_previous_tick(schedule: str, zone: str, reference: str,
                                                           expected: tuple[str, str]) -> None:
    assert data_interval(utc(reference), schedule, zone) == (utc(expected[0]), utc(expected[1]))


def test_ticks_of_a_day_and_their_neighbours_are_consistent() -> None:
    schedule = schedule_of("*/20 1-3 * * *", "Europe/Berlin")
    for tick in ticks_between(schedule, utc("2024-10-26T20:00"), utc("2024-10-27T06:00")):
        assert is_tick(schedule, tick)
        following = next_tick(schedule, tick)
        middle = tick + (following - tick) / 2
        assert latest_tick_at_or_before(schedule, middle) == tick and not is_tick(schedule, middle)


@pytest.mark.parametrize("name", ["Europe/Berln", "europe/berlin", "Mars/Olympus", "", "../etc/passwd"])
def test_unknown_timezones_are_refused(name: str) -> None:
    with pytest.raises(HandoffError) as caught:
        schedule_of("@daily", name)
    assert "timezone" in str(caught.value) and "\n" not in str(caught.value)


CRONS = ["*/30 * * * *", "0 3 * * MON-FRI", "0 0 1 */3 *", "15 8-18/2 * * 7", "0 0 */2 * 1", "0 0 1,15 * SUN",
         "0 0 29 2 *", "5,35 1-3 10-20 2,8 *", "0 12 31 * *", "59 23 31 12 *", "*/7 */5 */3 */2 */4"]


@pytest.mark.parametrize("cron", CRONS)
def test_the_wall_clock_engine_agrees_with_croniter(cron: str) -> None:
    fields = _fields(cron)
    assert fields is not None
    rng = random.Random(cron)
    for _ in range(60):
        moment = datetime(2023, 1, 1) + timedelta(minutes=rng.randrange(3 * 365 * 24 * 60), seconds=rng.choice([0, 17]))
        assert fields.after(moment) == croniter(cron, moment).get_next(datetime)
        assert fields.before(moment) == croniter(cron, moment).get_prev(datetime)
        assert fields.matches(moment) == (moment.second == 0 and croniter.match(cron, moment))


def test_croniter_extensions_fall_back_to_croniter() -> None:
    schedule = schedule_of("0 0 L * *")  # not in the meta schema, but to_cron accepts it
    assert next_tick(schedule, utc("2024-02-10T00:00")) == utc("2024-02-29T00:00")


@pytest.mark.parametrize("schedule", ["0 0 30 2 *", "0 0 31 4,6,9,11 *", "0 0 29 2 *", "0 0 30 2 MON",
                                      "0 0 31 FEB-APR *", "0 0 30-31 2 *", "0 0 */30 2 *", "0 0 31 */2 *",
                                      "0 0 31 JUN *", "0 0 31 4-6/2 *", "0 3 * 2 *", "@monthly"])
def test_never_fires_agrees_with_croniter(schedule: str) -> None:
    """HO211 (handoff.convention.never_fires) refuses at validate exactly what compile's croniter cannot schedule."""
    from croniter import CroniterBadDateError, croniter
    from handoff.convention import never_fires

    try:
        croniter(schedule, datetime(2024, 1, 1)).get_next(datetime)
        fires = True
    except CroniterBadDateError:
        fires = False
    assert never_fires(schedule) is not fires
