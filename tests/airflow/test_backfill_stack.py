"""A 3-day Airflow 3 native backfill of an example domain's pipeline processes each day's data.

`airflow backfill create` on a real scheduler stack (tests/support/airflow_stack.py) for
marketing.s `events` pipeline (@daily, UTC), logical dates 2024-03-08 to 2024-03-10: each run
passes its data interval to dbt, so the microbatch model mrt_page_views and the time-filtered
incremental model mrt_views_per_day hold the rows of 2024-03-07, -08 and -09, each day written
by the backfill run whose interval it is, and nothing of the days outside the backfill.

Airflow's metadata database is PostgreSQL (the server the test session starts), as in production:
on SQLite, `airflow backfill create` that meets the write lock of a busy scheduler ("database is
locked", which SQLite's busy timeout does not cover when a reader must upgrade to a writer) deletes
the runs it had created (`_cleanup_partial_backfill`), and the scheduler, already scheduling one
of them, exits on `ObjectDeletedError` — seen in a `make test` of five clones at once under two
CPU hogs (docs/recovery.md). That is Airflow on SQLite, not the backfill handoff's DAGs get.
"""

from __future__ import annotations

import shutil
from datetime import date, datetime, timedelta, timezone

import duckdb
import pytest
from support.airflow_stack import AirflowStack
from support.examples import REPO, build_mesh, deploy_plans

pytestmark = pytest.mark.airflow_stack

DAG_ID = "marketing__events"
FIRST, LAST = datetime(2024, 3, 8, tzinfo=timezone.utc), datetime(2024, 3, 10, tzinfo=timezone.utc)


@pytest.fixture(scope="module")
def stack(tmp_path_factory, module_airflow_stack_factory, postgres_server):
    tmp = tmp_path_factory.mktemp("backfill")
    postgres_server.admin("CREATE DATABASE airflow_backfill")
    metadata_db = postgres_server.url("airflow_backfill").replace("postgresql://", "postgresql+psycopg2://")
    mesh = build_mesh(tmp, build=False, domains=("marketing",))
    def events_only(domain: str, plan: dict) -> None:  # the other pipelines read other domains
        plan["pipelines"] = [p for p in plan["pipelines"] if p["name"] == "events"]

    plans, _ = deploy_plans(mesh, tmp, ("marketing",), publish=False, adjust=events_only)
    dags = tmp / "dags"
    dags.mkdir()
    shutil.copy(REPO / "integration_tests" / "airflow" / "dags" / "handoff_dags.py", dags / "handoff_dags.py")
    stack = module_airflow_stack_factory(dags, env={
        "HANDOFF_PLANS_DIR": str(plans),
        "HANDOFF_DBT_PROJECTS_DIR": str(mesh.root),
        "HANDOFF_DBT_PROFILES_DIR": str(mesh.profiles_dir),
        "HANDOFF_DUCKDB_PATH": str(mesh.duckdb_path),
        "DBT_SEND_ANONYMOUS_USAGE_STATS": "False",
    }, triggerer=False, metadata_db=metadata_db)
    stack.create_pool("duckdb", 1)
    stack.wait_for_dags(DAG_ID, timeout=300)
    return stack, mesh.duckdb_path


def test_a_three_day_backfill_processes_each_days_data(stack: tuple[AirflowStack, object]) -> None:
    airflow, warehouse = stack
    airflow.airflow("backfill", "create", "--dag-id", DAG_ID, "--from-date", FIRST.date().isoformat(),
                    "--to-date", LAST.date().isoformat(), "--max-active-runs", "1", timeout=600)
    api = airflow.airflow_api
    runs: list[dict] = []

    def created() -> bool:
        runs[:] = api.list_dag_runs(DAG_ID, logical_date_gte=FIRST, logical_date_lte=LAST)
        return len(runs) == 3

    airflow._wait(created, 300, lambda: f"backfill runs: {runs}")
    finished = {run["dag_run_id"]: airflow.wait_for_run(DAG_ID, run["dag_run_id"], timeout=900) for run in runs}
    assert {r["state"] for r in finished.values()} == {"success"}, {
        run_id: airflow.task_states(DAG_ID, run_id) for run_id in finished}
    assert {r["run_type"] for r in finished.values()} == {"backfill"}
    # logical date D (the run id) -> the day its data interval covers: D - 1 day
    expected_days = {datetime.fromisoformat(r["logical_date"].replace("Z", "+00:00")).date() - timedelta(days=1): run_id
                     for run_id, r in finished.items()}
    assert set(expected_days) == {date(2024, 3, 7), date(2024, 3, 8), date(2024, 3, 9)}

    with duckdb.connect(str(warehouse), read_only=True) as db:
        views = db.execute("select cast(viewed_at as date), built_by_run, count(*) from marketing.mrt_page_views "
                           "group by 1, 2").fetchall()
        per_day = db.execute("select view_day, built_by_run, views from marketing.mrt_views_per_day").fetchall()
        raw = dict(db.execute("select cast(viewed_at as date), count(*) from marketing.raw_page_views "
                              "group by 1").fetchall())
    assert {(day, run_id) for day, run_id, _ in views} == set(expected_days.items())
    assert {day: n for day, _, n in views} == {day: raw[day] for day in expected_days}
    assert {(day, run_id, n) for day, run_id, n in per_day} == {
        (day, run_id, raw[day]) for day, run_id in expected_days.items()}
