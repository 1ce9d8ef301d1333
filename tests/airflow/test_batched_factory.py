"""The DAG of a batched pipeline (docs/execution.md): the batch task is upstream of every model task
it runs; a model in another pool, the sensors and per_task pipelines are left alone."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import pytest
from handoff.batching import BATCH_TASK_ID, batched_models
from handoff.manifest import load_manifest
from handoff.plan import compile_manifest, validate_plan
from handoff.plan_model import PlanPipeline
from support.documents import editable, plan_text


@pytest.fixture(scope="module")
def shapes(fixture_manifest) -> tuple[dict, Path]:
    path = fixture_manifest("shapes")
    return compile_manifest(load_manifest(path)).to_json(), path.parents[2]  # the document, to edit


def _build(plan: dict, projects: Path, folder: Path) -> dict:
    from handoff.airflow import load_dags

    (folder / f"{plan['domain']['name']}.plan.json").write_text(plan_text(plan))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        dags = load_dags(folder, dbt_projects_dir=projects)
    return {"dags": dags, "warnings": [str(w.message) for w in caught if "handoff" in str(w.message)]}


def test_compile_writes_the_execution_mode_and_old_plans_stay_valid(shapes):
    plan, _ = shapes
    assert {p["execution"] for p in plan["pipelines"]} == {"batched"}  # the default (decisions.md D29)
    old = editable(plan)
    for pipeline in old["pipelines"]:
        del pipeline["execution"]
    validate_plan(old, "old.plan.json")


def test_the_batch_is_upstream_of_every_batched_model_and_nothing_else(shapes, tmp_path):
    plan, projects = shapes
    plan = editable(plan)
    pipeline = plan["pipelines"][0]
    pipeline["execution"] = "batched"
    for other in plan["pipelines"][1:]:
        other["execution"] = "per_task"
    dbt_tasks = [t for t in pipeline["tasks"] if t["kind"] != "sensor"]
    dbt_tasks[-1]["pool"] = "heavy_pool"  # a model of its own pool keeps its own task
    built = _build(plan, projects, tmp_path)
    assert built["warnings"] == []
    dag = built["dags"][pipeline["dag_id"]]
    batch = dag.task_dict[BATCH_TASK_ID]
    pool, models = batched_models(PlanPipeline.from_json(pipeline))
    expected = {m.task_id for m in models}
    assert expected and dbt_tasks[-1]["task_id"] not in expected and batch.pool == pool
    assert batch.downstream_task_ids == expected and not batch.upstream_task_ids
    assert batch.retries == 0 and type(batch).__name__ == "DbtBatchOperator"
    for task_id in expected:
        assert BATCH_TASK_ID in dag.task_dict[task_id].upstream_task_ids
        assert type(dag.task_dict[task_id]).__name__ == "DbtNodeOperator"  # the single-task path stays
    assert BATCH_TASK_ID not in dag.task_dict[dbt_tasks[-1]["task_id"]].upstream_task_ids
    others = [p for p in plan["pipelines"][1:]]
    assert all(BATCH_TASK_ID not in built["dags"][p["dag_id"]].task_dict for p in others)


def test_a_model_named_like_the_batch_costs_only_its_plan(shapes, tmp_path):
    plan, projects = shapes
    plan = editable(plan)
    plan["pipelines"][0]["execution"] = "batched"
    victim = next(t for t in plan["pipelines"][0]["tasks"] if t["kind"] != "sensor" and not t["upstream"])
    old_id = victim["task_id"]
    for task in plan["pipelines"][0]["tasks"]:
        task["upstream"] = [BATCH_TASK_ID if u == old_id else u for u in task["upstream"]]
    victim["task_id"] = BATCH_TASK_ID
    with pytest.raises(Exception, match="reserves"):
        from handoff.airflow.factory import build_dag
        from handoff.airflow.dbt_runner import DbtProject

        from handoff.plan_model import Plan

        typed = Plan.from_json(plan)
        build_dag(typed, typed.pipelines[0], project=DbtProject(str(projects), str(projects)), upstreams={})


def test_the_write_chunk_setting_is_checked(monkeypatch):
    from handoff.airflow.batch import WRITE_CHUNK, WRITE_CHUNK_ENV, BatchFailed, write_chunk

    monkeypatch.delenv(WRITE_CHUNK_ENV, raising=False)
    assert write_chunk() == WRITE_CHUNK == 500
    monkeypatch.setenv(WRITE_CHUNK_ENV, "5")
    assert write_chunk() == 5
    for bad in ("0", "1001", "x", "-3", "2.5", "\u00b2"):
        monkeypatch.setenv(WRITE_CHUNK_ENV, bad)
        with pytest.raises(BatchFailed, match=f"{WRITE_CHUNK_ENV}=.*1 to 1000"):
            write_chunk()
