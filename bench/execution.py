"""Execution: the example mesh run task per model by handoff's DAGs vs plain `dbt build`.

``python -m bench.execution prepare|dbt|airflow '<json>'`` are the worker steps (each a fresh
process); ``bench_execution`` runs them and adds the rows. The projects are the example domains
of integration_tests/ (copied with the package, as tests/support/examples.py does) when they are
all there, otherwise a generated 3x20 mesh.

What is compared, on one DuckDB file each, domains in dependency order:
- baseline: one in-process `dbt build` per project (a fresh dbtRunner each, dbt imported before
  the clock starts, partial parse warm) — the cheapest way dbt itself runs the same work;
  also `dbt build` as a CLI subprocess per project, which is what a cron job would pay;
- handoff: every DAG's `dag.test()` on aligned logical dates (every task, sensors included,
  dbt in-process, the project parsed once per process — docs/decisions.md D5). Airflow and dbt
  are imported before the clock starts; `airflow db migrate` is done beforehand.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from .mesh import MeshSpec, get_mesh
from .steps import run_step, step_main
from .suite import MAIN_PY, REPO, RUN, TARGETS, Report, Row, base_env, met, secs

EXAMPLE_DOMAINS = ("marketplace", "finance", "marketing")
# marketing's events pipeline holds a dbt microbatch model: a plain `dbt build` would build every day
# from its `begin` to now; bound it to the example data's days (ignored by other models).
EVENT_TIME = ("--event-time-start", "2024-03-01", "--event-time-end", "2024-03-13")
WORK = RUN / "exec"
REFERENCE = datetime(2026, 1, 5, 6, 0, tzinfo=timezone.utc)  # every DAG runs its latest tick <= this


def _examples_ready() -> bool:
    return all((REPO / "integration_tests" / d / "dbt_project.yml").is_file() for d in EXAMPLE_DOMAINS)


def _dbt(args: list[str], project: Path, profiles: Path) -> Any:
    from dbt.cli.main import dbtRunner

    result = dbtRunner().invoke(["--quiet", *args, "--project-dir", str(project), "--profiles-dir", str(profiles)])
    try:
        from handoff.warehouse import release_connections

        release_connections()
    except ImportError:
        pass
    if not result.success:
        raise RuntimeError(f"dbt {' '.join(args)} failed in {project}: {result.exception}")
    return result


# --------------------------------------------------------------------------------------
# Worker steps
# --------------------------------------------------------------------------------------

def step_prepare(args: dict[str, Any]) -> dict[str, Any]:
    """Copy the projects, dbt deps + parse, compile the plans, write the registry snapshot."""
    shutil.rmtree(WORK, ignore_errors=True)
    WORK.mkdir(parents=True)
    if args["source"] == "examples":
        sys.path.insert(0, str(REPO / "tests"))
        from support.examples import (
            copy_examples,  # the tests' own way of copying the examples
        )

        projects = copy_examples(WORK / "src")
        domains = list(EXAMPLE_DOMAINS)
        profiles = projects
    else:
        mesh = get_mesh(MeshSpec(3, 20))
        projects = WORK / "src" / "projects"
        shutil.copytree(mesh.projects_dir, projects, ignore=shutil.ignore_patterns("target", "logs"))
        shutil.copy(mesh.profiles_dir / "profiles.yml", WORK / "src" / "profiles.yml")
        domains = mesh.domains()
        profiles = WORK / "src"
    # the deploy's warehouse has the workers' file name: dbt's database name (its stem) is the same
    (WORK / "deploy").mkdir()
    os.environ["HANDOFF_DUCKDB_PATH"] = str(WORK / "deploy" / "warehouse.duckdb")
    from handoff.manifest import load_manifest
    from handoff.plan import compile_manifest, dumps

    plans = WORK / "plans"
    plans.mkdir()
    n_nodes = 0
    from handoff.packaging import package_project

    for domain in domains:
        if (projects / domain / "packages.yml").is_file():
            _dbt(["deps"], projects / domain, profiles)
        package_project(projects / domain, profiles_dir=profiles)  # the deploy step: parse + artefact
        plan = compile_manifest(load_manifest(projects / domain / "target" / "manifest.json"))
        (plans / f"{plan.domain.name}.plan.json").write_text(dumps(plan), "utf-8")
    from handoff.plan_model import Plan
    from handoff.registry.mesh import Mesh, domain_from_plan
    from handoff.registry.snapshot import build_snapshot, write_snapshot

    loaded = [json.loads(p.read_text()) for p in sorted(plans.glob("*.plan.json"))]
    # what `handoff snapshot` writes (the factory ignores a snapshot that does not validate)
    mesh = Mesh({p["domain"]["name"]: domain_from_plan(Plan.from_json(p)) for p in loaded})
    write_snapshot(build_snapshot(mesh), plans)
    tasks = [t for p in loaded for pl in p["pipelines"] for t in pl["tasks"]]
    n_nodes = sum(1 for t in tasks if t["kind"] != "sensor")
    return {"projects": str(projects), "profiles": str(profiles), "domains": domains, "plans": str(plans),
            "dbt_nodes": n_nodes, "tasks": len(tasks), "sensors": len(tasks) - n_nodes,
            "tests": sum(len(t.get("tests", [])) for t in tasks), "source": args["source"]}


def step_dbt(args: dict[str, Any]) -> dict[str, Any]:
    """One `dbt build` per project, in order, on a fresh warehouse (in-process, or CLI)."""
    warehouse = WORK / f"dbt-{args['mode']}.duckdb"
    warehouse.unlink(missing_ok=True)
    os.environ["HANDOFF_DUCKDB_PATH"] = str(warehouse)
    projects, profiles = Path(args["projects"]), Path(args["profiles"])
    if args["mode"] == "inprocess":
        import dbt.cli.main  # noqa: F401 - imported before the clock, like Airflow is for handoff

        started = time.perf_counter()
        for domain in args["domains"]:
            _dbt(["build", *EVENT_TIME], projects / domain, profiles)
        return {"wall_s": time.perf_counter() - started}
    dbt_cli = Path(sys.executable).with_name("dbt")
    started = time.perf_counter()
    for domain in args["domains"]:
        subprocess.run([str(dbt_cli), "--quiet", "build", *EVENT_TIME, "--project-dir", str(projects / domain),
                        "--profiles-dir", str(profiles)], check=True, env=os.environ.copy())
    return {"wall_s": time.perf_counter() - started}


def _run_order(dags: dict[str, Any]) -> list[str]:
    """DAGs ordered so that every sensor's upstream DAG runs first."""
    from handoff.airflow.operators import CrossDomainSensor

    needs = {dag_id: {t.external_dag_id for t in dag.tasks if isinstance(t, CrossDomainSensor)} - {dag_id}
             for dag_id, dag in dags.items()}
    order: list[str] = []
    while len(order) < len(dags):
        ready = sorted(d for d in dags if d not in order and needs[d] <= set(order))
        if not ready:
            raise RuntimeError(f"cyclic DAG dependencies: {needs}")
        order.extend(ready)
    return order


def step_airflow(args: dict[str, Any]) -> dict[str, Any]:
    """Every DAG's dag.test() on its latest tick <= REFERENCE, in dependency order."""
    import logging

    from croniter import croniter

    warehouse = WORK / "airflow" / "warehouse.duckdb"  # same file name as at deploy (D13)
    shutil.rmtree(warehouse.parent, ignore_errors=True)
    warehouse.parent.mkdir()
    os.environ["HANDOFF_DUCKDB_PATH"] = str(warehouse)
    import dbt.cli.main  # noqa: F401
    from handoff.airflow import load_dags

    started = time.perf_counter()
    dags = load_dags(args["plans"], dbt_projects_dir=args["projects"], profiles_dir=args["profiles"])
    load_s = time.perf_counter() - started
    logging.disable(logging.WARNING)
    # dag.test()'s first call in a process sets up its in-process API and syncs DAGs: a harness
    # cost a long-running scheduler never pays per run. Paid here, outside the clock, on an
    # empty DAG; the dbt projects are NOT warmed (each DAG's first task parses its project, as
    # each `dbt build` of the baseline does).
    import importlib.util

    spec = importlib.util.spec_from_file_location("bench_warmup", args["warmup_file"])
    module = importlib.util.module_from_spec(spec)  # type: ignore[arg-type]
    spec.loader.exec_module(module)  # type: ignore[union-attr]
    warmup = module.warmup
    t0 = time.perf_counter()
    warmup.test(logical_date=REFERENCE + timedelta(days=args.get("day", 0)))
    warmup_s = time.perf_counter() - t0
    runs = []
    started = time.perf_counter()
    for dag_id in _run_order(dags):
        dag = dags[dag_id]
        reference = REFERENCE + timedelta(days=args.get("day", 0))
        tick = croniter(dag.timetable.expression, reference).get_prev(datetime)
        if croniter.match(dag.timetable.expression, reference):
            tick = reference
        t0 = time.perf_counter()
        run = dag.test(logical_date=tick)
        states = {ti.task_id: str(ti.state) for ti in run.get_task_instances()}
        runs.append({"dag_id": dag_id, "logical_date": tick.isoformat(), "state": str(run.state),
                     "wall_s": time.perf_counter() - t0, "tasks": len(states),
                     "not_success": {k: v for k, v in states.items() if v != "success"}})
    wall = time.perf_counter() - started
    logging.disable(logging.NOTSET)
    return {"wall_s": wall, "load_s": load_s, "warmup_s": warmup_s, "runs": runs}


WARMUP_DAG = '''"""An empty DAG: the first dag.test() of a process warms Airflow's test harness on it."""
from airflow.providers.standard.operators.empty import EmptyOperator
from airflow.sdk import DAG

with DAG("bench_warmup", schedule=None) as warmup:
    EmptyOperator(task_id="noop")
'''

STEPS = {"prepare": step_prepare, "dbt": step_dbt, "airflow": step_airflow}


# --------------------------------------------------------------------------------------
# The rows
# --------------------------------------------------------------------------------------

def _step(name: str, args: dict[str, Any], env: dict[str, str]) -> dict[str, Any]:
    return run_step(MAIN_PY, REPO, "execution", name, args, env)


def bench_execution(report: Report, quick: bool = False, repeats: int = 3) -> None:
    source = "examples" if _examples_ready() and not quick else "generated"
    home = WORK.parent / "exec-airflow"
    shutil.rmtree(home, ignore_errors=True)
    (home / "dags").mkdir(parents=True)
    env = base_env(home / "dags")
    env.update({"AIRFLOW_HOME": str(home), "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{home / 'airflow.db'}",
                "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "False"})
    prepared = _step("prepare", {"source": source}, env)
    env.update({"HANDOFF_PLANS_DIR": prepared["plans"], "HANDOFF_DBT_PROJECTS_DIR": prepared["projects"],
                "HANDOFF_DBT_PROFILES_DIR": prepared["profiles"]})
    official = REPO / "integration_tests" / "airflow" / "dags" / "handoff_dags.py"
    if official.is_file():
        shutil.copy(official, home / "dags" / "handoff_dags.py")
    migrate = subprocess.run([str(MAIN_PY.with_name("airflow")), "db", "migrate"], env=env, capture_output=True,
                             text=True, check=False)
    if migrate.returncode != 0:
        raise RuntimeError(f"airflow db migrate failed:\n{migrate.stdout[-2000:]}\n{migrate.stderr[-2000:]}")
    warmup_file = home / "dags" / "bench_warmup.py"
    warmup_file.write_text(WARMUP_DAG, "utf-8")
    prepared["warmup_file"] = str(warmup_file)
    inprocs, ourses = [], []
    for k in range(repeats):  # interleaved; each Airflow repeat runs another day (new DAG runs)
        inprocs.append(_step("dbt", {**prepared, "mode": "inprocess"}, env))
        ourses.append(_step("airflow", {**prepared, "day": k}, env))
    cli = _step("dbt", {**prepared, "mode": "cli"}, env)
    inproc = sorted(inprocs, key=lambda r: r["wall_s"])[len(inprocs) // 2]
    ours = sorted(ourses, key=lambda r: r["wall_s"])[len(ourses) // 2]
    report.raw["exec"] = {"prepared": prepared, "dbt_inprocess": inprocs, "dbt_cli": cli, "airflow": ourses}
    if not ours["runs"]:
        raise RuntimeError(f"no DAG was built from {prepared['plans']} (plans skipped? see the warnings)")
    failed = {r["dag_id"]: r["not_success"] for r in ours["runs"] if r["state"] != "success" or r["not_success"]}
    what = ("the example mesh (integration_tests: " + ", ".join(prepared["domains"]) + ")"
            if source == "examples" else
            f"a generated 3x20 mesh ({'--quick' if quick else 'the example mesh is not there yet'})")
    n = prepared["dbt_nodes"]
    overhead = (ours["wall_s"] - inproc["wall_s"]) / n
    ratio = ours["wall_s"] / inproc["wall_s"]
    ok = overhead <= TARGETS["exec_overhead_s"] and ratio <= TARGETS["exec_vs_build"] and not failed
    report.add(Row(
        "execution", f"run {what}: {len(ours['runs'])} DAGs, {prepared['tasks']} tasks ({n} dbt nodes, "
        f"{prepared['sensors']} sensors, {prepared['tests']} tests), dag.test() task per model, wall time, median of {repeats}"
        + (f"; NOT ALL SUCCEEDED: {failed}" if failed else ""),
        f"{secs(ours['wall_s'])} (+ dag.test() harness warm-up {secs(ours['warmup_s'])}, once per process, not counted)",
        f"one in-process `dbt build` per project {secs(inproc['wall_s'])}; `dbt build` CLI per project "
        f"{secs(cli['wall_s'])}",
        f"{ratio:.2f}× in-process dbt build ({ours['wall_s'] / cli['wall_s']:.2f}× CLI); "
        f"overhead {overhead:.2f} s per dbt node",
        "≤ 1.5× dbt build and ≤ 1 s per model", met(ok)))


if __name__ == "__main__":
    raise SystemExit(step_main(STEPS))
