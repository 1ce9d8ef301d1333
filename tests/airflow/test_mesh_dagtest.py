"""A dbt Mesh domain through the generated DAGs in-process (dag.test): support reads logistics (dbt
project shipping) with cross-project refs resolved by the real dbt-loom plugin, and marketplace
through a source. Its sensors wait on the exact upstream tasks (the latest version for an unpinned
ref, version 1 for the pinned one) and the runs go upstream first, then downstream, to success."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest
from handoff.batching import BATCH_TASK_ID
from support.examples import build_mesh, deploy_plans

LOOM = ("marketplace", "shipping", "support")
DAY = datetime(2026, 1, 19, tzinfo=timezone.utc)  # its own logical dates (the session shares one Airflow database)


@pytest.fixture(scope="module")
def deployed(tmp_path_factory, airflow_home):
    tmp = tmp_path_factory.mktemp("mesh-dagtest")
    mesh = build_mesh(tmp, build=False, domains=LOOM)
    plans, registry = deploy_plans(mesh, tmp, LOOM)  # support compiled through the registry's binding
    return mesh, plans, registry


def test_ref_sensors_wait_on_the_exact_upstream_tasks_and_the_mesh_runs(deployed, monkeypatch):
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
    support = dags["support__daily"]
    targets = {t.task_id: (t.external_dag_id, t.external_task_id) for t in support.tasks
               if t.task_id.startswith("wait__")}
    assert targets == {
        "wait__logistics__shipments": ("logistics__daily", "shipments_v2"),  # unpinned: the latest version
        "wait__logistics__shipments_v1": ("logistics__daily", "shipments_v1"),  # pinned
        "wait__logistics__carrier_performance": ("logistics__daily", "carrier_performance"),
        "wait__marketplace__mrt_orders": ("marketplace__daily", "mrt_orders"),  # the source, same machinery
    }
    assert support.get_task("wait__logistics__carrier_performance").timeout == 3600  # handoff_refs.upstreams
    assert sorted(support.get_task("mrt_carrier_complaints").upstream_task_ids) == [
        BATCH_TASK_ID,  # batched by default (D29); without the REST API (dag.test) each model runs as a task
        "stg_tickets", "wait__logistics__carrier_performance", "wait__logistics__shipments_v1"]

    for dag_id, hour in (("logistics__daily", 2), ("marketplace__daily", 3)):
        run = dags[dag_id].test(logical_date=DAY.replace(hour=hour))
        assert run.state == "success", {ti.task_id: ti.state for ti in run.get_task_instances()}
    downstream = support.test(logical_date=DAY.replace(hour=4))
    states = {ti.task_id: ti.state for ti in downstream.get_task_instances()}
    assert downstream.state == "success", states
    assert set(states.values()) == {"success"}, states

    with Registry(registry_url, must_exist=True) as registry:
        resolutions = {r.sensor_task_id: r.how for r in registry.resolutions(dag_id="support__daily",
                                                                             run_id=downstream.run_id)}
        assert resolutions == dict.fromkeys(targets, "poke")
        [completion] = registry.completions(dag_id="logistics__daily", task_id="shipments_v2")
        assert completion.logical_date == DAY.replace(hour=2)
