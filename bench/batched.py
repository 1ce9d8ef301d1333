"""Batched vs per-task execution of one domain under a real Airflow scheduler (docs/execution.md).

``python -m bench --only batch [--batch-sizes 200,1000] [--batch-db postgres|sqlite]`` (or
``python -m bench.batched airflow '<json>'`` for one variant). For each mesh 1×N (bench/mesh.py),
side by side on fresh stacks:

- one ``dbt build --threads 2`` from the command line on a fresh DuckDB file;
- handoff ``execution: batched`` (``HANDOFF_DBT_THREADS=2``);
- handoff ``execution: per_task`` (one worker process per model; a one-slot ``duckdb`` pool
  serialises the writers);
- astronomer-cosmos 1.15 ``ExecutionMode.LOCAL`` (a worker process per model, ``TestBehavior.BUILD``)
  and ``ExecutionMode.WATCHER`` (one ``dbt build --threads 2`` producer + a deferrable watcher per
  model and per model's tests, its default ``AFTER_EACH``), from the bench venv (bench/venv.sh) put
  on the stack's PYTHONPATH.

Every variant runs at every size. The two with a worker process per model (``per_task``,
``cosmos_local``) cost ~3-4 s per model whatever the model does, so above ``SLOW_FULL_MAX`` models
their run is stopped after ``slow_timeout_s`` (``--batch-slow-timeout``) and reported with how far it
got: task instances done, and the wall the whole run would take at that rate (a lower bound on its
ratio to ``dbt build``: the rate only falls as the DAG grows).

Each variant gets its own new stack (tests/support/airflow_stack.py: api-server, scheduler,
dag-processor, and a triggerer for Cosmos WATCHER, on 127.0.0.1, LocalExecutor, parallelism 2)
whose metadata database is a new database on a PostgreSQL server the step starts
(tests/support/postgres.py), or a SQLite file with ``--batch-db sqlite``; one DAG run, and reports:
DAG run wall (run start → end), whole-stack CPU (every process of the stack's sessions, task
processes included, from /proc), task processes started (task instances with a try), and for
batched the per-model latency from "dbt finished the model and its tests" (the note's ``done``)
to the task's success committed in Airflow (the time of the batch's ``handoff_batch_settle`` audit
row, written in the same transaction; the task's own end_date is dbt's end). Every relation of the domain is checked in DuckDB afterwards.
"""

from __future__ import annotations

import json
import os
import resource
import shutil
import subprocess
import sys
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from .mesh import MeshSpec, dbt_env, get_mesh
from .steps import run_step, step_main
from .suite import BENCH_PY, MAIN_PY, REPO, RUN, Report, Row, met, secs

WORK = RUN / "batched"
SLOW_FULL_MAX = 200
SLOW_VARIANTS = ("per_task", "cosmos_local")
COSMOS_DAG_FILE = '''"""An Airflow DAG of astronomer-cosmos, as its docs deploy it, for the batched bench (bench/batched.py).

(The words "airflow" and "dag" must appear in the file: Airflow's safe mode skips a file without them.)
"""
from datetime import datetime, timezone

from cosmos import (DbtDag, ExecutionConfig, ExecutionMode, InvocationMode, LoadMode, ProfileConfig, ProjectConfig,
                    RenderConfig, TestBehavior)

dag = DbtDag(
    dag_id={dag_id!r}, schedule="0 3 1 1 *", start_date=datetime(2026, 6, 1, tzinfo=timezone.utc), catchup=False,
    project_config=ProjectConfig(dbt_project_path={project!r}, manifest_path={manifest!r}),
    profile_config=ProfileConfig(profile_name={profile!r}, target_name="dev", profiles_yml_filepath={profiles!r}),
    render_config=RenderConfig(load_method=LoadMode.DBT_MANIFEST, test_behavior=TestBehavior.{behavior}),
    execution_config=ExecutionConfig(execution_mode=ExecutionMode.{mode}, invocation_mode=InvocationMode.DBT_RUNNER),
    operator_args={{"pool": "duckdb"}},
)
'''
COSMOS = {"cosmos_local": ("LOCAL", "BUILD"), "cosmos_watcher": ("WATCHER", "AFTER_EACH")}
TARGET_VS_BUILD = 3.0
TARGET_P95_S = 5.0


def _deploy(spec: MeshSpec, variant: str) -> dict[str, Any]:
    """Copy the mesh's project, `handoff package` it, compile its plan for ``variant``."""
    mesh = get_mesh(spec)
    domain = mesh.domains()[0]
    root = WORK / spec.label / variant
    shutil.rmtree(root, ignore_errors=True)
    projects = root / "projects"
    shutil.copytree(mesh.project_dir(domain), projects / domain, ignore=shutil.ignore_patterns("target", "logs"))
    shutil.copy(mesh.profiles_dir / "profiles.yml", root / "profiles.yml")
    (root / "warehouse").mkdir()
    env = {**dbt_env(root), "HANDOFF_DUCKDB_PATH": str(root / "warehouse" / "mesh.duckdb")}
    return {"root": str(root), "domain": domain, "projects": str(projects), "profiles": str(root),
            "duckdb": env["HANDOFF_DUCKDB_PATH"], "env": env}


def _relations(duckdb_path: str, schema: str) -> int:
    import duckdb

    con = duckdb.connect(duckdb_path, read_only=True)
    try:
        row = con.execute("select count(*) from information_schema.tables where table_schema = ?",
                          [schema]).fetchone()
        return int(row[0]) if row else 0
    finally:
        con.close()


def step_dbt(args: dict[str, Any]) -> dict[str, Any]:
    """One `dbt build --threads 2` CLI run on a fresh warehouse."""
    spec = MeshSpec(1, args["models"])
    d = _deploy(spec, "dbt")
    env = {**os.environ, **d["env"]}
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    subprocess.run([str(MAIN_PY.with_name("dbt")), "--quiet", "build", "--threads", "2", "--project-dir",
                    f"{d['projects']}/{d['domain']}", "--profiles-dir", d["profiles"]], check=True, env=env,
                   capture_output=True)
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return {"wall_s": wall, "cpu_s": cpu, "relations": _relations(d["duckdb"], d["domain"]),
            "load": os.getloadavg()[0]}


def _stack_cpu(stack: Any) -> float:
    sys.path.insert(0, str(REPO / "tests"))
    from support.airflow_stack import _session_members

    tick = os.sysconf("SC_CLK_TCK")
    total = 0
    for process in stack.processes.values():
        for pid in _session_members({process.pid}):
            try:
                stat = Path(f"/proc/{pid}/stat").read_text()
            except OSError:
                continue
            fields = stat[stat.rindex(")") + 2:].split()
            total += sum(int(f) for f in fields[11:15])
    return total / tick


def step_airflow(args: dict[str, Any]) -> dict[str, Any]:
    """One DAG run of the domain on a new stack, ``execution`` = args["variant"]. A stack that
    dies or a run that does not finish is a result too (state "error: ..."), not a crash of the
    suite: the row then says what happened."""
    try:
        return _airflow(args)
    except Exception as exc:  # noqa: BLE001 - reported in the row
        text = " ".join(str(exc).split())
        return {"variant": args["variant"], "models": args["models"], "state": f"error: {text[:300]}",
                "states": {}, "wall_s": float("inf"), "cpu_s": float("nan"), "task_processes": -1,
                "latency_p50_s": None, "latency_p95_s": None, "latency_max_s": None, "latency_n": 0,
                "relations": -1, "task_instances": -1}


def _airflow(args: dict[str, Any]) -> dict[str, Any]:
    sys.path.insert(0, str(REPO / "tests"))
    from support.postgres import start_postgres

    server = None
    metadata_db = None
    if args.get("db", "postgres") == "postgres":
        server = start_postgres()
        server.admin("CREATE DATABASE airflow_bench")
        metadata_db = server.url("airflow_bench").replace("postgresql://", "postgresql+psycopg2://")
    try:
        return _airflow_run(args, metadata_db)
    finally:
        if server is not None:
            server.stop()


def _cosmos_site() -> str:
    """The bench venv's site-packages (astronomer-cosmos and its few extras), for the stack's PYTHONPATH."""
    done = subprocess.run([str(BENCH_PY), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                          capture_output=True, text=True, check=True)
    return done.stdout.strip()


def _airflow_run(args: dict[str, Any], metadata_db: str | None) -> dict[str, Any]:
    from handoff.manifest import load_manifest
    from handoff.packaging import package_project
    from handoff.plan import compile_manifest, dumps, validate_plan
    from support.airflow_stack import start_airflow_stack

    spec = MeshSpec(1, args["models"])
    variant = args["variant"]
    d = _deploy(spec, variant)
    os.environ.update(d["env"])
    project = Path(d["projects"]) / d["domain"]
    package_project(project, profiles_dir=Path(d["profiles"]))
    plan = compile_manifest(load_manifest(project / "target" / "manifest.json")).to_json()  # the document, to edit
    dags = Path(d["root"]) / "dags"
    dags.mkdir()
    dag_id = plan["pipelines"][0]["dag_id"]
    n_models = sum(1 for t in plan["pipelines"][0]["tasks"] if t["kind"] != "sensor")
    extra_env: dict[str, str] = {}
    if variant in COSMOS:
        mode, behavior = COSMOS[variant]
        # the same warehouse settings, two threads for the WATCHER producer's `dbt build` (as the baseline)
        profiles = Path(d["profiles"]) / "profiles.yml"
        profiles.write_text(profiles.read_text().replace("threads: 1", "threads: 2"))
        (dags / "cosmos_dag.py").write_text(COSMOS_DAG_FILE.format(
            dag_id=dag_id, project=str(project), manifest=str(project / "target" / "manifest.json"),
            profile=d["domain"], profiles=str(profiles), behavior=behavior, mode=mode))
        extra_env = {"PYTHONPATH": f"{REPO}:{_cosmos_site()}", "AIRFLOW__COSMOS__ENABLE_TELEMETRY": "False",
                     "AIRFLOW__COSMOS__CACHE_DIR": str(Path(d["root"]) / "cosmos-cache"),
                     "SCARF_NO_ANALYTICS": "true"}
    else:
        for pipeline in plan["pipelines"]:
            pipeline["execution"] = variant
            # no tick between start_date and now: the stack creates no scheduled run of its own, the
            # only run is the one triggered below
            pipeline["schedule"], pipeline["start_date"] = "0 3 1 1 *", "2026-06-01"
            for task in pipeline["tasks"]:
                if task["kind"] != "sensor":
                    task["pool"] = "duckdb"  # one writer at a time (DuckDB), as in the table
        plans = Path(d["root"]) / "plans"
        plans.mkdir()
        (plans / f"{d['domain']}.plan.json").write_text(dumps(validate_plan(plan, f"{d['domain']} (bench variant)")))
        shutil.copy(REPO / "integration_tests" / "airflow" / "dags" / "handoff_dags.py", dags / "handoff_dags.py")
        extra_env = {"HANDOFF_PLANS_DIR": str(plans), "HANDOFF_DBT_PROJECTS_DIR": d["projects"],
                     "HANDOFF_DBT_PROFILES_DIR": d["profiles"], "HANDOFF_DBT_THREADS": "2",
                     "HANDOFF_CACHE_DIR": str(Path(d["root"]) / "cache")}
        if args.get("write_chunk"):
            extra_env["HANDOFF_BATCH_WRITE_CHUNK"] = str(args["write_chunk"])
    stack = start_airflow_stack(Path(d["root"]) / "home", dags, env={
        **d["env"], **extra_env, "AIRFLOW__CORE__PARALLELISM": "2", "AIRFLOW__CORE__MAX_ACTIVE_TASKS_PER_DAG": "2"},
        triggerer=variant == "cosmos_watcher", metadata_db=metadata_db, startup_timeout=300)
    load = [os.getloadavg()[0]]
    try:
        stack.create_pool("duckdb", 1)
        stack.wait_for_dags(dag_id, timeout=600)
        time.sleep(3)
        cpu0 = _stack_cpu(stack)
        load.append(os.getloadavg()[0])
        run_id = stack.trigger(dag_id, None)
        triggered = time.time()
        stopped = None
        try:
            run = stack.wait_for_run(dag_id, run_id, timeout=args.get("timeout", 7200))
        except Exception:  # noqa: BLE001 - past the bench's time limit: report how far the run got
            run = stack.airflow_api.get_dag_run(dag_id, run_id)
            stopped = time.time() - triggered
        load.append(os.getloadavg()[0])
        cpu = _stack_cpu(stack) - cpu0
        tis = stack.airflow_api.list_task_instances(dag_id, run_id)
        # when each settled task's success was committed in Airflow: the batch's audit log rows
        # (handoff_batch_settle, written in the same transaction as the states; handoff.airflow.batch_api)
        committed: dict[str, float] = {}
        for event in stack.airflow_api.list_event_logs(dag_id, run_id=run_id, events=["handoff_batch_settle"]):
            moment = datetime.fromisoformat(str(event["when"]).replace("Z", "+00:00")).timestamp()
            for task_id in json.loads(event.get("extra") or "{}").get("success", []):
                committed[task_id] = moment
        runs = stack.airflow_api.list_dag_runs(dag_id)
        if len(runs) != 1:
            raise RuntimeError(f"expected the triggered run only, found {len(runs)} runs")
    finally:
        stack.stop()

    def when(value: str | None) -> float | None:
        return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp() if value else None

    start, end = when(run.get("start_date")), when(run.get("end_date"))
    if stopped is not None:  # not finished: the run's wall so far, and its state says "stopped"
        start, end = triggered, triggered + stopped
        run = {**run, "state": f"stopped after {stopped:.0f} s (still {run.get('state')})"}
    latencies = []
    for ti in tis:
        note = ti.get("note") or ""
        if ti["state"] == "success" and ", done " in note:
            done = datetime.fromisoformat(note.split(", done ", 1)[1].split(";", 1)[0]).timestamp()
            if ti["task_id"] not in committed:  # settled without an audit row: the measure is broken
                raise RuntimeError(f"{ti['task_id']} is success with a batch note but no handoff_batch_settle row")
            latencies.append(committed[ti["task_id"]] - done)
    latencies.sort()
    states: dict[str, int] = {}
    for ti in tis:
        states[str(ti["state"])] = states.get(str(ti["state"]), 0) + 1
    return {
        "variant": variant, "models": n_models, "state": run.get("state"), "states": states,
        "wall_s": (end - start) if start and end else None, "cpu_s": cpu, "task_instances": len(tis),
        "task_processes": sum(1 for ti in tis if (ti.get("try_number") or 0) > 0),
        "latency_p50_s": latencies[len(latencies) // 2] if latencies else None,
        "latency_p95_s": latencies[min(len(latencies) - 1, int(len(latencies) * 0.95))] if latencies else None,
        "latency_max_s": latencies[-1] if latencies else None, "latency_n": len(latencies),
        "relations": _relations(d["duckdb"], d["domain"]), "db": "postgres" if metadata_db else "sqlite",
        "load": load,
    }


STEPS = {"dbt": step_dbt, "airflow": step_airflow}


def _step(name: str, args: dict[str, Any]) -> dict[str, Any]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AIRFLOW")}
    env["PYTHONPATH"] = str(REPO)
    return run_step(MAIN_PY, REPO, "batched", name, args, env, timeout=4 * 3600)


def _load(r: dict[str, Any]) -> str:
    return "/".join(f"{x:.1f}" for x in r.get("load") or []) or "?"


def _variant_text(name: str, r: dict[str, Any], dbt: dict[str, Any]) -> str:
    if str(r["state"]).startswith("stopped"):
        done, total = r["states"].get("success", 0), r["task_instances"]
        whole = (f"; at that rate the whole run ≈ {secs(r['wall_s'] * total / done)} "
                 f"(≈ {r['wall_s'] * total / done / dbt['wall_s']:.0f}× dbt build)") if done else ""
        return (f"{name}: {r['state']} with {done} of {total} task instances successful, "
                f"{secs(r['cpu_s'])} stack CPU, {r['task_processes']} task processes by then "
                f"(≥ {r['wall_s'] / dbt['wall_s']:.1f}× dbt build{whole}), load {_load(r)}")
    if not str(r["state"]).startswith("success"):
        return f"{name}: {r['state']} {r['states']}"
    return (f"{name} {secs(r['wall_s'])} wall ({r['wall_s'] / dbt['wall_s']:.1f}× dbt build), "
            f"{secs(r['cpu_s'])} stack CPU, {r['task_processes']} task processes of {r['task_instances']} task "
            f"instances, {r['relations']} relations, load {_load(r)}")


VARIANTS = ("batched", "per_task", *COSMOS)


def bench_batched(report: Report, sizes: list[int], db: str = "postgres", variants: tuple[str, ...] = VARIANTS,
                  timeout_s: float = 7200, slow_timeout_s: float = 600) -> None:
    """The rows: per size 1×N, one ``dbt build`` vs batched, per_task, Cosmos LOCAL and WATCHER (those of
    ``variants``), each on a new stack whose metadata database is ``db``; a run still going after
    ``timeout_s`` seconds (``slow_timeout_s`` for per_task and Cosmos LOCAL above ``SLOW_FULL_MAX``
    models) is stopped and reported with how far it got."""
    raw: dict[str, Any] = {}
    for n in sizes:
        dbt = _step("dbt", {"models": n})
        batched = _step("airflow", {"models": n, "variant": "batched", "db": db, "timeout": timeout_s})
        others_runs: dict[str, dict[str, Any]] = {}
        for name in ("per_task", *COSMOS):
            if name in variants:
                limit = slow_timeout_s if name in SLOW_VARIANTS and n > SLOW_FULL_MAX else timeout_s
                others_runs[name] = _step("airflow", {"models": n, "variant": name, "db": db, "timeout": limit})
        raw[f"1x{n}"] = {"dbt": dbt, "batched": batched, **others_runs}
        ok_tables = batched["relations"] == dbt["relations"]
        ratio = batched["wall_s"] / dbt["wall_s"]
        p95 = batched["latency_p95_s"]
        others = "; ".join([f"`dbt build --threads 2` {secs(dbt['wall_s'])} wall, {secs(dbt['cpu_s'])} CPU, "
                            f"load {dbt.get('load', 0):.1f}"]
                           + [_variant_text(name, r, dbt) for name, r in others_runs.items()])
        report.add(Row(
            "batched", f"one DAG run of 1x{n} ({batched['models']} dbt tasks) on a new stack, LocalExecutor "
            f"parallelism 2, metadata DB {batched.get('db', db)}; {batched['relations']} relations built "
            f"(dbt build: {dbt['relations']})"
            + ("" if batched["state"] == "success" and ok_tables else f"; NOT ALL BUILT: {batched['states']}"),
            f"{secs(batched['wall_s'])} wall, {secs(batched['cpu_s'])} stack CPU, {batched['task_processes']} "
            f"task process(es); dbt done → task success p50 {secs(batched['latency_p50_s'] or 0)}, "
            f"p95 {secs(p95 or 0)}, max {secs(batched['latency_max_s'] or 0)}; load {_load(batched)}",
            others, f"{ratio:.2f}× dbt build",
            f"≤ {TARGET_VS_BUILD:g}× dbt build, p95 ≤ {TARGET_P95_S:g} s, 1 task process",
            met(ratio <= TARGET_VS_BUILD and p95 is not None and p95 <= TARGET_P95_S
                and batched["task_processes"] == 1 and ok_tables)))
    report.raw["batched"] = raw
    WORK.mkdir(parents=True, exist_ok=True)
    (WORK / "latest.json").write_text(json.dumps(raw, indent=1, default=str), "utf-8")


if __name__ == "__main__":
    raise SystemExit(step_main(STEPS))
