"""Any model name dbt accepts compiles and runs (docs/plan.md, naming rules): '-daily' and '+plus'
(which used to pass `handoff validate` and then fail `compile` with circular advice), next to
'_daily', which '-daily' normalises to. Real dbt parse/package, the plan readers, and dag.test."""

from __future__ import annotations

import json
import shutil

import duckdb
import pytest
from support.dbt_fixtures import FIXTURES
from support.examples import _DBT_LOCK, _environ


@pytest.fixture(scope="module")
def deployed(tmp_path_factory):
    from handoff.manifest import load_manifest
    from handoff.packaging import package_project
    from handoff.plan import compile_manifest, validate_plan
    from support.documents import plan_text

    tmp = tmp_path_factory.mktemp("odd_names")
    project = tmp / "projects" / "odd_names"
    shutil.copytree(FIXTURES / "odd_names", project, ignore=shutil.ignore_patterns("target", "logs"))
    warehouse = tmp / "warehouse.duckdb"  # not the schema's name: DuckDB would find catalog and schema ambiguous
    with _DBT_LOCK, _environ({"HANDOFF_DUCKDB_PATH": str(warehouse), "DBT_SEND_ANONYMOUS_USAGE_STATS": "false"}):
        package_project(project, profiles_dir=project)
    plan = compile_manifest(load_manifest(project / "target" / "manifest.json")).to_json()  # the file's form
    validate_plan(json.loads(plan_text(plan)), "odd_names")  # what every reader checks
    plans = tmp / "plans"
    plans.mkdir()
    (plans / "odd_names.plan.json").write_text(plan_text(plan))
    return tmp, plan, warehouse


def test_names_dbt_accepts_compile_to_safe_distinct_task_ids(deployed):
    _, plan, _ = deployed
    tasks = {t["unique_id"]: t for t in plan["pipelines"][0]["tasks"] if t["kind"] == "dbt_model"}
    ids = {uid: t["task_id"] for uid, t in tasks.items()}
    assert ids["model.odd_names._daily"] == "_daily"  # already a valid id: keeps it
    assert ids["model.odd_names.-daily"].startswith("_daily__")  # normalised, collides: hash suffix
    assert ids["model.odd_names.+plus"] == "_plus"
    assert tasks["model.odd_names.-daily"]["name"] == "-daily" and tasks["model.odd_names.+plus"]["name"] == "+plus"
    assert len(set(ids.values())) == len(ids)
    assert ids["model.odd_names.-daily"] in tasks["model.odd_names.+plus"]["upstream"]


def test_the_dag_runs_every_odd_name_to_success(deployed, airflow_home, monkeypatch):
    tmp, plan, warehouse = deployed
    monkeypatch.setenv("HANDOFF_PLANS_DIR", str(tmp / "plans"))
    monkeypatch.setenv("HANDOFF_DBT_PROJECTS_DIR", str(tmp / "projects"))
    monkeypatch.delenv("HANDOFF_DBT_PROFILES_DIR", raising=False)  # the project's own profiles.yml
    monkeypatch.setenv("HANDOFF_DUCKDB_PATH", str(warehouse))
    from handoff.airflow import dags_from_env

    run = dags_from_env()["odd_names__daily"].test()
    states = {ti.task_id: ti.state for ti in run.get_task_instances()}
    assert run.state == "success", states
    expected = {t["task_id"] for t in plan["pipelines"][0]["tasks"]}
    assert {k: v for k, v in states.items() if k in expected} == dict.fromkeys(expected, "success")
    with duckdb.connect(str(warehouse), read_only=True) as con:
        names = {r[0] for r in con.execute(
            "select table_name from information_schema.tables where table_schema = 'odd_names'").fetchall()}
    assert {"-daily", "+plus", "_daily", "reader"} <= names
