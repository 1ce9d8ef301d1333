"""One measurement per process: ``python -m bench.workers KIND '<json args>'`` prints one JSON line.

Every measurement runs in a fresh interpreter so no import, cache or warmed-up allocator of an
earlier measurement flatters a later one. Libraries a long-running Airflow process already has
imported (the dag-processor pre-imports the modules a DAG file imports, the task runner has the
Task SDK and the DagBag loaded) are imported *before* the clock starts, and said so.
"""

from __future__ import annotations

import gc
import json
import os
import resource
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

SCHEDULE = "0 3 * * *"


def _maxrss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # Linux: KiB


def _rss_mb() -> float:
    """Current resident set size (Linux)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024.0
    return 0.0


def _plans(plans_dir: str) -> list[dict[str, Any]]:
    return [json.loads(p.read_text("utf-8")) for p in sorted(Path(plans_dir).glob("*.plan.json"))]


# --------------------------------------------------------------------------------------
# DAG builders (each returns the built DAGs)
# --------------------------------------------------------------------------------------

def _prepare_ours(args: dict[str, Any]) -> Callable[[], dict[str, Any]]:
    from handoff.airflow import load_dags

    def build() -> dict[str, Any]:
        return load_dags(args["plans_dir"], dbt_projects_dir=args["projects_dir"],
                         profiles_dir=args["profiles_dir"])

    return build


def _prepare_floor(args: dict[str, Any]) -> Callable[[], dict[str, Any]]:
    """The same tasks and edges as our plans, as EmptyOperators (read beforehand). The strong floor
    (default) writes each edge into the two tasks' id sets, as handoff does (decisions D7); with
    ``args["wiring"] == "rshift"`` it uses `>>`, which hashes the DAG per edge (quadratic)."""
    from datetime import datetime, timezone

    from airflow.providers.standard.operators.empty import EmptyOperator
    from airflow.sdk import DAG, CronTriggerTimetable

    shapes = [(p["dag_id"], p["schedule"], [(t["task_id"], t["upstream"]) for t in p["tasks"]])
              for plan in _plans(args["plans_dir"]) for p in plan["pipelines"]]
    rshift = args.get("wiring") == "rshift"

    def build() -> dict[str, Any]:
        dags = {}
        for dag_id, schedule, tasks in shapes:
            with DAG(dag_id=dag_id, schedule=CronTriggerTimetable(schedule, timezone="UTC"),
                     start_date=datetime(2024, 1, 1, tzinfo=timezone.utc), catchup=False) as dag:
                ops = {task_id: EmptyOperator(task_id=task_id) for task_id, _ in tasks}
            if rshift:
                for task_id, upstream in tasks:
                    for up in upstream:
                        ops[up] >> ops[task_id]
            else:
                for task_id, upstream in tasks:
                    for up in upstream:
                        ops[up].downstream_task_ids.add(task_id)
                        ops[task_id].upstream_task_ids.add(up)
            dags[dag_id] = dag
        return dags

    return build


def cosmos_dag(domain: str, manifest: str, profiles_yml: str, test_behavior: str, dag_id: str | None = None):
    """One Cosmos DbtDag of a domain's manifest (LoadMode.DBT_MANIFEST, ExecutionMode.LOCAL);
    the dbt project is the folder holding target/manifest.json."""
    from datetime import datetime, timezone

    from cosmos import (
        DbtDag,
        ExecutionConfig,
        LoadMode,
        ProfileConfig,
        ProjectConfig,
        RenderConfig,
        TestBehavior,
    )

    return DbtDag(
        dag_id=dag_id or f"{domain}__daily",
        schedule=SCHEDULE,
        start_date=datetime(2024, 1, 1, tzinfo=timezone.utc),
        catchup=False,
        project_config=ProjectConfig(manifest_path=manifest, project_name=domain),
        profile_config=ProfileConfig(profile_name=domain, target_name="dev", profiles_yml_filepath=profiles_yml),
        render_config=RenderConfig(load_method=LoadMode.DBT_MANIFEST,
                                   test_behavior=TestBehavior[test_behavior]),
        execution_config=ExecutionConfig(dbt_project_path=str(Path(manifest).parents[1])),
    )


def _prepare_cosmos(args: dict[str, Any]) -> Callable[[], dict[str, Any]]:
    import cosmos  # noqa: F401 - pre-imported, like the dag-processor does

    def build() -> dict[str, Any]:
        dags = {}
        for domain, manifest in args["manifests"]:
            dag = cosmos_dag(domain, manifest, args["profiles_yml"], args["test_behavior"])
            dags[dag.dag_id] = dag
        return dags

    return build


BUILDERS = {"ours": _prepare_ours, "floor": _prepare_floor, "cosmos": _prepare_cosmos}


def build(args: dict[str, Any]) -> dict[str, Any]:
    """Time building the DAGs in this process, its peak memory, then Airflow's serialization.

    Times are CPU time of this process (``time.process_time``; the work is single-threaded, and
    CPU time is what other load on a shared machine disturbs least) and wall time."""
    import warnings

    import airflow.sdk  # noqa: F401
    from airflow.serialization.serialized_objects import DagSerialization

    make = BUILDERS[args["builder"]](args)
    gc.collect()
    rss_before = _rss_mb()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        cpu, wall = time.process_time(), time.perf_counter()
        dags = make()
        build_cpu, build_wall = time.process_time() - cpu, time.perf_counter() - wall
    rss_peak = _maxrss_mb()
    rss_after = _rss_mb()
    skipped = [str(w.message) for w in caught if "handoff: skipped" in str(w.message)]
    if skipped or (args.get("expect_dags") and len(dags) != args["expect_dags"]):
        raise RuntimeError(f"built {len(dags)} DAGs, expected {args.get('expect_dags')}: {skipped[:3]}")
    cpu, wall = time.process_time(), time.perf_counter()
    sizes = [len(json.dumps(DagSerialization.to_dict(dag))) for dag in dags.values()]
    ser_cpu, ser_wall = time.process_time() - cpu, time.perf_counter() - wall
    return {
        "build_s": build_cpu,
        "build_wall_s": build_wall,
        "rss_delta_mb": rss_after - rss_before,  # what the built DAGs keep resident
        "rss_peak_mb": rss_peak,
        "serialize_s": ser_cpu,
        "serialize_wall_s": ser_wall,
        "serialized_bytes": sum(sizes),
        "dags": len(dags),
        "tasks": sum(len(d.tasks) for d in dags.values()),
    }


def worker_parse(args: dict[str, Any]) -> dict[str, Any]:
    """What a task process pays to load its DAG: BundleDagBag of the DAG file, with Airflow's
    parsing context set in the environment (as task_runner.startup() sets it)."""
    import airflow.sdk  # noqa: F401 - the task runner has these loaded already
    from airflow.dag_processing.dagbag import BundleDagBag

    assert os.environ.get("_AIRFLOW_PARSING_CONTEXT_DAG_ID") == args["dag_id"]
    cpu, wall = time.process_time(), time.perf_counter()
    bag = BundleDagBag(dag_folder=args["dag_file"], safe_mode=False, load_op_links=False,
                       bundle_path=str(Path(args["dag_file"]).parent), bundle_name="bench")
    dag = bag.dags[args["dag_id"]]
    task = dag.task_dict[args["task_id"]]
    elapsed_cpu, elapsed = time.process_time() - cpu, time.perf_counter() - wall
    if bag.import_errors:
        raise RuntimeError(f"import errors: {bag.import_errors}")
    return {"parse_s": elapsed_cpu, "parse_wall_s": elapsed, "dags_built": len(bag.dags), "tasks_in_dag": len(dag.tasks),
            "task_type": type(task).__name__, "rss_peak_mb": _maxrss_mb()}


def compile_(args: dict[str, Any]) -> dict[str, Any]:
    """json.load of each manifest vs handoff's load_manifest + compile_manifest, in this process."""
    from handoff.manifest import load_manifest
    from handoff.plan import compile_manifest

    out = []
    for path in args["manifests"]:
        with open(path, "rb") as handle:
            handle.read()  # the page cache is warm for both readers
        gc.collect()
        started = time.process_time()
        with open(path, "rb") as handle:
            json.load(handle)
        json_s = time.process_time() - started
        gc.collect()
        started = time.process_time()
        manifest = load_manifest(path)
        load_s = time.process_time() - started
        started = time.process_time()
        compile_manifest(manifest)
        compile_s = time.process_time() - started
        out.append({"path": path, "bytes": os.path.getsize(path), "json_s": json_s, "load_s": load_s,
                    "compile_s": compile_s})
    return {"manifests": out}


KINDS = {"build": build, "parse": worker_parse, "compile": compile_}


def main() -> int:
    kind, raw = sys.argv[1], sys.argv[2]
    result = KINDS[kind](json.loads(raw))
    sys.stdout.flush()
    print("BENCH-RESULT " + json.dumps(result), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
