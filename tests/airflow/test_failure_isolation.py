"""A broken model blocks only what depends on it: the marketplace DAG on real Airflow and dbt."""

from __future__ import annotations

import json

import duckdb
import pytest
from support.examples import build_mesh, deploy_plans

EXPECTED_TASKS = {
    "raw_items", "raw_orders", "stg_items", "stg_orders", "int_orders", "mrt_items", "mrt_orders",
}


@pytest.fixture(scope="module")
def marketplace(tmp_path_factory, airflow_home):
    """A parse-only copy of marketplace (empty warehouse: the DAG's seed tasks load it) and its plan."""
    tmp = tmp_path_factory.mktemp("isolation")
    mesh = build_mesh(tmp, build=False, domains=("marketplace",))
    plans, _ = deploy_plans(mesh, tmp, ("marketplace",), publish=False)
    return mesh, plans, json.loads((plans / "marketplace.plan.json").read_text())


def _tables(path) -> set[str]:
    with duckdb.connect(str(path), read_only=True) as con:
        rows = con.execute("select table_name from information_schema.tables where table_schema = 'marketplace'")
        return {r[0] for r in rows.fetchall()}


def test_a_failing_model_blocks_only_its_descendants(marketplace, monkeypatch, capfd):
    mesh, plans, plan = marketplace
    tasks = {t["task_id"] for t in plan["pipelines"][0]["tasks"]}
    assert EXPECTED_TASKS <= tasks
    monkeypatch.setenv("HANDOFF_PLANS_DIR", str(plans))
    monkeypatch.setenv("HANDOFF_DBT_PROJECTS_DIR", str(mesh.root))
    monkeypatch.setenv("HANDOFF_DBT_PROFILES_DIR", str(mesh.profiles_dir))
    monkeypatch.setenv("HANDOFF_DUCKDB_PATH", str(mesh.duckdb_path))
    from handoff.airflow import dags_from_env

    dag = dags_from_env()["marketplace__daily"]
    run = dag.test(run_conf={"dbt_vars": {"handoff_example_fail": ["int_orders"]}})
    states = {ti.task_id: ti.state for ti in run.get_task_instances()}

    assert run.state == "failed"
    # batched is the default (decisions.md D29); dag.test() has no REST API: the batch says so in one
    # warning line and ends, and every model runs as its own task
    assert plan["pipelines"][0]["execution"] == "batched" and states["handoff__batch"] == "success"
    out = capfd.readouterr().out.splitlines()
    warned = [line for line in out if "batched execution needs the Airflow REST API" in line]
    assert len(warned) == 1 and "run as one task each (per_task)" in warned[0], warned
    tries = {ti.task_id: ti.try_number for ti in run.get_task_instances()}
    assert all(tries[t] >= 1 for t in ("raw_items", "stg_orders", "int_orders", "mrt_items")), tries
    assert states["int_orders"] == "failed"
    assert states["mrt_orders"] == "upstream_failed"
    for independent in ("raw_items", "raw_orders", "stg_items", "stg_orders", "mrt_items"):
        assert states[independent] == "success", (independent, states)
    tables = _tables(mesh.duckdb_path)
    assert {"mrt_items", "raw_items", "raw_orders"} <= tables
    assert "int_orders" not in tables and "mrt_orders" not in tables

    # the same DAG without the injected failure runs green and builds everything
    rerun = dag.test()
    assert rerun.state == "success", {ti.task_id: ti.state for ti in rerun.get_task_instances()}
    assert {"int_orders", "mrt_orders"} <= _tables(mesh.duckdb_path)
