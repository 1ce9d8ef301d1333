"""A packaged project runs from wherever it is deployed: `handoff package` in a CI folder, the
project copied (links followed, `cp -rL`) to `$HANDOFF_DBT_PROJECTS_DIR`, the CI folder deleted,
then every task of the DAG — seeds with `column_types` included, which dbt-duckdb reads through
the node's ``root_path`` — runs on real dbt and Airflow (`dag.test()`)."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import duckdb
import pytest
from handoff.artifact import artifact_path, open_artifact, rebase_path
from support.examples import _DBT_LOCK, _environ, build_mesh

MARKETPLACE_TASKS = {"raw_items", "raw_orders", "stg_items", "stg_orders", "int_orders", "mrt_items", "mrt_orders"}


@pytest.mark.parametrize(("path", "packaged", "expected"), [
    ("/ci/marketplace", "/ci/marketplace", "/srv/projects/marketplace"),
    ("/ci/marketplace/dbt_packages/handoff", "/ci/marketplace", "/srv/projects/marketplace/dbt_packages/handoff"),
    (".", ".", "/srv/projects/marketplace"),
    ("dbt_packages/handoff", ".", "/srv/projects/marketplace/dbt_packages/handoff"),
    ("/elsewhere/pkg", "/ci/marketplace", "/elsewhere/pkg"),  # outside the packaging folder: kept
    ("/ci/marketplace2", "/ci/marketplace", "/ci/marketplace2"),  # a prefix is not a parent folder
    ("/abs/pkg", ".", "/abs/pkg"),
])
def test_rebase_path(path, packaged, expected):
    assert rebase_path(path, packaged, "/srv/projects/marketplace") == expected


def _package(project: Path, profiles: Path, env: dict[str, str], *, relative: bool) -> None:
    from handoff.packaging import package_project

    with _DBT_LOCK, _environ({"DBT_SEND_ANONYMOUS_USAGE_STATS": "false", "DO_NOT_TRACK": "1", **env}):
        if not relative:
            package_project(project, profiles_dir=profiles)
            return
        cwd = os.getcwd()
        os.chdir(project)
        try:
            package_project(".", profiles_dir=profiles)  # as `handoff package .` in the project folder
        finally:
            os.chdir(cwd)


def _copy_dereferenced(project: Path, dest: Path) -> None:
    """`cp -rL` of a project: the packages `dbt deps` linked (local: packages) become real folders.
    The example's handoff package is the mesh copy's root, which holds the project itself: its
    integration_tests/ is left out (`cp -rL` would loop)."""
    shutil.copytree(project, dest, ignore=shutil.ignore_patterns("dbt_packages"))
    for package in (project / "dbt_packages").iterdir():
        shutil.copytree(package.resolve(), dest / "dbt_packages" / package.name,
                        ignore=shutil.ignore_patterns("integration_tests", "dbt_packages", "target", "logs"))


def _deploy(tmp: Path, *, relative: bool) -> tuple[Path, Path, Path, dict]:
    """Package marketplace in tmp/ci, compile, copy it to tmp/projects, delete tmp/ci.
    Returns (projects folder, profiles folder, plans folder, plan)."""
    from handoff.manifest import load_manifest
    from handoff.plan import compile_manifest
    from support.documents import plan_text

    mesh = build_mesh(tmp / "ci", build=False, domains=("marketplace",))
    project = mesh.project_dirs["marketplace"]
    _package(project, mesh.profiles_dir, mesh.env, relative=relative)
    plan = compile_manifest(load_manifest(project / "target" / "manifest.json")).to_json()  # the file's form
    plans = tmp / "plans"
    plans.mkdir()
    (plans / "marketplace.plan.json").write_text(plan_text(plan))
    projects, profiles = tmp / "projects", tmp / "profiles"
    _copy_dereferenced(project, projects / "marketplace")
    profiles.mkdir()
    shutil.copy(mesh.profiles_dir / "profiles.yml", profiles / "profiles.yml")
    shutil.rmtree(tmp / "ci")
    return projects, profiles, plans, plan


def _tables(path: Path) -> set[str]:
    with duckdb.connect(str(path), read_only=True) as con:
        rows = con.execute("select table_name from information_schema.tables where table_schema = 'marketplace'")
        return {r[0] for r in rows.fetchall()}


def test_a_relocated_deploy_runs_every_task_with_dag_test(tmp_path, airflow_home, monkeypatch):
    projects, profiles, plans, plan = _deploy(tmp_path, relative=False)
    assert not (tmp_path / "ci").exists()
    with open_artifact(artifact_path(projects / "marketplace")) as artefact:
        assert artefact.info.root_path == str(tmp_path / "ci" / "mesh" / "integration_tests" / "marketplace")
    warehouse = tmp_path / "worker" / "mesh.duckdb"  # DuckDB names the database after the file: as packaged
    warehouse.parent.mkdir()
    monkeypatch.setenv("HANDOFF_PLANS_DIR", str(plans))
    monkeypatch.setenv("HANDOFF_DBT_PROJECTS_DIR", str(projects))
    monkeypatch.setenv("HANDOFF_DBT_PROFILES_DIR", str(profiles))
    monkeypatch.setenv("HANDOFF_DUCKDB_PATH", str(warehouse))
    from handoff.airflow import dags_from_env

    run = dags_from_env()["marketplace__daily"].test()
    states = {ti.task_id: ti.state for ti in run.get_task_instances()}
    assert run.state == "success", states
    assert {t: states[t] for t in MARKETPLACE_TASKS} == dict.fromkeys(MARKETPLACE_TASKS, "success")
    assert {"raw_items", "raw_orders", "mrt_orders"} <= _tables(warehouse)
    with duckdb.connect(str(warehouse), read_only=True) as con:  # column_types applied: a date, not text
        kind = con.execute("select data_type from information_schema.columns where table_schema = 'marketplace'"
                           " and table_name = 'raw_orders' and column_name = 'ordered_at'").fetchone()
    assert kind == ("DATE",)


def test_a_project_packaged_as_dot_runs_from_its_deployed_folder(tmp_path, monkeypatch):
    """`handoff package .` stores root_path '.': the worker's current directory must not matter."""
    from handoff.airflow.dbt_runner import DbtProject, run_node

    projects, profiles, _, plan = _deploy(tmp_path, relative=True)
    tasks = {t["task_id"]: t for t in plan["pipelines"][0]["tasks"]}
    project = DbtProject(str(projects / "marketplace"), str(profiles), manifest_sha256=plan["dbt"]["manifest_sha256"])
    warehouse = tmp_path / "worker" / "mesh.duckdb"  # DuckDB names the database after the file: as packaged
    warehouse.parent.mkdir()
    monkeypatch.chdir(tmp_path)  # a worker runs from anywhere but the project folder
    ran = []
    for task_id in ("raw_items", "raw_orders", "stg_orders"):
        with _DBT_LOCK, _environ({"HANDOFF_DUCKDB_PATH": str(warehouse)}):
            ran += [r.unique_id for r in run_node(project, unique_id=tasks[task_id]["unique_id"],
                                                  tests=tasks[task_id]["tests"])]
    assert {"seed.marketplace.raw_items", "seed.marketplace.raw_orders", "model.marketplace.stg_orders"} <= set(ran)
    assert {"raw_items", "raw_orders", "stg_orders"} <= _tables(warehouse)
