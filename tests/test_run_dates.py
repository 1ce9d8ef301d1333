"""What a date asks for (handoff.run_dates, shared by the run-status page and `handoff explain --at`):
a calendar date is the runs whose logical date falls on it in the pipeline's own timezone; a
date-time is the one run at or before it. Ticks are handoff.ticks' (checked against Airflow's
own timetable in tests/airflow/test_ticks_match_airflow.py)."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest
from handoff.errors import HandoffError
from handoff.run_dates import latest_before, parse, runs_asked

U = timezone.utc


def _iso(runs):
    return [r.isoformat() for r in runs]


def test_a_date_is_the_local_calendar_day_of_the_pipeline():
    # Europe/Berlin 01:00 daily: the run of 31 March (CEST) has the logical date 30 March 23:00 UTC
    assert _iso(runs_asked(parse("2026-03-31"), "0 1 * * *", "Europe/Berlin")) == ["2026-03-30T23:00:00+00:00"]
    assert _iso(runs_asked(parse("2026-03-30"), "0 1 * * *", "Europe/Berlin")) == ["2026-03-29T23:00:00+00:00"]
    assert _iso(runs_asked(parse("2026-03-29"), "0 1 * * *", "Europe/Berlin")) == ["2026-03-29T00:00:00+00:00"]
    assert _iso(runs_asked(parse("2026-11-26"), "0 23 * * *", "America/New_York")) == ["2026-11-27T04:00:00+00:00"]
    assert _iso(runs_asked(parse("2026-11-26"), "0 3 * * *", None)) == ["2026-11-26T03:00:00+00:00"]


def test_an_hourly_pipeline_has_a_run_per_local_hour_of_the_day():
    utc = runs_asked(parse("2026-11-26"), "@hourly", None)
    assert len(utc) == 24 and utc[0] == datetime(2026, 11, 26, 0, tzinfo=U) and utc[-1].hour == 23
    berlin = runs_asked(parse("2026-11-26"), "0 * * * *", "Europe/Berlin")
    assert len(berlin) == 24 and berlin[0] == datetime(2026, 11, 25, 23, tzinfo=U)
    assert len(runs_asked(parse("2026-03-29"), "0 * * * *", "Europe/Berlin")) == 23  # spring forward
    assert len(runs_asked(parse("2026-10-25"), "0 * * * *", "Europe/Berlin")) == 25  # fall back


def test_a_date_time_is_one_run_at_or_before_it():
    assert _iso(runs_asked(parse("2026-11-26T10:30"), "@hourly", None)) == ["2026-11-26T10:00:00+00:00"]
    assert _iso(runs_asked(parse("2026-03-30T23:00:00+00:00"), "0 1 * * *", "Europe/Berlin")) == [
        "2026-03-30T23:00:00+00:00"]
    assert _iso(runs_asked(parse("2026-03-31T01:30+02:00"), "0 1 * * *", "Europe/Berlin")) == [
        "2026-03-30T23:00:00+00:00"]


def test_a_day_without_a_run_has_none_and_says_the_latest_before():
    monday = parse("2026-11-30")  # weekly on Sundays
    assert runs_asked(monday, "0 6 * * 0", None) == []
    assert latest_before(monday, "0 6 * * 0", None) == datetime(2026, 11, 29, 6, tzinfo=U)


@pytest.mark.parametrize(("text", "what", "said"), [
    ("soon", "--at", "--at 'soon' is not a date"),
    ("2026-13-01", "date=", "date= '2026-13-01' is not a date"),
    ("9999-12-31", "--at", "outside the years"),
    ("2026-11-24" * 5, "date=", "is too long to be a date"),
])
def test_a_bad_date_is_one_line_naming_where_it_came_from(text, what, said):
    with pytest.raises(HandoffError) as caught:
        parse(text, what=what)
    assert said in caught.value.one_line() and "\n" not in caught.value.one_line()
