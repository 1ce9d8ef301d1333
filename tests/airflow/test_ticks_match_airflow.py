"""handoff.ticks computes the ticks Airflow 3.3's CronTriggerTimetable computes, in any timezone.

The sensors' alignment, recovery's windows, the SLA deadlines and the feasibility check all take
their ticks from handoff.ticks (no Airflow import); the scheduler takes them from Airflow's
timetable. Here both walk the same days — New Year, and five days around every daylight-saving
switch of 2024 — for crons of both of Airflow's rules (hour field '*': evenly spaced; otherwise:
wall clock), in timezones with northern, southern, half-hour and no daylight saving.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pendulum
import pytest
from airflow.serialization.encoders import coerce_to_core_timetable
from airflow.timetables.trigger import CronTriggerTimetable
from handoff.registry.feasibility import _switches
from handoff.ticks import is_tick, latest_tick_at_or_before, next_tick, previous_tick, schedule_of

ZONES = ["Europe/Berlin", "America/New_York", "Australia/Sydney", "Australia/Lord_Howe", "Asia/Kolkata"]
CRONS = ["@hourly", "30 * * * *", "0 */2 * * *", "30 2 * * *", "0 3 * * *", "15 1,2,3 * * *", "0 6 * * MON",
         "0 2 1 * *"]


def windows(zone: str) -> list[tuple[datetime, datetime]]:
    days = [datetime(2024, 1, 1, tzinfo=timezone.utc)] + [
        datetime(d.year, d.month, d.day, tzinfo=timezone.utc) - timedelta(days=2) for d in _switches(zone)]
    return [(day, day + timedelta(days=8)) for day in days]  # a week and a day: every weekday once


@pytest.mark.parametrize("zone", ZONES)
@pytest.mark.parametrize("cron", CRONS)
def test_ticks_are_airflows(zone: str, cron: str) -> None:
    timetable = CronTriggerTimetable(cron, timezone=zone)
    schedule = schedule_of(cron, zone)
    compared = 0
    for start, end in windows(zone):
        theirs = timetable._align_to_next(pendulum.instance(start))
        ours = latest_tick_at_or_before(schedule, start)
        ours = ours if ours == start else next_tick(schedule, ours)
        while theirs < end:
            assert ours == theirs, (zone, cron, ours, theirs)
            assert is_tick(schedule, ours)
            following = timetable._get_next(theirs)
            middle = theirs + (following - theirs) / 2
            assert latest_tick_at_or_before(schedule, middle) == theirs
            assert previous_tick(schedule, following) == theirs
            theirs, ours = following, next_tick(schedule, ours)
            compared += 1
    assert compared >= len(windows(zone)) or cron == "0 2 1 * *"  # monthly: only January's window has a tick


def test_a_generated_dag_runs_on_the_pipelines_timezone(tmp_path) -> None:
    """The factory gives the DAG the pipeline's timezone; its next runs are handoff's ticks."""
    from handoff.airflow.factory import build_dag
    from handoff.airflow.dbt_runner import DbtProject
    from handoff.plan_model import Plan, PlanDbt, PlanDomain, PlanPipeline

    pipeline = PlanPipeline(name="daily", dag_id="tz__daily", schedule="30 2 * * *", timezone="Europe/Berlin",
                            start_date="2024-03-29", description="", max_active_runs=1, tasks=())
    plan = Plan(plan_version=2, handoff_version="0", domain=PlanDomain("tz", "o", "#s", ""),
                dbt=PlanDbt("tz", "1.11", ""), pipelines=(pipeline,), notes=())
    dag = build_dag(plan, pipeline, project=DbtProject(str(tmp_path), str(tmp_path)), upstreams={})
    assert (dag.timetable.expression, str(dag.timetable.timezone)) == ("30 2 * * *", "Europe/Berlin")
    assert dag.start_date == datetime(2024, 3, 28, 23, 0, tzinfo=timezone.utc)  # midnight in Berlin
    core = coerce_to_core_timetable(dag.timetable)
    schedule = schedule_of("30 2 * * *", "Europe/Berlin")
    tick = datetime(2024, 3, 29, 1, 30, tzinfo=timezone.utc)
    seen = []
    for _ in range(4):  # across the spring-forward night: 02:30 CET, 02:30 CET, 03:30 CEST, 02:30 CEST
        assert core._get_next(pendulum.instance(tick)) == next_tick(schedule, tick)
        tick = next_tick(schedule, tick)
        seen.append(tick.astimezone(schedule.tz).strftime("%d %H:%M"))
    assert seen == ["30 02:30", "31 03:30", "01 02:30", "02 02:30"]
