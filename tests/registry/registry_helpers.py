"""Helpers of the registry suite: writing plans, running the CLI, synthetic plans at scale."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any, Mapping, Sequence

from handoff.plan import PLAN_VERSION, dumps, validate_plan

REPO = Path(__file__).resolve().parents[2]


def write_plans(folder: Path, *plans: Mapping[str, Any]) -> list[Path]:
    """Write each plan as folder/<domain>.plan.json (what `handoff compile -o folder/` does)."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for plan in plans:
        path = folder / f"{plan['domain']['name']}.plan.json"
        path.write_text(dumps(plan))
        paths.append(path)
    return paths


def run_cli(*args: str, env: Mapping[str, str] | None = None, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    """`handoff ARGS` in a subprocess (the real entry point, exit code and streams)."""
    full_env = {**os.environ, **(env or {})}
    return subprocess.run([sys.executable, "-m", "handoff.cli", *args], capture_output=True, text=True,
                          env=full_env, cwd=cwd, timeout=120)


def synthetic_plan(domain: str, tasks: int, *, upstreams: Sequence[tuple[str, str]] = (),
                   schedule: str = "0 4 * * *", version: int = 0, pipelines: int = 1) -> dict[str, Any]:
    """A valid plan of ``tasks`` tasks shaped like a dbt project, for scale and concurrency tests.

    Models m0000.. form layers: each reads the one before it and one further back; every fifth
    is public; one sensor per (upstream domain, model) feeds the first models. ``version``
    changes the plan's content (a new manifest sha and SLAs) without changing its shape.
    Compiling real dbt projects of this size would cost minutes; every plan still passes
    ``validate_plan`` (the schema and in-DAG references), like a compiled one.
    """
    sensors = [(f"wait__{d}__{m}", d, m) for d, m in upstreams]
    models = max(1, tasks - len(sensors))
    per_pipeline = -(-models // pipelines)
    names = [f"m{i:04d}" for i in range(models)]
    out_pipelines = []
    for p in range(pipelines):
        chunk = names[p * per_pipeline:(p + 1) * per_pipeline]
        if not chunk:
            continue
        task_list: list[dict[str, Any]] = []
        own_sensors = sensors if p == 0 else []
        for i, name in enumerate(chunk):
            upstream = set()
            if i >= 1:
                upstream.add(chunk[i - 1])
            if i >= 7:
                upstream.add(chunk[i // 2])
            if own_sensors and i < 2 * len(own_sensors):
                upstream.add(own_sensors[i % len(own_sensors)][0])
            task_list.append({
                "task_id": name, "kind": "dbt_model", "unique_id": f"model.{domain}.{name}", "name": name,
                "select": name, "tests": [], "relation": f'"db"."{domain}"."{name}"',
                "access": "public" if i % 5 == 0 else "protected", "owner": f"team-{domain}",
                "slack": f"#{domain.replace('_', '-')}", "available_by": None if i % 7 else f"{6 + version % 3:02d}:00",
                "retries": 1, "retry_delay_s": 300, "timeout_s": None, "pool": None, "upstream": sorted(upstream)})
        for task_id, up_domain, up_model in own_sensors:
            task_list.append({"task_id": task_id, "kind": "sensor", "upstream_domain": up_domain,
                              "upstream_model": up_model, "sources": [f"source.{domain}.{up_domain}.{up_model}"],
                              "timeout_s": 21600, "poke_interval_s": 300, "mode": "reschedule", "upstream": []})
        name = "daily" if p == 0 else f"extra{p}"
        out_pipelines.append({"name": name, "dag_id": f"{domain}__{name}", "schedule": schedule,
                              "start_date": "2024-01-01", "description": "", "tasks": task_list})
    plan = {
        "plan_version": PLAN_VERSION, "handoff_version": "0.1.0",
        "domain": {"name": domain, "owner": f"team-{domain}", "slack": f"#{domain.replace('_', '-')}",
                   "description": ""},
        "dbt": {"project_name": domain, "dbt_version": "1.11.16", "manifest_sha256": f"{version:064x}"},
        "pipelines": out_pipelines, "notes": [],
    }
    return validate_plan(plan, f"synthetic {domain}")
