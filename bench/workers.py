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
from pathlib import Path
from typing import Any, Callable

SCHEDULE = "0 3 * * *"


def _maxrss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # Linux: KiB


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
    """The same tasks and edges as our plans, as EmptyOperators wired with `>>` (read beforehand)."""
    from datetime import datetime, timezone

    from airflow.providers.standard.operators.empty import EmptyOperator
    from airflow.sdk import DAG, CronTriggerTimetable

    shapes = [(p["dag_id"], p["schedule"], [(t["task_id"], t["upstream"]) for t in p["tasks"]])
              for plan in _plans(args["plans_dir"]) for p in plan["pipelines"]]

    def build() -> dict[str, Any]:
        dags = {}
        for dag_id, schedule, tasks in shapes:
            with DAG(dag_id=dag_id, schedule=CronTriggerTimetable(schedule, timezone="UTC"),
                     start_date=datetime(2024, 1, 1, tzinfo=timezone.utc), catchup=False) as dag:
                ops = {task_id: EmptyOperator(task_id=task_id) for task_id, _ in tasks}
            for task_id, upstream in tasks:
                for up in upstream:
                    ops[up] >> ops[task_id]
            dags[dag_id] = dag
        return dags

    return build


def cosmos_dag(domain: str, manifest: str, profiles_yml: str, test_behavior: str, dag_id: str | None = None):
    """One Cosmos DbtDag of a domain's manifest (LoadMode.DBT_MANIFEST, ExecutionMode.LOCAL);
    the dbt project is the folder holding target/manifest.json."""
    from datetime import datetime, timezone

    from cosmos import (DbtDag, ExecutionConfig, LoadMode, ProfileConfig, ProjectConfig, RenderConfig,
                        TestBehavior)

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
    """Time building the DAGs in this process, its peak memory, then Airflow's serialization."""
    import airflow.sdk  # noqa: F401
    from airflow.serialization.serialized_objects import DagSerialization

    make = BUILDERS[args["builder"]](args)
    gc.collect()
    rss_before = _maxrss_mb()
    started = time.perf_counter()
    dags = make()
    built = time.perf_counter() - started
    rss_peak = _maxrss_mb()
    started = time.perf_counter()
    sizes = [len(json.dumps(DagSerialization.to_dict(dag))) for dag in dags.values()]
    serialized = time.perf_counter() - started
    return {
        "build_s": built,
        "rss_delta_mb": rss_peak - rss_before,
        "rss_peak_mb": rss_peak,
        "serialize_s": serialized,
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
    started = time.perf_counter()
    bag = BundleDagBag(dag_folder=args["dag_file"], safe_mode=False, load_op_links=False,
                       bundle_path=str(Path(args["dag_file"]).parent), bundle_name="bench")
    dag = bag.dags[args["dag_id"]]
    task = dag.task_dict[args["task_id"]]
    elapsed = time.perf_counter() - started
    if bag.import_errors:
        raise RuntimeError(f"import errors: {bag.import_errors}")
    return {"parse_s": elapsed, "dags_built": len(bag.dags), "tasks_in_dag": len(dag.tasks),
            "task_type": type(task).__name__, "rss_peak_mb": _maxrss_mb()}


def compile_(args: dict[str, Any]) -> dict[str, Any]:
    """json.load of each manifest vs handoff's load_manifest + compile_manifest, in this process."""
    from handoff.manifest import load_manifest
    from handoff.plan import compile_manifest

    out = []
    for path in args["manifests"]:
        gc.collect()
        started = time.perf_counter()
        with open(path, "rb") as handle:
            json.load(handle)
        json_s = time.perf_counter() - started
        gc.collect()
        started = time.perf_counter()
        manifest = load_manifest(path)
        load_s = time.perf_counter() - started
        started = time.perf_counter()
        compile_manifest(manifest)
        compile_s = time.perf_counter() - started
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
