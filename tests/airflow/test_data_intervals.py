"""Each run's data interval reaches dbt: a microbatch model and a time-filtered incremental model,
run by the generated DAG with dag.test() for past logical dates, rebuild exactly their run's day.

marketing's `events` pipeline (@daily, UTC; integration_tests/marketing/models/events):
mrt_page_views is a dbt microbatch model (batch_size day) and mrt_views_per_day an incremental
model filtering on var('handoff_data_interval_start'/'_end'); both write the run id that built
each row (var('handoff_run_id')). The run at logical date D has data interval [D - 1 day, D).
"""

from __future__ import annotations

import json
from datetime import date, datetime, timezone

import duckdb
import pytest
from support.examples import build_mesh, deploy_plans


@pytest.fixture(scope="module")
def events_dag(tmp_path_factory, airflow_home):
    tmp = tmp_path_factory.mktemp("intervals")
    mesh = build_mesh(tmp, build=False, domains=("marketing",))
    plans, _ = deploy_plans(mesh, tmp, ("marketing",), publish=False)
    plan = json.loads((plans / "marketing.plan.json").read_text())
    env = {"HANDOFF_PLANS_DIR": str(plans), "HANDOFF_DBT_PROJECTS_DIR": str(mesh.root),
           "HANDOFF_DBT_PROFILES_DIR": str(mesh.profiles_dir), "HANDOFF_DUCKDB_PATH": str(mesh.duckdb_path)}
    with pytest.MonkeyPatch.context() as patch:
        for key, value in env.items():
            patch.setenv(key, value)
        from handoff.airflow import dags_from_env

        dag = dags_from_env()["marketing__events"]
        yield dag, mesh.duckdb_path, plan


def rows(path, sql: str) -> list[tuple]:
    with duckdb.connect(str(path), read_only=True) as db:
        return db.execute(sql).fetchall()


def by_day(path) -> tuple[dict[date, set[str]], dict[date, tuple[int, str]]]:
    views: dict[date, set[str]] = {}
    for day, run in rows(path, "select cast(viewed_at as date), built_by_run from marketing.mrt_page_views"):
        views.setdefault(day, set()).add(run)
    per_day = {day: (n, run) for day, n, run in rows(path, "select view_day, views, built_by_run "
                                                           "from marketing.mrt_views_per_day")}
    return views, per_day


def run_at(dag, day: int, **kwargs):
    run = dag.test(logical_date=datetime(2024, 3, day, tzinfo=timezone.utc), **kwargs)
    assert run.state == "success", {ti.task_id: ti.state for ti in run.get_task_instances()}
    return run.run_id


def test_the_plan_marks_the_microbatch_model(events_dag):
    _, _, plan = events_dag
    [events] = [p for p in plan["pipelines"] if p["name"] == "events"]
    flags = {t["task_id"]: t.get("microbatch") for t in events["tasks"]}
    assert flags == {"raw_page_views": False, "mrt_page_views": True, "mrt_views_per_day": False}
    assert (events["schedule"], events["timezone"]) == ("@daily", "UTC")
    [page_views] = [t for t in events["tasks"] if t["task_id"] == "mrt_page_views"]
    assert page_views["available_within_s"] == 7200


def test_past_logical_dates_rebuild_exactly_their_day(events_dag):
    dag, warehouse, _ = events_dag
    first = run_at(dag, 10)  # data interval [2024-03-09, 2024-03-10)
    views, per_day = by_day(warehouse)
    raw = dict(rows(warehouse, "select cast(viewed_at as date), count(*) from marketing.raw_page_views group by 1"))
    assert views == {date(2024, 3, 9): {first}}, views
    assert per_day == {date(2024, 3, 9): (raw[date(2024, 3, 9)], first)}

    second = run_at(dag, 12)  # [2024-03-11, 2024-03-12); 03-10 stays missing: nobody ran it yet
    views, per_day = by_day(warehouse)
    assert views == {date(2024, 3, 9): {first}, date(2024, 3, 11): {second}}, views
    assert set(per_day) == {date(2024, 3, 9), date(2024, 3, 11)} and per_day[date(2024, 3, 9)][1] == first

    # spoil both days in place, then re-run the past date 2024-03-10: only its day is rebuilt
    with duckdb.connect(str(warehouse)) as db:
        db.execute("update marketing.mrt_views_per_day set views = -1")
        db.execute("delete from marketing.mrt_page_views where cast(viewed_at as date) = date '2024-03-09' "
                   "and view_id % 2 = 0")
    again = run_at(dag, 10)
    assert again != first
    views, per_day = by_day(warehouse)
    assert views == {date(2024, 3, 9): {again}, date(2024, 3, 11): {second}}, views
    assert len(rows(warehouse, "select * from marketing.mrt_page_views where cast(viewed_at as date) = "
                               "date '2024-03-09'")) == raw[date(2024, 3, 9)]
    assert per_day == {date(2024, 3, 9): (raw[date(2024, 3, 9)], again), date(2024, 3, 11): (-1, second)}


def test_conf_vars_still_reach_dbt_but_cannot_replace_the_runs_own(events_dag):
    dag, warehouse, _ = events_dag
    run = dag.test(logical_date=datetime(2024, 3, 8, tzinfo=timezone.utc),
                   run_conf={"dbt_vars": {"handoff_example_fail": ["mrt_views_per_day"]}})
    states = {ti.task_id: ti.state for ti in run.get_task_instances()}
    # batched (the default) has no REST API under dag.test(): the batch ends and each model runs as a task (D29)
    assert states == {"handoff__batch": "success", "raw_page_views": "success", "mrt_page_views": "success",
                      "mrt_views_per_day": "failed"}
    clash = dag.test(logical_date=datetime(2024, 3, 8, tzinfo=timezone.utc),
                     run_conf={"dbt_vars": {"handoff_data_interval_start": "2024-01-01T00:00:00+00:00"}})
    assert {ti.task_id: ti.state for ti in clash.get_task_instances()} == {
        "handoff__batch": "success", "raw_page_views": "failed", "mrt_page_views": "upstream_failed", "mrt_views_per_day": "upstream_failed"}
