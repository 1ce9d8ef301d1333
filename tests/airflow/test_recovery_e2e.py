"""Cross-domain sensors and late-completion recovery on a real Airflow 3.3 stack, with real dbt.

marketplace (daily 03:00) publishes mrt_orders; finance (daily 05:00) reads it through a source,
so finance__daily has a sensor wait__marketplace__mrt_orders that only stg_marketplace_orders
and mrt_revenue wait on. Generated DAGs, one DAG file, plans + registry snapshot, a registry on
SQLite, the completion callback configured through the Airflow connection handoff_airflow_api.

a) on time: finance's independent models run while its sensor waits; marketplace's mrt_orders
   succeeds; the sensor is satisfied and finance's run ends in success.
b) late: the sensor times out, its dependants are upstream_failed; marketplace then succeeds;
   the callback satisfies the sensor through the API; the dependants run; finance ends success.
c) the same with the API unreachable from the callback: marketplace still succeeds, finance
   stays failed, `handoff reconcile` recovers it.
b and c share one wait for the timeout: their two finance runs start together.
Sensors use the default wait mode (deferrable), so the stack runs a triggerer.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from datetime import datetime, timedelta, timezone

import pytest
from support.airflow_stack import AirflowStack, free_port
from support.examples import REPO, build_mesh, deploy_plans

pytestmark = pytest.mark.airflow_stack

SENSOR = "wait__marketplace__mrt_orders"
READERS = ("stg_marketplace_orders", "mrt_revenue")
INDEPENDENT = ("raw_fx_rates", "stg_fx_rates", "mrt_fx_rates")
SENSOR_TIMEOUT_S = 75  # longer than a marketplace run on a busy 2-core machine
HANDOFF = [sys.executable, "-m", "handoff.cli"]


@pytest.fixture(scope="module")
def deployment(tmp_path_factory):
    """Built warehouse, compiled plans (short sensor timeout), published registry, snapshot."""
    tmp = tmp_path_factory.mktemp("recovery")
    mesh = build_mesh(tmp, build=True, domains=("marketplace", "finance"))

    def shorten_waits(domain: str, plan: dict) -> None:
        if domain == "finance":
            plan["pipelines"][0]["max_active_runs"] = 3  # b and c wait for their timeouts together
            for task in plan["pipelines"][0]["tasks"]:
                if task["task_id"] == SENSOR:
                    task.update(timeout_s=SENSOR_TIMEOUT_S, poke_interval_s=3)  # a test-sized wait

    plans, registry_url = deploy_plans(mesh, tmp, ("marketplace", "finance"), adjust=shorten_waits)
    dags = tmp / "dags"
    dags.mkdir()
    shutil.copy(REPO / "integration_tests" / "airflow" / "dags" / "handoff_dags.py", dags / "handoff_dags.py")
    return {"mesh": mesh, "plans": plans, "registry_url": registry_url, "dags": dags}


@pytest.fixture(scope="module")
def stack(deployment, module_airflow_stack_factory) -> AirflowStack:
    mesh = deployment["mesh"]
    stack = module_airflow_stack_factory(deployment["dags"], env={
        "HANDOFF_PLANS_DIR": str(deployment["plans"]),
        "HANDOFF_DBT_PROJECTS_DIR": str(mesh.root),
        "HANDOFF_DBT_PROFILES_DIR": str(mesh.profiles_dir),
        "HANDOFF_DUCKDB_PATH": str(mesh.duckdb_path),
        "HANDOFF_REGISTRY_URL": deployment["registry_url"],
        # the callback reads the API from the Airflow connection (below), not the environment
        "HANDOFF_AIRFLOW_API_URL": "",
        "DBT_SEND_ANONYMOUS_USAGE_STATS": "False",
    }, triggerer=True)
    stack.create_pool("duckdb", 1)
    point_callback_at(stack, stack.port)
    stack.wait_for_dags("marketplace__daily", "finance__daily", timeout=120)
    return stack


def point_callback_at(stack: AirflowStack, port: int) -> None:
    """(Re)define the Airflow connection the completion callback reads its API from."""
    body = {"connection_id": "handoff_airflow_api", "conn_type": "http", "host": "127.0.0.1", "port": port,
            "login": stack.username, "password": stack.password}
    status, answer = stack.airflow_api.request("PATCH", "/api/v2/connections/handoff_airflow_api", body=body)
    if status == 404:
        status, answer = stack.airflow_api.request("POST", "/api/v2/connections", body=body)
    assert status in (200, 201), (status, answer)


def _day(offset: int) -> datetime:
    today = datetime.now(timezone.utc).replace(hour=0, minute=0, second=0, microsecond=0)
    return today - timedelta(days=offset)


def _ti(stack: AirflowStack, dag_id: str, run_id: str, task_id: str) -> dict:
    return stack.airflow_api.get_task_instance(dag_id, run_id, task_id)


def _resolutions(registry_url: str, run_id: str) -> list:
    from handoff.registry import Registry

    with Registry(registry_url, must_exist=True) as registry:
        return registry.resolutions(dag_id="finance__daily", run_id=run_id)


def _run_upstream(stack: AirflowStack, day: datetime) -> tuple[str, datetime]:
    run_id = stack.trigger("marketplace__daily", day + timedelta(hours=3))
    stack.wait_for_run("marketplace__daily", run_id, timeout=240)
    ti = _ti(stack, "marketplace__daily", run_id, "mrt_orders")
    assert ti["state"] == "success", stack.task_states("marketplace__daily", run_id)
    return run_id, datetime.fromisoformat(ti["end_date"].replace("Z", "+00:00"))


def _when(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def _satisfied_at(stack: AirflowStack, registry_url: str, run_id: str) -> tuple[datetime, str]:
    """When and how the sensor of a finance run was satisfied: its own poke, or reconciliation."""
    resolutions = [r for r in _resolutions(registry_url, run_id) if r.sensor_task_id == SENSOR]
    if resolutions and resolutions[0].how == "reconcile":
        return resolutions[0].resolved_at, "reconcile"
    return _when(_ti(stack, "finance__daily", run_id, SENSOR)["end_date"]), "poke"


def test_a_downstream_waits_only_where_it_reads_and_runs_right_after_the_upstream(stack, deployment):
    day = _day(3)
    finance = stack.trigger("finance__daily", day + timedelta(hours=5))
    stack.wait_for_task("finance__daily", finance, SENSOR, ["deferred", "running"], timeout=120)
    _, upstream_end = _run_upstream(stack, day)
    stack.wait_for_run("finance__daily", finance, timeout=180)
    states = stack.task_states("finance__daily", finance)
    assert all(s == "success" for s in states.values()), states

    satisfied, how = _satisfied_at(stack, deployment["registry_url"], finance)
    readers_start = min(_when(_ti(stack, "finance__daily", finance, t)["start_date"]) for t in READERS)
    independent_end = max(_when(_ti(stack, "finance__daily", finance, t)["end_date"]) for t in INDEPENDENT)
    assert readers_start >= upstream_end  # the readers waited for marketplace ...
    assert independent_end < upstream_end  # ... the others did not
    latency = (satisfied - upstream_end).total_seconds()
    assert -1 <= latency <= 30, latency
    print(f"\n[a] upstream success -> sensor satisfied ({how}): {latency:.1f} s")


def test_bc_late_upstream_recovers_timed_out_sensors_by_callback_or_by_sweep(stack, deployment):
    by_callback_day, by_sweep_day = _day(2), _day(1)
    by_callback = stack.trigger("finance__daily", by_callback_day + timedelta(hours=5))
    by_sweep = stack.trigger("finance__daily", by_sweep_day + timedelta(hours=5))
    for run in (by_callback, by_sweep):
        stack.wait_for_run("finance__daily", run, ["failed"], timeout=SENSOR_TIMEOUT_S + 180)
        states = stack.task_states("finance__daily", run)
        assert states[SENSOR] == "failed", states
        assert all(states[t] == "upstream_failed" for t in READERS), states
        assert all(states[t] == "success" for t in INDEPENDENT), states

    # b) the upstream succeeds hours late: its callback satisfies the timed-out sensor
    _, upstream_end = _run_upstream(stack, by_callback_day)
    stack.wait_for_run("finance__daily", by_callback, ["success"], timeout=180)
    states = stack.task_states("finance__daily", by_callback)
    assert all(s == "success" for s in states.values()), states
    [resolution] = [r for r in _resolutions(deployment["registry_url"], by_callback) if r.sensor_task_id == SENSOR]
    assert (resolution.how, resolution.previous_state) == ("reconcile", "failed")
    latency = (resolution.resolved_at - upstream_end).total_seconds()
    assert -1 <= latency <= 30, latency
    print(f"\n[b] late upstream success -> timed-out sensor satisfied by the callback: {latency:.1f} s")

    # c) the callback cannot reach the API: the upstream still succeeds, the sweep recovers
    point_callback_at(stack, free_port())  # nothing listens there
    try:
        _run_upstream(stack, by_sweep_day)
    finally:
        point_callback_at(stack, stack.port)
    time.sleep(5)
    assert _ti(stack, "finance__daily", by_sweep, SENSOR)["state"] == "failed"
    assert not [r for r in _resolutions(deployment["registry_url"], by_sweep) if r.sensor_task_id == SENSOR]

    env = {**os.environ, "HANDOFF_REGISTRY_URL": deployment["registry_url"],
           "HANDOFF_AIRFLOW_API_URL": stack.base_url, "HANDOFF_AIRFLOW_API_USERNAME": stack.username,
           "HANDOFF_AIRFLOW_API_PASSWORD": stack.password}
    done = subprocess.run([*HANDOFF, "reconcile", "--since", "1h", "--format", "json"],
                          capture_output=True, text=True, env=env, timeout=120)
    assert done.returncode == 0, done.stderr
    actions = json.loads(done.stdout)
    assert {"dag_id": "finance__daily", "run_id": by_sweep, "sensor_task_id": SENSOR, "previous_state": "failed",
            "action": "satisfied", "upstream": "marketplace__daily.mrt_orders"} in actions
    assert not [a for a in actions if a["action"] == "satisfied" and a["run_id"] != by_sweep]
    stack.wait_for_run("finance__daily", by_sweep, ["success"], timeout=180)
    # idempotent: a second sweep satisfies nothing
    again = subprocess.run([*HANDOFF, "reconcile", "--since", "1h", "--format", "json"],
                           capture_output=True, text=True, env=env, timeout=120)
    assert again.returncode == 0, again.stderr
    assert not [a for a in json.loads(again.stdout) if a["action"] == "satisfied"]
