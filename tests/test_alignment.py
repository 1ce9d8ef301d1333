"""Logical-date alignment across schedules (handoff.alignment), on a table of schedule pairs."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest
from croniter import croniter
from handoff.alignment import (
    alignment_report,
    alignment_warning,
    downstream_logical_dates,
    reference_date,
    to_cron,
    upstream_logical_date,
)
from handoff.errors import HandoffError


def utc(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=timezone.utc)


# (upstream schedule, downstream schedule, downstream date, the upstream date it waits for)
UPSTREAM_OF = [
    # 0 3 vs 0 5 daily: same day, 2 h earlier (the FACTS.md execution_delta=2h case)
    ("0 3 * * *", "0 5 * * *", "2024-03-10T05:00", "2024-03-10T03:00"),
    # the other way round: the 03:00 run waits on the previous day's 05:00 run (-22 h)
    ("0 5 * * *", "0 3 * * *", "2024-03-10T03:00", "2024-03-09T05:00"),
    # hourly upstream, daily downstream: the hourly run at midnight of the same logical date
    ("@hourly", "@daily", "2024-03-10T00:00", "2024-03-10T00:00"),
    ("0 * * * *", "0 6 * * *", "2024-03-10T06:00", "2024-03-10T06:00"),
    # daily upstream, hourly downstream: every hour of the day waits on that day's midnight run
    ("@daily", "@hourly", "2024-03-10T00:00", "2024-03-10T00:00"),
    ("@daily", "@hourly", "2024-03-10T13:00", "2024-03-10T00:00"),
    ("@daily", "@hourly", "2024-03-10T23:00", "2024-03-10T00:00"),
    # weekly (Sunday 00:00) upstream, daily downstream: the latest Sunday
    ("@weekly", "@daily", "2024-03-13T00:00", "2024-03-10T00:00"),
    ("@weekly", "@daily", "2024-03-10T00:00", "2024-03-10T00:00"),
    ("@weekly", "@daily", "2024-03-09T00:00", "2024-03-03T00:00"),
    # same tick
    ("0 3 * * *", "0 3 * * *", "2024-03-10T03:00", "2024-03-10T03:00"),
    ("@daily", "0 0 * * *", "2024-02-29T00:00", "2024-02-29T00:00"),
    # weekdays-only upstream, daily downstream: the weekend waits on Friday
    ("0 3 * * MON-FRI", "0 5 * * *", "2024-03-15T05:00", "2024-03-15T03:00"),  # Friday
    ("0 3 * * MON-FRI", "0 5 * * *", "2024-03-16T05:00", "2024-03-15T03:00"),  # Saturday
    ("0 3 * * MON-FRI", "0 5 * * *", "2024-03-17T05:00", "2024-03-15T03:00"),  # Sunday
    ("0 3 * * MON-FRI", "0 5 * * *", "2024-03-18T05:00", "2024-03-18T03:00"),  # Monday
    # daily upstream, weekdays-only downstream: Monday waits on Monday's run
    ("0 3 * * *", "0 5 * * MON-FRI", "2024-03-18T05:00", "2024-03-18T03:00"),
    # monthly upstream, daily downstream; across the year boundary
    ("@monthly", "@daily", "2024-03-31T00:00", "2024-03-01T00:00"),
    ("0 3 * * *", "0 1 * * *", "2024-01-01T01:00", "2023-12-31T03:00"),
]


@pytest.mark.parametrize(("upstream", "downstream", "down_date", "expected"), UPSTREAM_OF)
def test_upstream_logical_date(upstream: str, downstream: str, down_date: str, expected: str) -> None:
    assert croniter.match(to_cron(downstream), utc(down_date)), "table row: not a downstream tick"
    result = upstream_logical_date(utc(down_date), upstream)
    assert result == utc(expected)
    assert result.tzinfo is timezone.utc


# (upstream schedule, downstream schedule, upstream date, the downstream dates that wait on it)
DOWNSTREAM_OF = [
    ("0 3 * * *", "0 5 * * *", "2024-03-10T03:00", ["2024-03-10T05:00"]),
    ("0 5 * * *", "0 3 * * *", "2024-03-09T05:00", ["2024-03-10T03:00"]),
    ("@hourly", "@daily", "2024-03-10T00:00", ["2024-03-10T00:00"]),
    ("@hourly", "@daily", "2024-03-10T01:00", []),  # no daily run waits on the 01:00 run
    ("@daily", "@hourly", "2024-03-10T00:00", [f"2024-03-10T{h:02d}:00" for h in range(24)]),
    ("@weekly", "@daily", "2024-03-10T00:00", [f"2024-03-{d}T00:00" for d in range(10, 17)]),
    ("@daily", "@weekly", "2024-03-10T00:00", ["2024-03-10T00:00"]),
    ("@daily", "@weekly", "2024-03-11T00:00", []),
    ("0 3 * * *", "0 3 * * *", "2024-03-10T03:00", ["2024-03-10T03:00"]),
    ("0 3 * * MON-FRI", "0 5 * * *", "2024-03-15T03:00",
     ["2024-03-15T05:00", "2024-03-16T05:00", "2024-03-17T05:00"]),
    ("0 3 * * *", "0 5 * * MON-FRI", "2024-03-16T03:00", []),  # Saturday's run
    ("0 3 * * *", "0 5 * * MON-FRI", "2024-03-18T03:00", ["2024-03-18T05:00"]),
    # an upstream date that is not an upstream tick (a manual run): no scheduled run waits on it
    ("0 3 * * *", "0 5 * * *", "2024-03-10T04:00", []),
]


@pytest.mark.parametrize(("upstream", "downstream", "up_date", "expected"), DOWNSTREAM_OF)
def test_downstream_logical_dates(upstream: str, downstream: str, up_date: str,
                                  expected: list[str]) -> None:
    result = downstream_logical_dates(utc(up_date), upstream, downstream)
    assert result == [utc(text) for text in expected]
    assert all(moment.tzinfo is timezone.utc for moment in result)


PAIRS = [
    ("0 3 * * *", "0 5 * * *"), ("0 5 * * *", "0 3 * * *"), ("@hourly", "@daily"),
    ("@daily", "@hourly"), ("@weekly", "@daily"), ("@daily", "@weekly"), ("0 3 * * *", "0 3 * * *"),
    ("0 3 * * MON-FRI", "0 5 * * *"), ("0 3 * * *", "0 5 * * MON-FRI"), ("*/15 * * * *", "0 */6 * * *"),
    ("@monthly", "@weekly"),
]


@pytest.mark.parametrize(("upstream", "downstream"), PAIRS)
def test_the_two_directions_are_inverse(upstream: str, downstream: str) -> None:
    """Every downstream tick of two weeks of March 2024 is listed by exactly its own upstream run."""
    start, end = utc("2024-03-04T00:00"), utc("2024-03-18T00:00")
    downstream_ticks = []
    ticks = croniter(to_cron(downstream), start - timedelta(seconds=1))
    while (tick := ticks.get_next(datetime)) < end:
        downstream_ticks.append(tick)
    listed = []
    up_ticks = croniter(to_cron(upstream), upstream_logical_date(start, upstream) - timedelta(seconds=1))
    while (up_tick := up_ticks.get_next(datetime)) < end:
        for moment in downstream_logical_dates(up_tick, upstream, downstream):
            assert upstream_logical_date(moment, upstream) == up_tick
            if moment < end:
                listed.append(moment)
    assert [m for m in listed if m >= start] == downstream_ticks


def test_dates_between_ticks_and_exact_ticks() -> None:
    assert upstream_logical_date(utc("2024-03-10T04:17:33.5"), "0 3 * * *") == utc("2024-03-10T03:00")
    assert upstream_logical_date(utc("2024-03-10T03:00"), "0 3 * * *") == utc("2024-03-10T03:00")
    assert upstream_logical_date(utc("2024-03-10T02:59:59.999"), "0 3 * * *") == utc("2024-03-09T03:00")
    assert upstream_logical_date(utc("2024-03-10T03:00:30"), "* * * * *") == utc("2024-03-10T03:00")


def test_utc_only_no_daylight_saving() -> None:
    """Aware dates in any zone are read as UTC instants; results are UTC; DST changes nothing."""
    berlin = ZoneInfo("Europe/Berlin")
    # 2024-03-31: Europe moves to summer time at 01:00 UTC. 07:00 CEST is 05:00 UTC.
    down = datetime(2024, 3, 31, 7, 0, tzinfo=berlin)
    assert upstream_logical_date(down, "0 3 * * *") == utc("2024-03-31T03:00")
    offset = datetime(2024, 3, 31, 5, 0, tzinfo=timezone(timedelta(hours=-3)))  # 08:00 UTC
    assert upstream_logical_date(offset, "0 * * * *") == utc("2024-03-31T08:00")
    hourly = downstream_logical_dates(utc("2024-03-31T00:00"), "@daily", "@hourly")
    assert len(hourly) == 24 and hourly[-1] - hourly[0] == timedelta(hours=23)


def test_datetime_subclasses_such_as_pendulum_give_plain_datetimes() -> None:
    class Subclass(datetime):
        pass

    result = upstream_logical_date(Subclass(2024, 3, 10, 5, tzinfo=timezone.utc), "0 3 * * *")
    assert type(result) is datetime and result == utc("2024-03-10T03:00")


def test_runs_without_logical_date_align_on_run_after() -> None:
    run_after = datetime(2024, 3, 10, 6, 12, tzinfo=ZoneInfo("Europe/Berlin"))
    assert reference_date(None, run_after) == utc("2024-03-10T05:12")
    assert reference_date(utc("2024-03-10T05:00"), run_after) == utc("2024-03-10T05:00")
    assert upstream_logical_date(reference_date(None, run_after), "0 3 * * *") == utc("2024-03-10T03:00")


def test_naive_datetimes_are_refused() -> None:
    with pytest.raises(ValueError, match="naive"):
        upstream_logical_date(datetime(2024, 3, 10, 5), "0 3 * * *")


@pytest.mark.parametrize(("schedule", "cron"), [
    ("@hourly", "0 * * * *"), ("@daily", "0 0 * * *"), ("@weekly", "0 0 * * 0"),
    ("@monthly", "0 0 1 * *"), ("@yearly", "0 0 1 1 *"), ("@annually", "0 0 1 1 *"),
    ("@quarterly", "0 0 1 */3 *"), ("0  3 * *  MON-FRI", "0 3 * * MON-FRI"), ("*/5 * * * *", "*/5 * * * *"),
])
def test_to_cron(schedule: str, cron: str) -> None:
    assert to_cron(schedule) == cron


@pytest.mark.parametrize("schedule", ["", "@once", "@continuous", "@reboot", "0 3 * *", "0 0 3 * * *",
                                      "61 * * * *", "0 0 30 2 *", "daily"])
def test_to_cron_refuses(schedule: str) -> None:
    with pytest.raises(HandoffError) as caught:
        to_cron(schedule)
    assert "\n" not in str(caught.value) and repr(schedule) in str(caught.value)


# (upstream, downstream, None or the fragments the one-line warning must contain)
WARNINGS = [
    ("0 3 * * *", "0 5 * * *", None),
    ("0 3 * * *", "0 3 * * *", None),
    ("@daily", "0 0 * * *", None),
    ("0 5 * * *", "0 3 * * *", ["366/366 runs read the previous upstream run (22h old, not the one 2h later)"]),
    ("@hourly", "@daily", ["8395 upstream runs are awaited by no run"]),
    ("@daily", "@hourly", ["8418/8784 runs re-read an upstream run already read (up to 23h old)"]),
    ("@weekly", "@daily", ["313/366 runs re-read", "up to 6d old"]),
    ("@daily", "@weekly", ["306 upstream runs are awaited by no run"]),
    ("0 3 * * MON-FRI", "0 5 * * *", ["104/366 runs re-read", "up to 2d2h old"]),
    ("0 3 * * *", "0 5 * * MON-FRI", ["104 upstream runs are awaited by no run"]),
]


@pytest.mark.parametrize(("upstream", "downstream", "fragments"), WARNINGS)
def test_alignment_warning(upstream: str, downstream: str, fragments: list[str] | None) -> None:
    warning = alignment_warning(upstream, downstream)
    if fragments is None:
        assert warning is None
        return
    assert warning is not None and "\n" not in warning and len(warning) <= 160, warning
    assert warning.startswith(f"'{to_cron(upstream)}' -> '{to_cron(downstream)}': ")
    for fragment in fragments:
        assert fragment in warning
    if "re-read" in warning:  # redundant with 'shared': not repeated
        assert "previous upstream run" not in warning


def test_alignment_report_has_the_numbers_behind_the_line() -> None:
    report = alignment_report("0 5 * * *", "0 3 * * *").as_dict()
    assert report["sample"] == {"runs": 366, "first": "2024-01-01T03:00Z", "last": "2024-12-31T03:00Z"}
    assert report["previous"] == {"runs": 366, "example": {"downstream_run": "2024-01-01T03:00Z",
                                                           "waits_on": "2023-12-31T05:00Z",
                                                           "next_upstream_run": "2024-01-01T05:00Z"}}
    assert report["shared"]["runs"] == 0 and report["unawaited_upstream_runs"] == 0


def test_alignment_warning_refuses_bad_schedules() -> None:
    with pytest.raises(HandoffError):
        alignment_warning("@once", "@daily")
