"""The worker path: a task runs from the deployed artefact, never parses, leaves nothing behind,
and a missing, stale, foreign or mismatched artefact fails it at once with one line."""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import subprocess
import sys
import tempfile
from datetime import datetime, timezone
from pathlib import Path
from types import SimpleNamespace

import pytest
from handoff.artifact import Entry, artifact_path, open_artifact, slice_members
from handoff.errors import HandoffError
from support.examples import _DBT_LOCK, _environ, build_mesh

SECRET = "s3cr3t-Tok3n-4f9a"  # a value only the profile's environment holds


# --------------------------------------------------------------------------------------
# slice_members (pure)
# --------------------------------------------------------------------------------------

def _e(uid: str, parents=(), tests=(), ephemeral=False, graph=False) -> Entry:
    return Entry(uid, "node", tuple(parents), tuple(tests), ephemeral=ephemeral, uses_graph=graph)


def test_slice_holds_the_node_its_tests_and_their_parents_only():
    entries = {e.unique_id: e for e in [
        _e("m.a"), _e("m.b", ["m.a"]), _e("m.c", ["m.b"], tests=["t.c", "t.rel"]),
        _e("t.c", ["m.c"]), _e("t.rel", ["m.c", "m.z"]), _e("m.z", ["m.a"]), _e("m.d", ["m.c"])]}
    assert slice_members(["m.c"], entries) == {"m.c", "t.c", "t.rel", "m.b", "m.z"}


def test_slice_follows_ephemeral_parents_to_what_their_sql_reads():
    entries = {e.unique_id: e for e in [
        _e("m.a"), _e("m.e1", ["m.a"], ephemeral=True), _e("m.e2", ["m.e1", "s.src"], ephemeral=True),
        _e("m.x", ["m.e2"]), Entry("s.src", "source", (), ())]}
    assert slice_members(["m.x"], entries) == {"m.x", "m.e2", "m.e1", "m.a", "s.src"}


def test_a_node_reading_dbts_graph_needs_the_whole_manifest():
    entries = {e.unique_id: e for e in [_e("m.a"), _e("m.g", ["m.a"], graph=True), _e("m.x", ["m.a"])]}
    assert slice_members(["m.g"], entries) is None
    assert slice_members(["m.x"], entries) == {"m.x", "m.a"}


# --------------------------------------------------------------------------------------
# The example marketplace project, packaged as a deploy does
# --------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def deployed(tmp_path_factory):
    """marketplace built into a warehouse whose path holds SECRET, packaged and compiled."""
    from handoff.manifest import load_manifest
    from handoff.packaging import package_project
    from handoff.plan import compile_manifest

    tmp = tmp_path_factory.mktemp("worker")
    mesh = build_mesh(tmp, build=False, domains=("marketplace",))
    deploy_db = tmp / SECRET / "warehouse.duckdb"
    deploy_db.parent.mkdir()
    project = mesh.project_dirs["marketplace"]
    with _DBT_LOCK, _environ({"HANDOFF_DUCKDB_PATH": str(deploy_db)}):
        path, info = package_project(project, profiles_dir=mesh.profiles_dir)
    plan = compile_manifest(load_manifest(project / "target" / "manifest.json")).to_json()  # the file's form
    tasks = {t["task_id"]: t for t in plan["pipelines"][0]["tasks"]}
    return mesh, project, plan, tasks, path, info


def _project(deployed, **changes):
    from handoff.airflow.dbt_runner import DbtProject

    mesh, project, plan, *_ = deployed
    fields = {"project_dir": str(project), "profiles_dir": str(mesh.profiles_dir),
              "manifest_sha256": plan["dbt"]["manifest_sha256"], **changes}
    return DbtProject(**fields)


def _run(deployed, task_id: str, warehouse: Path, project=None):
    from handoff.airflow.dbt_runner import run_node

    task = deployed[3][task_id]
    with _DBT_LOCK, _environ({"HANDOFF_DUCKDB_PATH": str(warehouse)}):
        return run_node(project or _project(deployed), unique_id=task["unique_id"], tests=task["tests"])


def _files(folder: Path) -> set[str]:
    return {str(p.relative_to(folder)) for p in folder.rglob("*")}


def test_package_records_what_the_worker_checks(deployed):
    mesh, project, plan, tasks, path, info = deployed
    assert path == artifact_path(project) and path.is_file()
    assert info.manifest_sha256 == plan["dbt"]["manifest_sha256"]
    assert info.project_name == "marketplace"
    assert (info.target.adapter_type, info.target.database, info.target.schema) == ("duckdb", "warehouse", "marketplace")
    with open_artifact(path) as artefact:
        manifest = artefact.load_manifest()
    assert {n.split(".")[-1] for n in manifest.nodes if n.startswith("model.")} == {
        "stg_items", "stg_orders", "int_orders", "mrt_items", "mrt_orders"}
    assert len(manifest.macros) > 100


def test_the_artefact_holds_no_value_from_the_profiles_environment(deployed):
    assert SECRET.encode() not in deployed[4].read_bytes()


def test_tasks_run_with_another_connection_and_leave_nothing_behind(deployed, tmp_path, monkeypatch):
    """Another DuckDB file (same name: same dbt database) — a different profile rendering than the
    deploy's — runs without parsing; nothing is written to the project or left in TMPDIR."""
    private_tmp = tmp_path / "tmp"
    private_tmp.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(private_tmp))
    warehouse = tmp_path / "worker" / "warehouse.duckdb"
    warehouse.parent.mkdir()
    project = deployed[1]
    before = _files(project)
    ran = []
    for task_id in ("raw_items", "raw_orders", "stg_items", "stg_orders", "int_orders", "mrt_items", "mrt_orders"):
        ran += [r.unique_id for r in _run(deployed, task_id, warehouse)]
    assert "model.marketplace.mrt_orders" in ran
    assert sum(uid.startswith("test.marketplace.") for uid in ran) == 6
    assert _files(project) == before  # no target/, logs/, partial_parse.msgpack, .user.yml written
    assert list(private_tmp.iterdir()) == []


def test_missing_artefact_fails_at_once_naming_the_deploy_step(deployed, tmp_path):
    copy = tmp_path / "marketplace"
    shutil.copytree(deployed[1], copy, symlinks=True, ignore=shutil.ignore_patterns("handoff-artifact.sqlite"))
    with pytest.raises(HandoffError) as raised:
        _run(deployed, "stg_items", tmp_path / "warehouse.duckdb", _project(deployed, project_dir=str(copy)))
    line = raised.value.one_line()
    assert "no dbt artefact" in line and "handoff package" in line and "\n" not in line


def test_stale_artefact_is_refused(deployed, tmp_path):
    with pytest.raises(HandoffError, match="stale: built from manifest .* the plan was compiled from"):
        _run(deployed, "stg_items", tmp_path / "warehouse.duckdb", _project(deployed, manifest_sha256="0" * 64))
    copy = tmp_path / "marketplace"
    shutil.copytree(deployed[1], copy, symlinks=True)
    with (copy / "dbt_project.yml").open("a") as handle:
        handle.write("\n# edited after packaging\n")
    with pytest.raises(HandoffError, match=r"dbt_project.yml changed after `handoff package`"):
        _run(deployed, "stg_items", tmp_path / "warehouse.duckdb", _project(deployed, project_dir=str(copy)))


@pytest.mark.parametrize("damage", ["garbage", "foreign_class", "truncated_blob"])
def test_damaged_artefact_is_one_line_never_a_traceback(deployed, tmp_path, damage):
    copy = tmp_path / "marketplace"
    shutil.copytree(deployed[1], copy, symlinks=True)
    path = artifact_path(copy)
    if damage == "garbage":
        path.write_bytes(b"not sqlite at all" * 100)
    else:
        with sqlite3.connect(path) as db:
            if damage == "foreign_class":
                db.execute("UPDATE nodes SET class = 'os.system' WHERE unique_id = 'model.marketplace.stg_items'")
            else:
                db.execute("UPDATE nodes SET data = substr(data, 1, 20) WHERE unique_id = 'model.marketplace.stg_items'")
    with pytest.raises(HandoffError) as raised:
        _run(deployed, "stg_items", tmp_path / "warehouse.duckdb", _project(deployed, project_dir=str(copy)))
    line = raised.value.one_line()
    assert str(path) in line and "handoff package" in line and "\n" not in line


def test_a_worker_profile_with_another_schema_is_refused(deployed, tmp_path):
    profiles = tmp_path / "profiles"
    profiles.mkdir()
    text = (deployed[0].profiles_dir / "profiles.yml").read_text()
    (profiles / "profiles.yml").write_text(text.replace("schema: marketplace", "schema: elsewhere"))
    with pytest.raises(HandoffError) as raised:
        _run(deployed, "stg_items", tmp_path / "warehouse.duckdb", _project(deployed, profiles_dir=str(profiles)))
    line = raised.value.one_line()
    assert "schema 'elsewhere'" in line and "schema 'marketplace'" in line and SECRET not in line


def test_the_operator_turns_a_missing_artefact_into_one_line(deployed, tmp_path):
    from handoff.airflow.operators import DbtNodeOperator, HandoffTaskFailed

    copy = tmp_path / "marketplace"
    shutil.copytree(deployed[1], copy, symlinks=True, ignore=shutil.ignore_patterns("handoff-artifact.sqlite"))
    task = DbtNodeOperator.for_node(task_id="stg_items", project=_project(deployed, project_dir=str(copy)),
                                    unique_id="model.marketplace.stg_items", tests=[],
                                    schedule="0 3 * * *")
    run = SimpleNamespace(logical_date=datetime(2024, 3, 10, 3, tzinfo=timezone.utc), run_after=None,
                          run_id="manual__x", conf={})
    with pytest.raises(HandoffTaskFailed) as raised:
        task.execute({"dag_run": run})
    assert "no dbt artefact" in str(raised.value) and "handoff package" in str(raised.value)


def test_package_cli_refuses_a_folder_without_a_project(tmp_path):
    done = subprocess.run([sys.executable, "-m", "handoff.cli", "package", str(tmp_path)], capture_output=True,
                          text=True, env={**os.environ, "HANDOFF_DUCKDB_PATH": str(tmp_path / "x.duckdb")})
    assert done.returncode == 2
    assert done.stderr.strip() == f"handoff: error: {tmp_path}: no dbt_project.yml — pass the folder of the domain's dbt project"


def test_sensor_tasks_never_import_dbt(deployed, tmp_path):
    """A worker parsing the DAG file for a sensor task imports no dbt module."""
    from support.examples import deploy_plans

    mesh = build_mesh(tmp_path, build=False, domains=("marketplace", "finance"))
    plans, _ = deploy_plans(mesh, tmp_path, ("marketplace", "finance"), publish=False)
    plan = json.loads((plans / "finance.plan.json").read_text())
    sensor = next(t for p in plan["pipelines"] for t in p["tasks"] if t["kind"] == "sensor")
    code = (
        "import sys\nfrom handoff.airflow import dags_from_env\n"
        "dags = dags_from_env()\n"
        f"task = dags['finance__daily'].task_dict[{sensor['task_id']!r}]\n"
        "print(type(task).__name__, sorted(m for m in sys.modules if m == 'dbt' or m.startswith('dbt.')))\n")
    env = {**os.environ, "HANDOFF_PLANS_DIR": str(plans), "HANDOFF_DBT_PROJECTS_DIR": str(mesh.root),
           "_AIRFLOW_PARSING_CONTEXT_DAG_ID": "finance__daily",
           "_AIRFLOW_PARSING_CONTEXT_TASK_ID": sensor["task_id"]}
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip().splitlines()[-1] == "CrossDomainSensor []"
