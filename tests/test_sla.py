"""The SLA model (handoff.sla): one deadline per run, for every schedule kind."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timezone

import pytest
from handoff.plan_model import DbtTask, PlanPipeline
from handoff.sla import Sla, daily_time_of, deadline, deadline_of_run, format_duration, sla_form_problem, sla_text


def utc(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=timezone.utc)


# (schedule, timezone, SLA, run's logical date, deadline) — the worked examples of docs/convention.md
DEADLINES = [
    # available_within: a duration after the run's scheduled time, any schedule
    ("@hourly", "UTC", Sla(available_within_s=45 * 60), "2024-03-10T13:00", "2024-03-10T13:45"),
    ("*/15 8-18 * * MON-FRI", "UTC", Sla(available_within_s=600), "2024-03-11T08:45", "2024-03-11T08:55"),
    ("0 23 * * *", "UTC", Sla(available_within_s=3 * 3600), "2024-03-10T23:00", "2024-03-11T02:00"),
    # available_by: the time on the run's day, after the run's start
    ("0 3 * * *", "UTC", Sla("05:30"), "2024-03-10T03:00", "2024-03-10T05:30"),
    ("0 6 * * MON", "UTC", Sla("09:00"), "2024-03-11T06:00", "2024-03-11T09:00"),
    ("@monthly", "UTC", Sla("06:00"), "2024-03-01T00:00", "2024-03-01T06:00"),
    # in the pipeline's timezone: 06:30 Berlin is 05:30 UTC in winter, 04:30 UTC in summer
    ("0 5 * * *", "Europe/Berlin", Sla("06:30"), "2024-01-10T04:00", "2024-01-10T05:30"),
    ("0 5 * * *", "Europe/Berlin", Sla("06:30"), "2024-07-10T03:00", "2024-07-10T04:30"),
    # spring forward (2024-03-31, 02:00 -> 03:00): a skipped 02:30 is due when the clock jumps
    ("0 1 * * *", "Europe/Berlin", Sla("02:30"), "2024-03-31T00:00", "2024-03-31T01:00"),
    # ... and a run moved past its deadline by the gap is due at its start (HO308 warns)
    ("30 2 * * *", "Europe/Berlin", Sla("02:45"), "2024-03-31T01:30", "2024-03-31T01:30"),
    # fall back (2024-10-27, 03:00 -> 02:00): the first 02:30 at or after the run
    ("0 1 * * *", "Europe/Berlin", Sla("02:30"), "2024-10-26T23:00", "2024-10-27T00:30"),
    ("10 2 * * *", "Europe/Berlin", Sla("02:30"), "2024-10-27T01:10", "2024-10-27T01:30"),
    # available_within is absolute time across the switch: 3h after 01:00 CEST is 03:00 CET
    ("0 1 * * *", "Europe/Berlin", Sla(available_within_s=3 * 3600), "2024-10-26T23:00", "2024-10-27T02:00"),    # New York: the skipped 02:30 of 2024-03-10 is due at the jump (03:00 EDT); the repeated 01:30 of
    # 2024-11-03 at its first occurrence (EDT)
    ("0 1 * * *", "America/New_York", Sla("02:30"), "2024-03-10T06:00", "2024-03-10T07:00"),
    ("0 1 * * *", "America/New_York", Sla("01:30"), "2024-11-03T05:00", "2024-11-03T05:30"),
    # Lord Howe's half-hour switches: 02:00 -> 02:30 on 2024-10-06 (02:15 is due at the jump, 02:30
    # LHDT), 02:00 -> 01:30 on 2024-04-07 (the first 01:45, LHDT)
    ("0 1 * * *", "Australia/Lord_Howe", Sla("02:15"), "2024-10-05T14:30", "2024-10-05T15:30"),
    ("0 1 * * *", "Australia/Lord_Howe", Sla("01:45"), "2024-04-06T14:00", "2024-04-06T14:45"),
]


@pytest.mark.parametrize(("schedule", "zone", "sla", "run", "expected"), DEADLINES)
def test_deadline_of_a_run(schedule: str, zone: str, sla: Sla, run: str, expected: str) -> None:
    assert deadline(utc(run), sla, schedule, zone) == utc(expected)


def test_no_sla_no_deadline_and_the_plan_task_form() -> None:
    assert deadline(utc("2024-03-10T03:00"), Sla(), "0 3 * * *") is None and not Sla()
    task = DbtTask(task_id="orders", kind="dbt_model", unique_id="model.shop.orders", name="orders", tests=(),
                   relation=None, access="public", owner="shop", slack="", available_by=None,
                   available_within_s=2700, microbatch=False, retries=0, retry_delay_s=0, timeout_s=None, pool=None,
                   upstream=())
    pipeline = PlanPipeline(name="hourly", dag_id="shop__hourly", schedule="@hourly", start_date="2024-01-01",
                            description="", tasks=(task,), timezone="Europe/Berlin")
    assert deadline_of_run(task, pipeline, utc("2024-03-10T13:00")) == utc("2024-03-10T13:45")
    daily = replace(pipeline, schedule="0 5 * * *", timezone="UTC")
    by_seven = replace(task, available_by="07:00", available_within_s=None)
    assert deadline_of_run(by_seven, daily, utc("2024-03-10T05:00")) == utc("2024-03-10T07:00")
    assert [sla_text(Sla.of(t), "UTC") for t in (task, by_seven)] == [
        "available within 45m of each run's scheduled time", "available by 07:00 UTC on each run's day"]
    assert sla_text(Sla()) == "none"


# (schedule, available_by, available_within, None or a fragment of the HO208 message)
FORMS = [
    ("0 3 * * *", "05:30", None, None),
    ("@daily", "00:01", None, None),
    ("@weekly", "06:00", None, None),
    ("0 0 1 * *", "23:59", None, None),
    ("@hourly", None, "45m", None),
    ("*/15 * * * *", None, "10m", None),
    ("@hourly", "00:45", None, "runs more than once a day ('@hourly'): use available_within"),
    ("0 3,15 * * *", "05:00", None, "runs more than once a day"),
    ("*/30 4 * * *", "05:00", None, "runs more than once a day"),
    ("0 6 * * *", "03:00", None, "not after the pipeline's start at 06:00 ('0 6 * * *')"),
    ("0 6 * * *", "03:00", None, "available_within: 21h for a deadline on the following day"),
    ("30 2 * * *", "02:30", None, "available_within: 24h"),
    ("0 23 * * *", "00:30", None, "available_within: 90m"),
    ("0 3 * * *", "05:00", "2h", "both available_by and available_within are set"),
]


@pytest.mark.parametrize(("schedule", "by", "within", "fragment"), FORMS)
def test_ambiguous_sla_forms_are_named(schedule: str, by: str | None, within: str | None,
                                       fragment: str | None) -> None:
    problem = sla_form_problem(schedule, by, within)
    if fragment is None:
        assert problem is None
    else:
        assert problem is not None and fragment in problem and "\n" not in problem


@pytest.mark.parametrize(("schedule", "time_of_day"), [
    ("0 3 * * *", "03:00"), ("@daily", "00:00"), ("@monthly", "00:00"), ("5 23 * * MON", "23:05"),
    ("@hourly", None), ("0 */2 * * *", None), ("0,30 3 * * *", None), ("0 3 * *", None)])
def test_daily_time_of(schedule: str, time_of_day: str | None) -> None:
    assert daily_time_of(schedule) == time_of_day


@pytest.mark.parametrize(("seconds", "text"), [(2700, "45m"), (7200, "2h"), (5400, "90m"), (86400, "1d"),
                                               (151200, "42h"), (61, "61s")])
def test_format_duration(seconds: int, text: str) -> None:
    assert format_duration(seconds) == text


def test_sla_durations_are_bounded_at_400_days_and_read_back_rows_are_checked() -> None:
    from handoff.sla import MAX_SLA_SECONDS, duration_seconds

    assert duration_seconds("400d") == MAX_SLA_SECONDS == duration_seconds("9600h")
    for text in ("401d", "3000000d", "999999999h", "34560001s"):
        with pytest.raises(ValueError, match="longer than 400d|not a duration"):
            duration_seconds(text)
    assert Sla(available_within_s=MAX_SLA_SECONDS).problem() is None
    for bad in (Sla(available_within_s=MAX_SLA_SECONDS + 1), Sla(available_within_s=0),
                Sla(available_within_s=True), Sla(available_by="6:30"), Sla(available_by="06:30\n")):
        assert bad.problem() is not None, bad
