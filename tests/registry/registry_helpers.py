"""Helpers of the registry suite: writing plans, running the CLI, synthetic plans at scale."""

from __future__ import annotations

import os
import random
import subprocess
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from handoff.plan import dumps, validate_plan
from handoff.plan_model import Plan

REPO = Path(__file__).resolve().parents[2]


def write_plans(folder: Path, *plans: Plan) -> list[Path]:
    """Write each plan as folder/<domain>.plan.json (what `handoff compile -o folder/` does)."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for plan in plans:
        path = folder / f"{plan.domain.name}.plan.json"
        path.write_text(dumps(plan))
        paths.append(path)
    return paths


def run_cli(*args: str, env: Mapping[str, str] | None = None, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    """`handoff ARGS` in a subprocess (the real entry point, exit code and streams)."""
    full_env = {**os.environ, **(env or {})}
    return subprocess.run([sys.executable, "-m", "handoff.cli", *args], capture_output=True, text=True, check=False,
                          env=full_env, cwd=cwd, timeout=120)


def synthetic_plan(domain: str, tasks: int, *, template: Plan,
                   upstreams: Sequence[tuple[str, str]] = (), schedule: str = "0 4 * * *", version: int = 0,
                   pipelines: int = 1, validate: bool = True) -> Plan:
    """A valid plan of ``tasks`` tasks shaped like a dbt project, for scale and concurrency tests.

    Every field not set here is copied from ``template``, a plan compiled by dbt that has a sensor
    (so the generator follows the plan schema as it evolves). Models m0000.. form three layers,
    wired by a random generator seeded with the domain name: staging (30 %, fed by the sensors,
    one per (upstream domain, model), each feeding two staging models), intermediate (40 %, each
    reading 1-3 staging models) and marts (30 %, each reading 1-3 intermediate models; every
    other one public, every third due at 06:00-08:00). ``version`` changes the content (manifest
    sha, SLAs) without changing the shape. Compiling dbt projects of this size would cost
    minutes; every plan passes ``validate_plan`` like a compiled one (unless ``validate`` is false:
    then it is only typed).
    """
    rng = random.Random(f"{domain}/{tasks}")
    base = template.to_json()
    pipeline_template = {k: v for k, v in base["pipelines"][0].items() if k != "tasks"}
    all_tasks = [t for p in base["pipelines"] for t in p["tasks"]]
    model_template = next(t for t in all_tasks if t["kind"] == "dbt_model")
    sensor_template = next(t for t in all_tasks if t["kind"] == "sensor")
    slack = f"#{domain.replace('_', '-')}"
    sensors = [(f"wait__{d}__{m}", d, m) for d, m in dict.fromkeys(upstreams)]
    models = max(3, tasks - len(sensors))
    per_pipeline = -(-models // pipelines)
    names = [f"m{i:04d}" for i in range(models)]
    out_pipelines = []
    for p in range(pipelines):
        chunk = names[p * per_pipeline:(p + 1) * per_pipeline]
        if not chunk:
            continue
        staging, intermediate = chunk[:max(1, len(chunk) * 3 // 10)], chunk[max(1, len(chunk) * 3 // 10):]
        intermediate, marts = intermediate[:max(1, len(chunk) * 4 // 10)], intermediate[max(1, len(chunk) * 4 // 10):]
        reads: dict[str, set[str]] = {name: set() for name in chunk}
        own_sensors = sensors if p == 0 else []
        for task_id, _, _ in own_sensors:
            for name in rng.sample(staging, min(2, len(staging))):
                reads[name].add(task_id)
        for name in intermediate:
            reads[name].update(rng.sample(staging, min(len(staging), rng.randint(1, 3))))
        for name in marts:
            reads[name].update(rng.sample(intermediate, min(len(intermediate), rng.randint(1, 3))))
        task_list: list[dict[str, Any]] = []
        for name in chunk:
            mart = name in marts
            index = marts.index(name) if mart else 0
            task_list.append({
                **model_template, "task_id": name, "unique_id": f"model.{domain}.{name}", "name": name,
                "tests": [], "relation": f'"db"."{domain}"."{name}"',
                "access": "public" if mart and index % 2 == 0 else "protected", "owner": f"team-{domain}",
                "slack": slack, "available_by": f"{6 + version % 3:02d}:00" if mart and index % 3 == 0 else None,
                "upstream": sorted(reads[name])})
        for task_id, up_domain, up_model in own_sensors:
            task_list.append({**sensor_template, "task_id": task_id, "upstream_domain": up_domain,
                              "upstream_model": up_model, "sources": [f"source.{domain}.{up_domain}.{up_model}"],
                              "upstream": []})
        name = "daily" if p == 0 else f"extra{p}"
        out_pipelines.append({**pipeline_template, "name": name, "dag_id": f"{domain}__{name}",
                              "schedule": schedule, "tasks": task_list})
    plan = {
        **base,
        "domain": {**base["domain"], "name": domain, "owner": f"team-{domain}", "slack": slack},
        "dbt": {**base["dbt"], "project_name": domain, "manifest_sha256": f"{version:064x}"},
        "pipelines": out_pipelines, "notes": [],
    }
    return validate_plan(plan, f"synthetic {domain}") if validate else Plan.from_json(plan)


def public_marts(plan: Plan) -> list[str]:
    """The public models of a synthetic plan (what other synthetic domains may read)."""
    return [t.name for p in plan.pipelines for t in p.dbt_tasks() if t.access == "public"]


def chained_plans(made: Sequence[Plan], prefix: str, count: int, tasks: int, reach: int) -> list[Plan]:
    """``made`` and ``count`` synthetic domains ``<prefix><i>`` of ``tasks`` tasks (modelled on
    ``made[1]``), each reading two public marts of each of the ``reach`` domains before it."""
    synthetic: list[Plan] = []
    for i in range(count):
        ups = [(synthetic[j].domain.name, mart) for j in range(max(0, i - reach), i)
               for mart in public_marts(synthetic[j])[:2]]
        synthetic.append(synthetic_plan(f"{prefix}{i}", tasks, template=made[1], upstreams=ups))
    return [*made, *synthetic]


def published_registry(request: Any, tmp_path_factory: Any, database: str, plans: Sequence[Plan]) -> Any:
    """A Registry (context manager) on the backend of ``request.param`` ("sqlite" or a database
    ``database`` on the tests' PostgreSQL server) with ``plans`` published."""
    from handoff.registry.store import Registry

    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path_factory.mktemp(database)}/registry.db"
    else:
        server = request.getfixturevalue("postgres_server")
        server.admin(f"CREATE DATABASE {database}")
        url = server.url(database)
    registry = Registry(url)
    try:
        registry.publish(list(plans))
    except BaseException:
        registry.close()
        raise
    return registry
