"""Which model runs are due when (handoff.sla_runs): any schedule, any timezone, DST days."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from handoff.sla import Sla
from handoff.sla_runs import SlaModel, due_between, next_deadline


def _model(schedule: str, tz: str, sla: Sla, task_id: str = "m", dag_id: str = "d__p") -> SlaModel:
    return SlaModel(domain="d", dag_id=dag_id, task_id=task_id, model=task_id, schedule=schedule, timezone=tz,
                    start_date="2026-01-01", sla=sla)


def test_daily_available_by_is_due_on_the_runs_day() -> None:
    orders = _model("0 3 * * *", "UTC", Sla("04:30"))
    day = datetime(2026, 11, 24, tzinfo=UTC)
    [due] = due_between([orders], day, day + timedelta(days=1))
    assert (due.logical_date, due.deadline) == (day.replace(hour=3), day.replace(hour=4, minute=30))
    assert due_between([orders], day.replace(hour=4, minute=30), day.replace(hour=23)) == []  # (start, end]


def test_hourly_available_within_is_due_every_hour() -> None:
    sessions = _model("@hourly", "UTC", Sla(None, 45 * 60))
    start = datetime(2026, 11, 24, 10, 0, tzinfo=UTC)
    found = due_between([sessions], start, start + timedelta(hours=3))
    assert [(d.logical_date.hour, d.deadline.hour, d.deadline.minute) for d in found] == [
        (10, 10, 45), (11, 11, 45), (12, 12, 45)]
    earlier = due_between([sessions], start - timedelta(minutes=30), start)
    assert [(d.logical_date.hour, d.deadline.minute) for d in earlier] == [(9, 45)]  # a run of 09:00


def test_berlin_available_by_follows_the_wall_clock_across_the_spring_switch() -> None:
    revenue = _model("0 1 * * *", "Europe/Berlin", Sla("02:30"))  # 02:30 does not exist on 2026-03-29
    start = datetime(2026, 3, 27, 0, 0, tzinfo=UTC)
    found = due_between([revenue], start, start + timedelta(days=3))
    assert [d.deadline for d in found] == [
        datetime(2026, 3, 27, 1, 30, tzinfo=UTC),  # CET: 02:30 local
        datetime(2026, 3, 28, 1, 30, tzinfo=UTC),
        datetime(2026, 3, 29, 1, 0, tzinfo=UTC),  # the clock jumps 02:00 -> 03:00 CEST = 01:00 UTC
    ]


def test_models_sharing_a_pipeline_and_sla_share_the_work_and_order_by_deadline() -> None:
    a = _model("0 3 * * *", "UTC", Sla("04:30"), "a")
    b = _model("0 3 * * *", "UTC", Sla("04:30"), "b")
    c = _model("0 3 * * *", "UTC", Sla("04:00"), "c")
    day = datetime(2026, 11, 24, tzinfo=UTC)
    assert [d.model.task_id for d in due_between([b, a, c], day, day + timedelta(days=1))] == ["c", "a", "b"]
    assert next_deadline([a, c], day.replace(hour=4)) == day.replace(hour=4, minute=30)
    assert next_deadline([a, c], day.replace(hour=4, minute=30)) == day.replace(hour=4) + timedelta(days=1)


def test_no_run_before_the_pipelines_start() -> None:
    late_start = SlaModel(domain="d", dag_id="d__p", task_id="m", model="m", schedule="0 3 * * *", timezone="UTC",
                          start_date="2026-11-25", sla=Sla("04:30"))
    day = datetime(2026, 11, 24, tzinfo=UTC)
    assert [d.logical_date.day for d in due_between([late_start], day, day + timedelta(days=2))] == [25]


def test_one_model_type_for_the_watch_and_the_history() -> None:
    row = {"domain": "shop", "dag_id": "shop__daily", "task_id": "orders_v2", "model": "orders",
           "schedule": "0 5 * * *", "timezone": "Europe/Berlin", "start_date": "2026-07-01",
           "available_by": "07:30", "available_within_s": None, "first_published": None}
    m = SlaModel.of_row(row)
    assert (m.name, m.model_name) == ("shop.orders_v2", "shop.orders")  # the Airflow task / the dbt model
    assert m.promise() == "available_by 07:30 Europe/Berlin"
    assert m.start == datetime(2026, 6, 30, 22, 0, tzinfo=UTC)  # midnight in Berlin (CEST)
    none = SlaModel.of_row({**row, "available_by": None, "timezone": None})
    assert (none.promise(), none.timezone, bool(none.sla)) == (None, "UTC", False)
    with pytest.raises(ValueError, match="shop.orders_v2 has no SLA"):
        none.deadline_of(m.start)
