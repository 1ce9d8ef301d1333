"""Fresh-process import cost of a task, by layer (issue #17): what could be imported lazily.

``python -m bench --only imports`` (or ``python -m bench.imports layers '<json>'``). Each repeat is a
new interpreter that imports, in the order a dbt task's worker process does, and times each layer
in CPU seconds:

1. ``sdk``: the Task SDK's task runner and Airflow's DagBag (what the task runner loads before it
   parses the DAG file);
2. ``handoff``: what the DAG file imports (``handoff.airflow``: factory, operators, deployment,
   plan);
3. ``dbt``: ``dbt.cli.main`` (what a dbt task imports first thing).

Run twice: with Python's bytecode cache (a deployed worker) and with ``PYTHONDONTWRITEBYTECODE=1``
and no cache for handoff (each process compiles handoff's modules again).
"""

from __future__ import annotations

import os
import shutil
import statistics
import sys
import time
from pathlib import Path
from typing import Any

from .steps import run_step, step_main
from .suite import MAIN_PY, REPO, Report, Row, secs


def step_layers(args: dict[str, Any]) -> dict[str, Any]:
    """Import the three layers in this fresh interpreter; CPU seconds of each."""
    out: dict[str, Any] = {}
    started = time.process_time()
    import airflow.sdk.execution_time.task_runner  # noqa: F401
    from airflow.dag_processing.dagbag import BundleDagBag  # noqa: F401

    out["sdk_s"] = time.process_time() - started
    before = set(sys.modules)
    started = time.process_time()
    import handoff.airflow  # noqa: F401

    out["handoff_s"] = time.process_time() - started
    out["handoff_modules"] = len(set(sys.modules) - before)
    out["sensor_module_loaded_by_sdk"] = "airflow.models.serialized_dag" in before
    started = time.process_time()
    import dbt.cli.main  # noqa: F401

    out["dbt_s"] = time.process_time() - started
    out["total_s"] = out["sdk_s"] + out["handoff_s"] + out["dbt_s"]
    return out


STEPS = {"layers": step_layers}


def _runs(repeats: int, cached: bool) -> list[dict[str, Any]]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AIRFLOW")}
    env["PYTHONPATH"] = str(REPO)
    if cached:
        env.pop("PYTHONDONTWRITEBYTECODE", None)
    else:
        env["PYTHONDONTWRITEBYTECODE"] = "1"
    results = []
    for _ in range(repeats):
        if not cached:  # handoff's own bytecode cache gone: the process compiles it
            for folder in (REPO / "python" / "handoff").rglob("__pycache__"):
                shutil.rmtree(folder, ignore_errors=True)
        results.append(run_step(MAIN_PY, REPO, "imports", "layers", {}, env))
    if not cached:
        import compileall

        compileall.compile_dir(str(REPO / "python" / "handoff"), quiet=1)
    return results


def bench_imports(report: Report, repeats: int) -> None:
    """One row per variant: medians of ``repeats`` fresh interpreters."""
    raw: dict[str, Any] = {}
    for cached in (True, False):
        runs = _runs(max(repeats, 5), cached)
        med = {k: statistics.median(r[k] for r in runs) for k in ("sdk_s", "handoff_s", "dbt_s", "total_s")}
        name = "bytecode cached (a deployed worker)" if cached else "PYTHONDONTWRITEBYTECODE=1, no cache for handoff"
        raw[name] = runs
        report.add(Row(
            "imports", f"fresh-process imports of a dbt task, {name}; median of {len(runs)}, CPU",
            f"Task SDK + DagBag {secs(med['sdk_s'])}, handoff's DAG-file imports {secs(med['handoff_s'])} "
            f"({runs[0]['handoff_modules']} modules), dbt.cli.main {secs(med['dbt_s'])}; total {secs(med['total_s'])}",
            f"load {os.getloadavg()[0]:.1f}", "", "", ""))
    report.raw["imports"] = raw


if __name__ == "__main__":
    raise SystemExit(step_main(STEPS))
