"""SLA monitoring: what it adds per DAG run at 1x5000 and 20x250 models (docs/benchmarks.md).

``python -m bench.sla [--repeats N] [--scenario 1x5000] [--db sqlite|postgres]`` (not a section
of ``python -m bench``: run it on its own). Every model of the synthetic mesh has an SLA (the worst case: in
practice only public marts promise one), so each model success is one completion the callbacks
record. Measured in a fresh process per scenario, on a SQLite registry in a temp folder (or a
database on a PostgreSQL server tests/support/postgres.py starts, ``--db postgres``):

* ``record``  — the success callbacks' added work per DAG run: ``events.model_completed`` for every
  model (one completion row each; nobody waits on them, so no Airflow API call, no message);
* ``check``   — one wake of the SLA watch when every model's deadline of that run has passed and
  every run is recorded (all met): CPU seconds, registry reads, Airflow API calls;
* ``check_missed`` — the same wake when no success was recorded and no API is configured: every
  model run is a miss — recorded (one transaction), readers looked up for all at once, one
  message per channel built and "posted" in dry-run mode (``check_missed_messages``);
* ``lookup`` — ``Registry.sensors_waiting_on_task`` for every model (what each success callback
  asks first), alone;
* ``wake_at`` — computing the next deadline (what the watch does before it sleeps);
* wakes per day — distinct deadlines per day: how often the watch's task runs.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

SCENARIOS = {"1x5000": (1, 5000), "20x250": (20, 250)}
RUN = datetime(2026, 11, 24, 3, 0, tzinfo=UTC)


def plans(domains: int, models: int) -> list[dict[str, Any]]:
    """``domains`` plans of ``models`` model tasks each (10-wide layers), daily at 03:00 UTC; every
    model promises ``available_within`` 1h..2h (ten distinct deadlines per domain)."""
    found = []
    for d in range(domains):
        name = f"dom{d:02d}"
        tasks = []
        for i in range(models):
            task_id = f"m{i:05d}"
            upstream = [f"m{i - 10 - k:05d}" for k in range(2) if i - 10 - k >= 0]
            tasks.append({
                "task_id": task_id, "kind": "dbt_model", "unique_id": f"model.{name}.{task_id}", "name": task_id,
                "tests": [], "relation": f"main.{task_id}", "access": "public",
                "owner": f"team-{name}", "slack": "", "available_by": None,
                "available_within_s": 3600 + 360 * (i % 10), "microbatch": False, "retries": 0,
                "retry_delay_s": 0, "timeout_s": None, "pool": None, "upstream": upstream})
        found.append({
            "plan_version": 2, "handoff_version": "0.0.0", "notes": [],
            "domain": {"name": name, "owner": f"team-{name}", "slack": f"#{name}-data", "description": ""},
            "dbt": {"project_name": name, "dbt_version": "1.11.0", "manifest_sha256": ""},
            "pipelines": [{"name": "daily", "dag_id": f"{name}__daily", "schedule": "0 3 * * *",
                           "start_date": "2026-01-01", "description": "", "timezone": "UTC", "tasks": tasks}]})
    return found


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def measure(scenario: str, db: str = "sqlite") -> dict[str, Any]:
    """One scenario in this process (call it in a fresh one)."""
    server = None
    try:
        with tempfile.TemporaryDirectory() as tmp:
            url = f"sqlite:///{tmp}/registry.db"
            if db == "postgres":
                sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
                from support.postgres import start_postgres

                server = start_postgres()
                server.admin("CREATE DATABASE sla_bench")
                url = server.url("sla_bench")
            return _measure(scenario, url, db)
    finally:
        if server is not None:
            server.stop()


def _measure(scenario: str, url: str, db: str) -> dict[str, Any]:
    import logging

    from handoff.notify import events, sla_watch
    from handoff.notify.delivery import Delivery
    from handoff.plan_model import Plan
    from handoff.registry import Registry
    from handoff.registry.schema import publications
    from sqlalchemy import update

    logging.getLogger("handoff").setLevel(logging.WARNING)  # dry-run posts are logged at INFO
    domains, models = SCENARIOS[scenario]
    out: dict[str, Any] = {"scenario": scenario, "db": db, "models": domains * models}
    with Registry(url) as registry:
        registry.publish([Plan.from_json(p) for p in plans(domains, models)])
        with registry.engine.begin() as conn:
            conn.execute(update(publications).values(published_at=RUN - timedelta(days=30)))
        off = Delivery("off")
        all_due = RUN + timedelta(hours=2, minutes=1)
        wall, cpu = time.perf_counter(), _cpu()
        missed = sla_watch.check(registry, None, Delivery("dry-run"), now=all_due, lookback=timedelta(hours=3))
        out["check_missed_wall_s"], out["check_missed_cpu_s"] = time.perf_counter() - wall, _cpu() - cpu
        out["check_missed_runs"] = len(missed.missed)
        out["check_missed_messages"] = missed.messages.dry_run + missed.messages.sent
        wall, cpu = time.perf_counter(), _cpu()
        for d in range(domains):
            for i in range(models):
                registry.sensors_waiting_on_task(f"dom{d:02d}__daily", f"m{i:05d}")
        out["lookup_wall_s"], out["lookup_cpu_s"] = time.perf_counter() - wall, _cpu() - cpu
        nxt = RUN + timedelta(days=1)
        wall, cpu = time.perf_counter(), _cpu()
        for d in range(domains):
            for i in range(models):
                events.model_completed(registry, None, off, dag_id=f"dom{d:02d}__daily", task_id=f"m{i:05d}",
                                       run_id="scheduled__x", logical_date=nxt, run_after=nxt,
                                       completed_at=nxt + timedelta(minutes=30))
        out["record_wall_s"], out["record_cpu_s"] = time.perf_counter() - wall, _cpu() - cpu
        out["record_per_model_ms"] = 1000 * out["record_wall_s"] / (domains * models)
        wall, cpu = time.perf_counter(), _cpu()
        met = sla_watch.check(registry, None, off, now=nxt + timedelta(hours=2, minutes=1),
                              lookback=timedelta(hours=3))
        out["check_wall_s"], out["check_cpu_s"] = time.perf_counter() - wall, _cpu() - cpu
        out["check_met"], out["check_api_calls"] = met.met, met.api_calls
        wall = time.perf_counter()
        wake = sla_watch.wake_at(registry, nxt)
        out["wake_at_s"] = time.perf_counter() - wall
        out["first_wake"] = wake.isoformat() if wake else None
        found = {d.deadline for d in sla_watch.due_between(sla_watch.models_of(registry.sla_models()), nxt,
                                                            nxt + timedelta(days=1))}
        out["wakes_per_day"] = len(found)
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.sla")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--scenario", choices=sorted(SCENARIOS), action="append",
                        help="only this scenario (repeatable; default: all)")
    parser.add_argument("--db", choices=("sqlite", "postgres"), default="sqlite")
    parser.add_argument("--worker", choices=sorted(SCENARIOS))
    opts = parser.parse_args(argv)
    if opts.worker:
        print(json.dumps(measure(opts.worker, opts.db)))
        return 0
    root = Path(__file__).resolve().parent.parent
    env = {**os.environ, "PYTHONPATH": str(root / "python")}
    for scenario in opts.scenario or SCENARIOS:
        runs = []
        for _ in range(opts.repeats):
            done = subprocess.run([sys.executable, "-m", "bench.sla", "--worker", scenario, "--db", opts.db],
                                  cwd=root, env=env,
                                  capture_output=True, text=True, check=True)  # noqa: S603 - our own module
            runs.append(json.loads(done.stdout.strip().splitlines()[-1]))
        median = {k: statistics.median(r[k] for r in runs) if isinstance(runs[0][k], float) else runs[0][k]
                  for k in runs[0]}
        print(json.dumps(median), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
