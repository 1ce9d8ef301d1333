"""Two domains through the generated DAGs in-process (dag.test): the sensor finds the upstream run
of the aligned logical date by itself, and both callbacks leave their trace in the registry."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import datetime, timezone

import pytest
from support.examples import build_mesh, deploy_plans

HANDOFF = [sys.executable, "-m", "handoff.cli"]
DAY = datetime(2026, 1, 12, tzinfo=timezone.utc)


@pytest.fixture(scope="module")
def deployed(tmp_path_factory, airflow_home):
    tmp = tmp_path_factory.mktemp("dagtest")
    mesh = build_mesh(tmp, build=False, domains=("marketplace", "finance"))
    plans, registry = deploy_plans(mesh, tmp, ("marketplace", "finance"))
    return mesh, plans, registry


def test_sensor_finds_the_aligned_upstream_run_and_callbacks_record_it(deployed, monkeypatch):
    mesh, plans, registry_url = deployed
    for key, value in {"HANDOFF_PLANS_DIR": str(plans), "HANDOFF_DBT_PROJECTS_DIR": str(mesh.root),
                       "HANDOFF_DBT_PROFILES_DIR": str(mesh.profiles_dir), "HANDOFF_DUCKDB_PATH": str(mesh.duckdb_path),
                       "HANDOFF_REGISTRY_URL": registry_url}.items():
        monkeypatch.setenv(key, value)
    for key in ("HANDOFF_AIRFLOW_API_URL", "HANDOFF_AIRFLOW_API_USERNAME", "HANDOFF_AIRFLOW_API_PASSWORD"):
        monkeypatch.delenv(key, raising=False)
    from handoff.airflow import dags_from_env
    from handoff.registry import Registry

    dags = dags_from_env()
    upstream = dags["marketplace__daily"].test(logical_date=DAY.replace(hour=3))
    assert upstream.state == "success"
    downstream = dags["finance__daily"].test(logical_date=DAY.replace(hour=5))
    states = {ti.task_id: ti.state for ti in downstream.get_task_instances()}
    assert downstream.state == "success", states
    assert states["wait__marketplace__mrt_orders"] == "success"

    with Registry(registry_url, must_exist=True) as registry:
        [completion] = registry.completions(dag_id="marketplace__daily", task_id="mrt_orders")
        assert (completion.logical_date, completion.source) == (DAY.replace(hour=3), "callback")
        # nobody waits on stg_orders: its success records nothing
        assert registry.completions(dag_id="marketplace__daily", task_id="stg_orders") == []
        [resolution] = registry.resolutions(dag_id="finance__daily", run_id=downstream.run_id)
        assert (resolution.sensor_task_id, resolution.how, resolution.completion_id) == (
            "wait__marketplace__mrt_orders", "poke", completion.id)

    done = subprocess.run([*HANDOFF, "explain", "finance.mrt_revenue", "--at", "2026-01-12", "--registry",
                           registry_url], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert "wait__marketplace__mrt_orders -> marketplace.mrt_orders: satisfied by poke" in done.stdout
    assert "(the sensor saw the upstream itself)" in done.stdout


def test_a_rerun_of_a_past_upstream_date_names_the_downstream_run_that_read_the_old_data(deployed, monkeypatch):
    """marketplace re-runs a past date after finance's run of that date read it (dag.test replaces
    the run of 2026-01-13 with a new run of that logical date, as a backfill that reprocesses it
    does): who-depends-on --at and explain --at name finance's run as having read older data;
    nothing of finance is re-run (report only)."""
    mesh, plans, registry_url = deployed
    for key, value in {"HANDOFF_PLANS_DIR": str(plans), "HANDOFF_DBT_PROJECTS_DIR": str(mesh.root),
                       "HANDOFF_DBT_PROFILES_DIR": str(mesh.profiles_dir), "HANDOFF_DUCKDB_PATH": str(mesh.duckdb_path),
                       "HANDOFF_REGISTRY_URL": registry_url}.items():
        monkeypatch.setenv(key, value)
    for key in ("HANDOFF_AIRFLOW_API_URL", "HANDOFF_AIRFLOW_API_USERNAME", "HANDOFF_AIRFLOW_API_PASSWORD"):
        monkeypatch.delenv(key, raising=False)
    from handoff.airflow import dags_from_env

    day = DAY.replace(day=13)
    dags = dags_from_env()
    assert dags["marketplace__daily"].test(logical_date=day.replace(hour=3)).state == "success"
    downstream = dags["finance__daily"].test(logical_date=day.replace(hour=5))
    assert downstream.state == "success"
    at = ["--at", "2026-01-13T12:00:00+00:00", "--registry", registry_url]

    def readers() -> dict:
        done = subprocess.run([*HANDOFF, "who-depends-on", "marketplace.mrt_orders", *at, "--format", "json"],
                              capture_output=True, text=True)
        assert done.returncode == 0, done.stderr
        return json.loads(done.stdout)["readers"]

    before = readers()
    [reader] = before["readers"]
    assert (reader["dag_id"], reader["run_id"], reader["verdict"]) == (
        "finance__daily", downstream.run_id, "read the current data")
    [first] = before["completions"]
    assert before["older"] == 0 and first["current"] and reader["read_completion"]["id"] == first["id"]

    rerun = dags["marketplace__daily"].test(logical_date=day.replace(hour=3))  # a new run of the same date
    assert rerun.state == "success"
    after = readers()
    assert [(c["run_id"], c["current"]) for c in after["completions"]] == [(first["run_id"], False),
                                                                           (rerun.run_id, True)]
    [reader] = after["readers"]
    assert (reader["run_id"], reader["verdict"], reader["read_completion"]["id"]) == (
        downstream.run_id, "read older data", first["id"])
    assert reader["models"] == ["stg_marketplace_orders"] and after["older"] == 1
    explained = subprocess.run([*HANDOFF, "explain", "marketplace.mrt_orders", *at], capture_output=True, text=True)
    assert explained.returncode == 0, explained.stderr
    assert f"finance__daily @ {day.replace(hour=5).isoformat()} via wait__marketplace__mrt_orders: read older data" \
        in explained.stdout
    # report only: finance's run of that date was not touched (one run, each task tried once)
    from airflow.models.dagrun import DagRun

    [finance_run] = DagRun.find(dag_id="finance__daily", logical_date=day.replace(hour=5))
    assert finance_run.run_id == downstream.run_id
    assert {ti.task_id: ti.try_number for ti in finance_run.get_task_instances() if ti.state == "success"} == {
        ti.task_id: 1 for ti in downstream.get_task_instances() if ti.state == "success"}
