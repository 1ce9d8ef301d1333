"""Builds Airflow 3 DAG objects from plans: one DAG per (domain, pipeline), one task per plan task.

Nothing here generates Python source: plans are data read at parse time.

Speed matters because Airflow re-parses the DAG file constantly and a worker re-parses it
before every task. Two choices keep a build below the cost of a hand-written DAG of
EmptyOperators wired with `>>` (docs/benchmarks.md):
- edges are written straight into the tasks' upstream/downstream id sets. `a >> b` does the
  same after collecting the DAGs of both sides into a set, which hashes the DAG, whose hash
  covers every task id: that makes wiring quadratic in the DAG's size.
- in a worker (Airflow's parsing context names one dag_id) only that DAG is built; when the
  context also names the task (Airflow 3's task runner does), only that task, unwired: the task
  runner reads nothing of the DAG but the task (docs/decisions.md D17), so a task's parse does not
  grow with its DAG.
"""

from __future__ import annotations

import contextlib
import functools
import gc
import hashlib
import json
import os
import warnings
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Callable, Iterator, Mapping

from airflow.sdk import DAG, BaseOperator, CronTriggerTimetable, get_parsing_context

from ..alignment import to_cron
from ..batching import BATCH_TASK_ID, DEFAULT_EXECUTION, batched_models
from ..errors import HandoffError
from ..plan import PLAN_VERSION, validate_plan
from .callbacks import on_sensor_success
from .dbt_runner import DbtProject
from .operators import CrossDomainSensor, DbtNodeOperator, ReconcileOperator, UnresolvedUpstream

PLAN_SUFFIX = ".plan.json"
SNAPSHOT_NAME = "registry_snapshot.json"

ProjectResolver = Callable[[Mapping[str, Any]], DbtProject]
Callback = Callable[[Any], None]


def build_dag(plan: Mapping[str, Any], pipeline: Mapping[str, Any], *, project: DbtProject,
              upstreams: Mapping[tuple[str, str], Mapping[str, str]],
              on_success: Callback | None = None, only_task_id: str | None = None) -> DAG:
    """One pipeline of a plan as a DAG. ``upstreams`` maps (domain, model) to the upstream task's
    dag_id, task_id and schedule (the registry snapshot). ``only_task_id`` (a worker) builds just
    that task, without edges; the whole DAG when the pipeline has no such task."""
    domain = plan["domain"]
    dag = DAG(
        dag_id=pipeline["dag_id"],
        schedule=CronTriggerTimetable(to_cron(pipeline["schedule"]), timezone="UTC"),
        start_date=datetime.fromisoformat(pipeline["start_date"]).replace(tzinfo=timezone.utc),
        catchup=False,
        max_active_runs=pipeline.get("max_active_runs", 1),
        description=f"{domain['name']} / {pipeline['name']} (owner {domain['owner']}, {domain['slack']})",
        tags=["handoff", f"domain:{domain['name']}"],
        default_args={"owner": domain["owner"]},
    )
    specs = pipeline["tasks"]
    if only_task_id is not None:
        mine = [spec for spec in specs if spec["task_id"] == only_task_id]
        if mine:
            _task(dag, mine[0], project, upstreams, on_success)
            return dag
    tasks: dict[str, BaseOperator] = {}
    for spec in specs:
        tasks[spec["task_id"]] = _task(dag, spec, project, upstreams, on_success)
    for spec in specs:
        downstream = tasks[spec["task_id"]]
        for upstream_id in spec["upstream"]:
            # what `upstream >> downstream` does, without hashing the DAG per edge (module doc)
            tasks[upstream_id].downstream_task_ids.add(spec["task_id"])
            downstream.upstream_task_ids.add(upstream_id)
    if pipeline.get("execution", DEFAULT_EXECUTION) == "batched":
        _add_batch(dag, pipeline, project, tasks, domain["owner"])
    return dag


def _add_batch(dag: DAG, pipeline: Mapping[str, Any], project: DbtProject, tasks: dict[str, BaseOperator],
               owner: str) -> None:
    """The batch task, upstream of every model task it runs (docs/execution.md)."""
    from .batch import batch_task

    if BATCH_TASK_ID in tasks:
        raise HandoffError(f"pipeline {pipeline['name']}: a task is named {BATCH_TASK_ID}, which batched "
                           "execution reserves", hint="rename the model, or use `execution: per_task`")
    pool, models = batched_models(pipeline)
    if not models:
        return
    batch = batch_task(dag, project=project, pool=pool, models=models, owner=owner)
    for model in models:
        batch.downstream_task_ids.add(model.task_id)
        tasks[model.task_id].upstream_task_ids.add(BATCH_TASK_ID)


def _task(dag: DAG, spec: Mapping[str, Any], project: DbtProject,
          upstreams: Mapping[tuple[str, str], Mapping[str, str]], on_success: Callback | None) -> BaseOperator:
    if spec["kind"] == "sensor":
        target = upstreams.get((spec["upstream_domain"], spec["upstream_model"]))
        common = {"task_id": spec["task_id"], "dag": dag,
                  "upstream_domain": spec["upstream_domain"], "upstream_model": spec["upstream_model"]}
        if target is None:
            return UnresolvedUpstream(retries=0, **common)
        return CrossDomainSensor(
            upstream_dag_id=target["dag_id"], upstream_task_id=target["task_id"],
            upstream_schedule=target["schedule"],
            mode="poke" if spec["mode"] == "deferrable" else spec["mode"], deferrable=spec["mode"] == "deferrable",
            poke_interval=spec["poke_interval_s"], timeout=spec["timeout_s"], retries=0,
            on_success_callback=on_sensor_success if on_success is not None else None,
            **common,
        )
    timeout = spec["timeout_s"]
    return DbtNodeOperator.for_node(
        task_id=spec["task_id"],
        dag=dag,
        project=project,
        unique_id=spec["unique_id"],
        select=[spec["select"], *spec["tests"]],
        owner=spec["owner"],
        retries=spec["retries"],
        retry_delay=timedelta(seconds=spec["retry_delay_s"]),
        execution_timeout=timedelta(seconds=timeout) if timeout else None,
        pool=spec["pool"] or "default_pool",
        on_success_callback=on_success,
    )


def snapshot_upstreams(snapshot: Mapping[str, Any] | None) -> dict[tuple[str, str], Mapping[str, str]]:
    """(domain, model) -> {dag_id, task_id, schedule} from a registry snapshot document."""
    if not snapshot:
        return {}
    return {(m["domain"], m["model"]): m for m in snapshot.get("models", [])}


def plan_upstreams(plans: list[Mapping[str, Any]]) -> dict[tuple[str, str], Mapping[str, str]]:
    """The same mapping derived from plans themselves (for plans deployed side by side)."""
    found: dict[tuple[str, str], Mapping[str, str]] = {}
    for plan in plans:
        for pipeline in plan["pipelines"]:
            for task in pipeline["tasks"]:
                if task["kind"] != "sensor":
                    found[(plan["domain"]["name"], task["name"])] = {
                        "dag_id": pipeline["dag_id"], "task_id": task["task_id"], "schedule": pipeline["schedule"]}
    return found


def _read_json(path: Path, raw: bytes | None = None) -> Any:
    try:
        return json.loads((path.read_bytes() if raw is None else raw).decode("utf-8"))
    except FileNotFoundError:
        raise HandoffError("file not found", where=str(path)) from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise HandoffError(f"cannot read: {exc}", where=str(path),
                           hint="re-write it with `handoff compile` / `handoff snapshot`") from None


def _read_plan(path: Path, validate: bool) -> dict[str, Any]:
    try:
        raw = path.read_bytes()
    except OSError:
        raw = None  # _read_json reports it
    plan = _read_json(path, raw)
    if validate:
        marker = _validity_marker(raw) if raw is not None else None
        if marker is not None and marker.is_file():
            return plan  # these exact bytes passed validate_plan before (see _schema_digest)
        plan = validate_plan(plan, str(path))
        _remember(marker)
        return plan
    if not isinstance(plan, dict) or plan.get("plan_version") != PLAN_VERSION:
        return validate_plan(plan, str(path))  # for its precise message
    return plan


# Validating a plan against its JSON Schema costs ~0.2 ms per task (jsonschema), more than
# building the task: 60% of a 20-domain parse (docs/benchmarks.md). A plan's verdict depends only
# on its bytes, the schemas and handoff's version, and Airflow re-parses the same bytes every
# 30 s and before every task, so a plan that passed is remembered as an empty marker file named
# by the hash of all three. Invalid plans are never remembered: they are re-checked (and warned
# about) at every parse, exactly as before. Any problem with the cache just means validating.
@functools.lru_cache(maxsize=1)
def _schema_digest() -> bytes:
    from importlib import resources

    from .. import __version__

    from .. import plan as plan_module

    digest = hashlib.sha256(f"handoff {__version__} plan v{PLAN_VERSION}\0".encode())
    # the validator's own code too: a rule added without a version change must not trust old verdicts
    digest.update(Path(plan_module.__file__).read_bytes() + b"\0")
    folder = resources.files("handoff").joinpath("schemas")
    for name in sorted(p.name for p in folder.iterdir() if p.name.endswith(".schema.json")):
        digest.update(name.encode() + b"\0" + folder.joinpath(name).read_bytes() + b"\0")
    return digest.digest()


def _cache_dir() -> Path:
    explicit = os.environ.get("HANDOFF_CACHE_DIR")
    if explicit:
        return Path(explicit)
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "handoff"


def _validity_marker(raw: bytes) -> Path | None:
    try:
        key = hashlib.sha256(_schema_digest() + raw).hexdigest()
        return _cache_dir() / "valid-plans" / key
    except (OSError, ValueError):
        return None


def _remember(marker: Path | None) -> None:
    if marker is None:
        return
    try:
        marker.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        os.close(os.open(marker, os.O_CREAT | os.O_WRONLY, 0o600))
    except OSError:
        pass


def load_dags(plans_dir: str | Path, *, dbt_projects_dir: str | Path, profiles_dir: str | Path | None = None,
              snapshot_path: str | Path | None = None, only_dag_id: str | None = None,
              only_task_id: str | None = None, validate: bool = True,
              on_success: Callback | None = None) -> dict[str, DAG]:
    """Every DAG of every ``<domain>.plan.json`` in ``plans_dir``.

    dbt projects are found as ``<dbt_projects_dir>/<dbt project name>``; profiles in
    ``profiles_dir`` (default: each project's own folder). Sensors resolve their upstream from
    ``snapshot_path`` (default ``<plans_dir>/registry_snapshot.json`` if present), falling back to
    the plans in the same folder. A plan that cannot be read is skipped with a warning that
    Airflow shows as a DAG warning; the other domains still load. ``only_dag_id`` builds just
    that DAG, and ``only_task_id`` (with it) just that task (what a worker needs).
    """
    plans_dir = Path(plans_dir)
    if not plans_dir.is_dir():
        raise HandoffError("plans folder not found", where=str(plans_dir),
                           hint="set HANDOFF_PLANS_DIR to the folder holding <domain>.plan.json files")
    files = sorted(plans_dir.glob(f"*{PLAN_SUFFIX}"))
    if only_dag_id is not None:
        domain = only_dag_id.split("__", 1)[0]
        files = [f for f in files if f.name == f"{domain}{PLAN_SUFFIX}"]
    plans: list[dict[str, Any]] = []
    for path in files:
        try:
            plans.append(_read_plan(path, validate))
        except HandoffError as exc:
            warnings.warn(f"handoff: skipped {path.name}: {exc.one_line()}", stacklevel=2)
    snapshot_file = Path(snapshot_path) if snapshot_path else plans_dir / SNAPSHOT_NAME
    upstreams = plan_upstreams(plans)  # a worker's: its own domain's plan (same-domain pipeline sensors)
    if only_dag_id is not None and only_task_id is not None and not _is_sensor(plans, only_dag_id, only_task_id):
        pass  # a worker's dbt task resolves no upstream: the snapshot is not even read
    elif snapshot_file.is_file():
        upstreams.update(snapshot_upstreams(_read_json(snapshot_file)))
    elif snapshot_path:
        raise HandoffError("registry snapshot not found", where=str(snapshot_file),
                           hint="export it with `handoff snapshot --output DIR/`")
    elif only_dag_id is not None:
        upstreams = plan_upstreams([_read_plan(p, False) for p in sorted(plans_dir.glob(f"*{PLAN_SUFFIX}"))])

    dags: dict[str, DAG] = {}
    with _no_gc_pauses():
        for plan in plans:
            project_name = plan["dbt"]["project_name"]
            project_dir = Path(dbt_projects_dir) / project_name
            project = DbtProject(project_dir=str(project_dir),
                                 profiles_dir=str(profiles_dir) if profiles_dir else str(project_dir),
                                 manifest_sha256=plan["dbt"]["manifest_sha256"])
            for pipeline in plan["pipelines"]:
                if only_dag_id is not None and pipeline["dag_id"] != only_dag_id:
                    continue
                dags[pipeline["dag_id"]] = build_dag(plan, pipeline, project=project, upstreams=upstreams,
                                                     on_success=on_success,
                                                     only_task_id=only_task_id if only_dag_id else None)
    return dags


def _is_sensor(plans: list[dict[str, Any]], dag_id: str, task_id: str) -> bool:
    """Whether the worker's task needs the registry snapshot (sensors do; unknown tasks might)."""
    for plan in plans:
        for pipeline in plan["pipelines"]:
            if pipeline["dag_id"] == dag_id:
                for task in pipeline["tasks"]:
                    if task["task_id"] == task_id:
                        return bool(task["kind"] == "sensor")
    return True


@contextlib.contextmanager
def _no_gc_pauses() -> Iterator[None]:
    """Python's cyclic GC off while tasks are built, back as it was after.

    Building allocates ~20 long-lived objects per task; the collector keeps re-scanning them (and
    everything Airflow imported) while they pile up: ~18% of building 20 DAGs of 250 tasks
    (docs/benchmarks.md). Nothing is lost: cycles made meanwhile are collected afterwards.
    """
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


MAINTENANCE_DAG_ID = "handoff_reconcile"


def maintenance_dag(schedule: str, registry_url: str, lookback: timedelta = timedelta(hours=24)) -> DAG:
    """A DAG running the reconcile sweep on ``schedule`` (docs/deployment.md)."""
    dag = DAG(dag_id=MAINTENANCE_DAG_ID, schedule=CronTriggerTimetable(to_cron(schedule), timezone="UTC"),
              start_date=datetime(2024, 1, 1, tzinfo=timezone.utc), catchup=False, max_active_runs=1,
              description="handoff: satisfy sensors whose upstream completed but whose callback missed",
              tags=["handoff", "maintenance"])
    ReconcileOperator(task_id="reconcile", dag=dag, registry_url=registry_url, lookback=lookback, retries=0)
    return dag


def dags_from_env() -> dict[str, DAG]:
    """What the DAG file in the dags folder calls. Settings (environment):

    HANDOFF_PLANS_DIR (required), HANDOFF_DBT_PROJECTS_DIR (required), HANDOFF_DBT_PROFILES_DIR,
    HANDOFF_SNAPSHOT (default <plans>/registry_snapshot.json), HANDOFF_VALIDATE_PLANS (1/0, default 1),
    HANDOFF_RECONCILE_SCHEDULE (a cron or preset: adds the maintenance DAG handoff_reconcile; needs
    HANDOFF_REGISTRY_URL), HANDOFF_CACHE_DIR (where plans that passed validation are remembered;
    default $XDG_CACHE_HOME/handoff or ~/.cache/handoff).
    """
    plans_dir = os.environ.get("HANDOFF_PLANS_DIR")
    projects_dir = os.environ.get("HANDOFF_DBT_PROJECTS_DIR")
    if not plans_dir or not projects_dir:
        raise HandoffError("HANDOFF_PLANS_DIR and HANDOFF_DBT_PROJECTS_DIR must be set",
                           where="handoff DAG file", hint="see docs/deployment.md")
    from .callbacks import on_model_success

    parsing = get_parsing_context()
    only = parsing.dag_id
    sweep_schedule = os.environ.get("HANDOFF_RECONCILE_SCHEDULE")
    if sweep_schedule and only in (None, MAINTENANCE_DAG_ID):
        registry_url = os.environ.get("HANDOFF_REGISTRY_URL")
        if not registry_url:
            raise HandoffError("HANDOFF_RECONCILE_SCHEDULE is set but HANDOFF_REGISTRY_URL is not",
                               where="handoff DAG file", hint="see docs/deployment.md")
        if only == MAINTENANCE_DAG_ID:
            return {MAINTENANCE_DAG_ID: maintenance_dag(sweep_schedule, registry_url)}
    dags = load_dags(
        plans_dir,
        dbt_projects_dir=projects_dir,
        profiles_dir=os.environ.get("HANDOFF_DBT_PROFILES_DIR"),
        snapshot_path=os.environ.get("HANDOFF_SNAPSHOT"),
        only_dag_id=only,
        only_task_id=parsing.task_id if only else None,
        validate=os.environ.get("HANDOFF_VALIDATE_PLANS", "1") != "0",
        on_success=on_model_success,
    )
    if sweep_schedule and only is None:
        dags[MAINTENANCE_DAG_ID] = maintenance_dag(sweep_schedule, os.environ["HANDOFF_REGISTRY_URL"])
    return dags
