"""`make demo`: the example mesh end to end on the embedded defaults (DuckDB, SQLite).

For each example domain: dbt deps + build + `run-operation handoff_validate`; then
`handoff package` → `handoff compile` → `handoff publish` (upstreams first) → `handoff check` → `handoff snapshot`;
then Airflow 3 loads the generated DAGs from the one DAG file and runs each (dag.test) on aligned logical
dates — logistics at 02:00, marketplace at 03:00, finance at 05:00 (its sensor finds marketplace's run),
support at 04:00 (dbt Mesh refs to logistics' project shipping, through dbt-loom: docs/mesh.md),
marketing at 06:00 — and prints every task's state. Everything is written under .demo/.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import sys
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Iterator

REPO = Path(__file__).resolve().parents[1]
EXAMPLES = REPO / "integration_tests"
WORK = REPO / ".demo"
# dbt project folders, in build order: each reads the ones before it (support: shipping through dbt-loom)
DOMAINS = ("marketplace", "finance", "marketing", "shipping", "support")
RUN_ORDER = ("logistics__daily", "marketplace__daily", "support__daily", "finance__daily", "marketing__daily",
             "marketing__hourly")
HOURS = {"logistics": 2, "marketplace": 3, "support": 4, "finance": 5, "marketing": 6}

AIRFLOW_HOME = WORK / "airflow"
ENV = {
    "HANDOFF_DUCKDB_PATH": str(WORK / "warehouse.duckdb"),
    "HANDOFF_REGISTRY_URL": f"sqlite:///{WORK / 'registry.db'}",
    "HANDOFF_PLANS_DIR": str(WORK / "plans"),
    "HANDOFF_DBT_PROJECTS_DIR": str(EXAMPLES),
    "HANDOFF_DBT_PROFILES_DIR": str(EXAMPLES),
    "AIRFLOW_HOME": str(AIRFLOW_HOME),
    "AIRFLOW__CORE__DAGS_FOLDER": str(AIRFLOW_HOME / "dags"),
    "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
    "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{AIRFLOW_HOME / 'airflow.db'}",
    "DBT_SEND_ANONYMOUS_USAGE_STATS": "False",
    "DO_NOT_TRACK": "1",
}


def step(title: str) -> None:
    print(f"\n== {title}", flush=True)


def sh(*args: str) -> str:
    done = subprocess.run(args, capture_output=True, text=True, env={**os.environ, **ENV})
    if done.returncode not in (0,):
        sys.exit(f"demo: `{' '.join(args)}` failed ({done.returncode}):\n{done.stdout}\n{done.stderr}")
    return done.stdout + done.stderr


def handoff(*args: str) -> str:
    return sh(sys.executable, "-m", "handoff.cli", *args)


def dbt(domain: str, *args: str) -> list[str]:
    """dbt in this process; returns what macros printed. Exits the demo on failure."""
    from dbt.cli.main import dbtRunner

    from handoff.warehouse import release_connections

    printed: list[str] = []

    def collect(event) -> None:  # type: ignore[no-untyped-def]
        if event.info.name == "PrintEvent":
            printed.append(event.info.msg)

    from handoff.loom import in_project_dir

    project = EXAMPLES / domain
    with in_project_dir(project):  # dbt-loom reads its config from the project's folder
        result = dbtRunner(callbacks=[collect]).invoke(
            ["--quiet", *args, "--project-dir", str(project), "--profiles-dir", str(EXAMPLES)])
    release_connections()
    if not result.success:
        sys.exit(f"demo: dbt {' '.join(args)} failed in {domain}: {result.exception or ''}\n" + "\n".join(printed))
    return printed


@contextlib.contextmanager
def _output_to(path: Path) -> Iterator[None]:
    """Send this process's stdout/stderr (file descriptors too: Airflow's and dbt's logs) to a file."""
    sys.stdout.flush()
    sys.stderr.flush()
    saved = os.dup(1), os.dup(2)
    with open(path, "a") as log:
        os.dup2(log.fileno(), 1)
        os.dup2(log.fileno(), 2)
        try:
            yield
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            os.dup2(saved[0], 1)
            os.dup2(saved[1], 2)
            os.close(saved[0])
            os.close(saved[1])


def main() -> int:
    shutil.rmtree(WORK, ignore_errors=True)
    (WORK / "plans").mkdir(parents=True)
    (AIRFLOW_HOME / "dags").mkdir(parents=True)
    os.environ.update(ENV)

    for domain in DOMAINS:
        step(f"{domain}: dbt deps, build, handoff_validate")
        dbt(domain, "deps")
        # the example events span these days; without them a microbatch model builds every day from
        # its `begin` to now (handoff's runs pass each run's own interval: docs/plan.md)
        dbt(domain, "build", "--event-time-start", "2024-03-01", "--event-time-end", "2024-03-13")
        dbt(domain, "run-operation", "handoff_validate")  # prints its one-line verdict

    step("handoff package → compile → publish, upstreams first (support's refs find shipping's domain in the "
         "registry) → check → snapshot")
    plans = []
    for domain in DOMAINS:
        print("  " + handoff("package", str(EXAMPLES / domain), "--profiles-dir", str(EXAMPLES)).strip())
        before = set((WORK / "plans").glob("*.plan.json"))
        print("  " + handoff("compile", str(EXAMPLES / domain / "target" / "manifest.json"), "-o",
                             f"{WORK / 'plans'}/").strip())
        [plan] = set((WORK / "plans").glob("*.plan.json")) - before  # <domain>.plan.json (shipping: logistics)
        plans.append(str(plan))
        print("  " + handoff("publish", str(plan)).strip().replace("\n", "\n  "))
    for plan in plans:
        print("  " + handoff("check", plan).strip().replace("\n", "\n  "))
    print("  " + handoff("snapshot", "--output", str(WORK / "plans" / "registry_snapshot.json")).strip())

    step("Airflow 3: load the DAGs and run them on aligned logical dates (dag.test)")
    shutil.copy(EXAMPLES / "airflow" / "dags" / "handoff_dags.py", AIRFLOW_HOME / "dags" / "handoff_dags.py")
    sh(str(Path(sys.executable).with_name("airflow")), "db", "migrate")
    from handoff.airflow import dags_from_env

    dags = dags_from_env()
    day = datetime.now(timezone.utc).replace(hour=0, minute=0, second=0, microsecond=0) - timedelta(days=1)
    failed = []
    rows = []
    for dag_id in RUN_ORDER:
        dag = dags[dag_id]
        tick = day + timedelta(hours=HOURS[dag_id.split("__")[0]])
        with _output_to(AIRFLOW_HOME / "dag_test.log"):
            run = dag.test(logical_date=tick)
        print(f"  {dag_id} @ {tick:%Y-%m-%d %H:%M}: {run.state}")
        for ti in sorted(run.get_task_instances(), key=lambda t: t.task_id):
            rows.append((dag_id, ti.task_id, str(ti.state)))
        if run.state != "success":
            failed.append(dag_id)
    width = max(len(r[1]) for r in rows)
    step(f"task states (Airflow's log: {AIRFLOW_HOME / 'dag_test.log'})")
    for dag_id, task_id, state in rows:
        print(f"  {dag_id:<20} {task_id:<{width}}  {state}")

    step("who depends on marketplace.mrt_orders and logistics.shipments, and what is finance.mrt_revenue waiting on")
    print(handoff("who-depends-on", "marketplace.mrt_orders"))
    print(handoff("who-depends-on", "logistics.shipments"))
    print(handoff("explain", "finance.mrt_revenue", "--at", f"{day:%Y-%m-%d}"))
    if failed:
        print(f"demo: FAILED runs: {', '.join(failed)}")
        return 1
    print("demo: every DAG run succeeded. Plans, registry and warehouse are in .demo/")
    return 0


if __name__ == "__main__":
    sys.exit(main())
