"""A task run from its slice of the deployed artefact does exactly what a full-manifest
`dbt build --select` of the same task does: the same nodes executed, with the same status and the
same compiled SQL — for every task of every example and fixture project (and corpus project,
when present: tests/corpus/projects/*).

Two warehouses with the same file name (so dbt's database name is the same) in two folders are
built task by task in the same order: A through dbt's own parsed Manifest (the reference), B
through the worker's path (``load_task_manifest`` + ``build_args``, what ``run_node`` composes).
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import duckdb
import pytest
from support.dbt_fixtures import FIXTURES
from support.examples import DOMAINS, REPO, _DBT_LOCK, _environ, copy_examples

CORPUS = REPO / "tests" / "corpus" / "projects"
# tables the fixture projects read as sources (created in both warehouses before building)
SOURCE_TABLES = {
    "shapes": ["create schema if not exists other", "create table other.orders as select 1 as id, 10 as amount",
               "create table other.customers as select 1 as id", "create schema if not exists raw",
               "create table raw.events as select 1 as id"],
}


@dataclass
class TaskRun:
    task_id: str
    selection: list[str]
    results: dict[str, tuple[str, str | None]] = field(default_factory=dict)  # uid -> (status, compiled SQL)
    exception: str | None = None


@dataclass
class ProjectRuns:
    name: str
    reference: list[TaskRun] = field(default_factory=list)
    sliced: list[TaskRun] = field(default_factory=list)
    slice_sizes: dict[str, int] = field(default_factory=dict)
    full_size: int = 0


def _topological(plan: dict[str, Any]) -> list[dict[str, Any]]:
    """Every dbt task of the plan, upstreams first (sensors of the same domain point at a task of
    another pipeline; other domains' sensors are satisfied by building those domains first)."""
    tasks = {t["task_id"]: t for p in plan["pipelines"] for t in p["tasks"] if t["kind"] != "sensor"}
    own = plan["domain"]["name"]
    sensor_target = {t["task_id"]: t["upstream_model"] for p in plan["pipelines"] for t in p["tasks"]
                     if t["kind"] == "sensor" and t["upstream_domain"] == own}
    by_name = {t["name"]: tid for tid, t in tasks.items()}
    order: list[dict[str, Any]] = []
    done: set[str] = set()

    def visit(task_id: str) -> None:
        if task_id in done:
            return
        done.add(task_id)
        for up in tasks[task_id]["upstream"]:
            if up in tasks:
                visit(up)
            elif up in sensor_target and sensor_target[up] in by_name:
                visit(by_name[sensor_target[up]])
        order.append(tasks[task_id])

    for task_id in sorted(tasks):
        visit(task_id)
    return order


def _invoke(manifest: Any, args: list[str]) -> TaskRun:
    from dbt.cli.main import dbtRunner
    from handoff.warehouse import release_connections

    try:
        outcome = dbtRunner(manifest=manifest).invoke(args)
    finally:
        release_connections()
    run = TaskRun("", [])
    for r in getattr(outcome.result, "results", None) or []:
        run.results[r.node.unique_id] = (str(getattr(r.status, "value", r.status)),
                                         getattr(r.node, "compiled_code", None))
    run.exception = None if outcome.exception is None else type(outcome.exception).__name__
    return run


def _projects(root: Path) -> list[tuple[str, Path, Path]]:
    """(name, project dir, profiles dir) of every project to compare, in build order."""
    integration = copy_examples(root / "examples")
    found = [(d, integration / d, integration) for d in DOMAINS]
    for name in ("shapes",):
        shutil.copytree(FIXTURES / name, root / name, ignore=shutil.ignore_patterns("target", "logs", ".user.yml"))
        found.append((name, root / name, root / name))
    if CORPUS.is_dir():
        for project in sorted(p for p in CORPUS.iterdir() if (p / "dbt_project.yml").is_file()):
            shutil.copytree(project, root / "corpus" / project.name,
                            ignore=shutil.ignore_patterns("target", "logs", "dbt_packages", ".user.yml"))
            found.append((project.name, root / "corpus" / project.name, root / "corpus" / project.name))
    return found


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[list[ProjectRuns]]:
    from dbt.cli.main import dbtRunner
    from handoff.airflow.dbt_runner import DbtProject, build_args, load_task_manifest
    from handoff.artifact import artifact_path, open_artifact
    from handoff.manifest import load_manifest
    from handoff.packaging import package_project
    from handoff.plan import compile_manifest

    root = tmp_path_factory.mktemp("equivalence")
    warehouses = {side: root / side / "warehouse.duckdb" for side in ("deploy", "reference", "sliced")}
    for path in warehouses.values():
        path.parent.mkdir()
    for name, statements in SOURCE_TABLES.items():
        for side in ("reference", "sliced"):
            with duckdb.connect(str(warehouses[side])) as con:
                for statement in statements:
                    con.execute(statement)
    settings = {"DBT_SEND_ANONYMOUS_USAGE_STATS": "false", "DO_NOT_TRACK": "1"}
    collected: list[ProjectRuns] = []
    with _DBT_LOCK:
        for name, project_dir, profiles_dir in _projects(root):
            if (project_dir / "packages.yml").is_file():
                with _environ({**settings, "HANDOFF_DUCKDB_PATH": str(warehouses["deploy"])}):
                    assert dbtRunner().invoke(["--quiet", "deps", "--project-dir", str(project_dir),
                                               "--profiles-dir", str(profiles_dir)]).success
            with _environ({**settings, "HANDOFF_DUCKDB_PATH": str(warehouses["deploy"])}):
                package_project(project_dir, profiles_dir=profiles_dir)
                parsed = dbtRunner().invoke(["--quiet", "parse", "--project-dir", str(project_dir), "--profiles-dir",
                                             str(profiles_dir), "--target-path", tempfile.mkdtemp(dir=root)])
            assert parsed.success, parsed.exception
            full = parsed.result  # dbt's own parse: the reference never touches the artefact
            plan = compile_manifest(load_manifest(project_dir / "target" / "manifest.json")).to_json()
            project = DbtProject(str(project_dir), str(profiles_dir), manifest_sha256=plan["dbt"]["manifest_sha256"])
            runs = ProjectRuns(name, full_size=len(full.nodes))
            with open_artifact(artifact_path(project_dir)) as artefact:
                for task in _topological(plan):
                    members = artefact.slice_ids([task["unique_id"]])
                    runs.slice_sizes[task["task_id"]] = len(members) if members is not None else -1
            for task in _topological(plan):
                selection = [task["unique_id"], *task["tests"]]
                for side, manifest_of in (("reference", lambda: full),
                                          ("sliced", lambda: load_task_manifest(project, selection))):
                    with _environ({**settings, "HANDOFF_DUCKDB_PATH": str(warehouses[side])}):
                        work = tempfile.mkdtemp(dir=root)
                        run = _invoke(manifest_of(), build_args(project, selection, work_dir=work))
                    run.task_id, run.selection = task["task_id"], selection
                    (runs.reference if side == "reference" else runs.sliced).append(run)
            collected.append(runs)
    yield collected


def test_every_project_and_task_was_compared(runs):
    names = [r.name for r in runs]
    assert names[:4] == [*DOMAINS, "shapes"]
    for project in runs:
        assert project.reference, project.name
        assert len(project.reference) == len(project.sliced)


def test_slices_hold_the_same_nodes_executed_and_compiled_sql(runs):
    for project in runs:
        for reference, sliced in zip(project.reference, project.sliced):
            where = f"{project.name}.{reference.task_id} (--select {' '.join(reference.selection)})"
            assert sliced.exception == reference.exception, where
            assert set(sliced.results) == set(reference.results), where
            for uid, (status, sql) in reference.results.items():
                assert sliced.results[uid][0] == status, f"{where}: {uid}"
                assert sliced.results[uid][1] == sql, f"{where}: compiled SQL of {uid} differs"


def test_example_tasks_all_succeed_and_run_their_node(runs):
    """Equivalence on failures would prove little: on the examples every task succeeds."""
    for project in runs[:len(DOMAINS)]:
        for run in project.sliced:
            assert run.exception is None, run.task_id
            assert run.results, run.task_id
            assert {status for status, _ in run.results.values()} <= {"success", "pass"}, (run.task_id, run.results)


def test_slices_are_smaller_than_the_project(runs):
    """A slice is the node's neighbourhood, never the project (no fixture reads dbt's `graph`)."""
    for project in runs:
        assert all(0 < size for size in project.slice_sizes.values()), project.slice_sizes
        leaf_sizes = sorted(project.slice_sizes.values())
        assert leaf_sizes[0] < project.full_size, project.name

