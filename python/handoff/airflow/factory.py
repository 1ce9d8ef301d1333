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

import collections
import contextlib
import functools
import gc
import inspect
import os
from collections.abc import Callable, Iterator, Mapping
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from airflow.sdk import DAG, BaseOperator, CronTriggerTimetable, get_parsing_context

from ..batching import BATCH_TASK_ID, batched_models
from ..errors import HandoffError
from ..plan_model import DbtTask, Hooks, Plan, PlanPipeline, PlanTask, SensorTask
from ..ticks import local_aware, to_cron, zone
from .callbacks import on_model_failed, on_model_failure, on_sensor_failure, on_sensor_success
from .dbt_runner import DbtProject
from .deployment import (
    PLAN_SUFFIX,
    SNAPSHOT_NAME,
    UpstreamTask,
    builds_a_sensor,
    plan_upstreams,
    read_deployment,
    snapshot_upstreams,
    warn,
)
from .operators import (
    CrossDomainSensor,
    DbtHooksOperator,
    DbtNodeOperator,
    ReconcileOperator,
    SlaWatchOperator,
    UnresolvedUpstream,
)
from .templates import copy_of, usable

__all__ = ["PLAN_SUFFIX", "SNAPSHOT_NAME", "build_dag", "dags_from_env", "load_dags", "maintenance_dag",
           "plan_upstreams", "snapshot_upstreams"]

Callback = Callable[[Any], None]
# (owner, retries, retry_delay_s, timeout_s, pool) -> the model task copies are made of (None: none)
Templates = dict[tuple[str, int, int, int | None, str | None], DbtNodeOperator | None]


def build_dag(plan: Plan, pipeline: PlanPipeline, *, project: DbtProject,
              upstreams: Mapping[tuple[str, str], UpstreamTask],
              on_success: Callback | None = None, only_task_id: str | None = None) -> DAG:
    """One pipeline of a plan as a DAG. ``upstreams`` maps (domain, model) to the task a sensor
    waits on (the registry snapshot). ``only_task_id`` (a worker) builds just that task, without
    edges; the whole DAG when the pipeline has no such task."""
    domain = plan.domain
    tz = pipeline.timezone
    dag = DAG(
        dag_id=pipeline.dag_id,
        schedule=CronTriggerTimetable(to_cron(pipeline.schedule), timezone=tz),
        start_date=local_aware(datetime.fromisoformat(pipeline.start_date), zone(tz)),
        catchup=False,
        max_active_runs=pipeline.max_active_runs,
        description=f"{domain.name} / {pipeline.name} (owner {domain.owner}, {domain.slack})",
        tags=["handoff", f"domain:{domain.name}"],
        default_args={"owner": domain.owner},
    )
    specs = pipeline.tasks
    if only_task_id is not None:
        mine = [spec for spec in specs if spec.task_id == only_task_id]
        if mine:
            _task(dag, pipeline, mine[0], project, upstreams, on_success)
            return dag
    tasks: dict[str, BaseOperator] = {}
    templates: Templates = {}
    for spec in specs:
        tasks[spec.task_id] = _task(dag, pipeline, spec, project, upstreams, on_success, templates)
    for spec in specs:
        downstream = tasks[spec.task_id]
        for upstream_id in spec.upstream:
            _wire(tasks[upstream_id], downstream)
    if pipeline.execution == "batched":
        _add_batch(dag, pipeline, project, tasks, domain.owner)
    _hook_tasks(dag, plan, pipeline, tasks, project)
    return dag


def _add_batch(dag: DAG, pipeline: PlanPipeline, project: DbtProject, tasks: dict[str, BaseOperator],
               owner: str) -> None:
    """The batch task, upstream of every model task it runs (docs/execution.md)."""
    from .batch import batch_task

    if BATCH_TASK_ID in tasks:
        raise HandoffError(f"pipeline {pipeline.name}: a task is named {BATCH_TASK_ID}, which batched "
                           "execution reserves", hint="rename the model, or use `execution: per_task`")
    pool, models = batched_models(pipeline)
    if not models:
        return
    batch = batch_task(dag, project=project, pool=pool, models=models, owner=owner, schedule=pipeline.schedule,
                       schedule_timezone=pipeline.timezone)
    for model in models:
        batch.downstream_task_ids.add(model.task_id)
        tasks[model.task_id].upstream_task_ids.add(BATCH_TASK_ID)


def _wire(upstream: BaseOperator, downstream: BaseOperator) -> None:
    """What `upstream >> downstream` does, without hashing the DAG per edge (module doc)."""
    upstream.downstream_task_ids.add(downstream.task_id)
    downstream.upstream_task_ids.add(upstream.task_id)


def _hook_tasks(dag: DAG, plan: Plan, pipeline: PlanPipeline, tasks: Mapping[str, BaseOperator],
                project: DbtProject) -> None:
    """The project's hooks once per DAG run: on-run-start as the setup task of every dbt task,
    on-run-end as their teardown (runs when they are done, whatever their state; docs/plan.md)."""
    hooks = plan.hooks or Hooks()
    if not hooks.on_run_start and not hooks.on_run_end:
        return
    dbt_tasks = [tasks[t.task_id] for t in pipeline.dbt_tasks()]
    batch = dag.task_dict.get(BATCH_TASK_ID)
    if isinstance(batch, BaseOperator):  # batched execution: the batch runs the models, after the hooks
        dbt_tasks.append(batch)
    node_ids = [t.unique_id for t in pipeline.dbt_tasks()]
    interval = {"schedule": pipeline.schedule, "schedule_timezone": pipeline.timezone}
    setup = teardown = None
    if hooks.on_run_start:
        setup = DbtHooksOperator(task_id="on-run-start", dag=dag, project=project, retries=0,
                                 hook_ids=list(hooks.on_run_start), **interval).as_setup()  # type: ignore[no-untyped-call]
        for task in dbt_tasks:
            _wire(setup, task)
    if hooks.on_run_end:
        teardown = DbtHooksOperator(task_id="on-run-end", dag=dag, project=project, retries=0,
                                    hook_ids=list(hooks.on_run_end), node_ids=node_ids, **interval)
        # Not on_failure_fail_dagrun: with it, Airflow judges the run by the teardown alone (the dbt tasks
        # stop being leaves) and a run with failed models ends "success" (seen in tests/test_corpus.py).
        teardown.as_teardown()
        for task in dbt_tasks:
            _wire(task, teardown)
        if setup is not None:
            _wire(setup, teardown)


def _task(dag: DAG, pipeline: PlanPipeline, spec: PlanTask, project: DbtProject,
          upstreams: Mapping[tuple[str, str], UpstreamTask], on_success: Callback | None,
          templates: Templates | None = None) -> BaseOperator:
    if isinstance(spec, SensorTask):
        target = upstreams.get((spec.upstream_domain, spec.upstream_model))
        common: dict[str, Any] = {"task_id": spec.task_id, "dag": dag, "upstream_domain": spec.upstream_domain,
                                  "upstream_model": spec.upstream_model}
        if target is None:
            return UnresolvedUpstream(retries=0, **common)
        return CrossDomainSensor(
            upstream_dag_id=target.dag_id, upstream_task_id=target.task_id,
            upstream_schedule=target.schedule, upstream_timezone=target.timezone or "UTC",
            mode="poke" if spec.mode == "deferrable" else spec.mode, deferrable=spec.mode == "deferrable",
            poke_interval=spec.poke_interval_s, timeout=spec.timeout_s, retries=0,
            on_success_callback=on_sensor_success if on_success is not None else None,
            on_failure_callback=on_sensor_failure if on_success is not None else None,
            **common,
        )
    if templates is None:
        return _dbt_task(dag, pipeline, spec, project, on_success)
    # model tasks with the same settings: the first built by Airflow's constructor, the others
    # copied from it (handoff.airflow.templates; docs/decisions.md D38)
    key = (spec.owner, spec.retries, spec.retry_delay_s, spec.timeout_s, spec.pool)
    template = templates.get(key)
    if template is not None:
        return copy_of(template, dag, task_id=spec.task_id, unique_id=spec.unique_id, tests=spec.tests,
                       microbatch=spec.microbatch)
    task = _dbt_task(dag, pipeline, spec, project, on_success)
    if key not in templates:
        templates[key] = task if usable(task) else None
    return task


def _dbt_task(dag: DAG, pipeline: PlanPipeline, spec: DbtTask, project: DbtProject,
              on_success: Callback | None) -> DbtNodeOperator:
    # Only what differs from BaseOperator's own defaults is passed: each argument costs Airflow's
    # __setattr__ and bookkeeping, and the defaults give the same task (docs/benchmarks.md).
    kwargs: dict[str, Any] = {"task_id": spec.task_id, "dag": dag, "owner": spec.owner}
    defaults = _operator_defaults()
    if spec.retries != defaults["retries"]:
        kwargs["retries"] = spec.retries
    retry_delay = _seconds(spec.retry_delay_s)
    if retry_delay != defaults["retry_delay"]:
        kwargs["retry_delay"] = retry_delay
    timeout = _seconds(spec.timeout_s) if spec.timeout_s else None
    if timeout != defaults["execution_timeout"]:  # None too, when Airflow's config sets a default
        kwargs["execution_timeout"] = timeout
    if spec.pool:  # None is Airflow's default_pool
        kwargs["pool"] = spec.pool
    if on_success is not None:
        kwargs["on_success_callback"] = on_success
        # a failed try supersedes an earlier try's completion (docs/recovery.md); the last one also
        # tells the consumers their runs are blocked (docs/notifications.md)
        kwargs["on_failure_callback"] = on_model_failed
        kwargs["on_retry_callback"] = on_model_failure
    return DbtNodeOperator.for_node(project=project, unique_id=spec.unique_id, tests=spec.tests,
                                    schedule=pipeline.schedule, schedule_timezone=pipeline.timezone,
                                    microbatch=spec.microbatch, **kwargs)


@functools.cache
def _operator_defaults() -> dict[str, Any]:
    """BaseOperator's defaults as this Airflow (and its config: default_task_retries...) sets them."""
    return {name: param.default for name, param in inspect.signature(BaseOperator.__init__).parameters.items()}


@functools.lru_cache(maxsize=256)
def _seconds(seconds: int) -> timedelta:
    """One timedelta per distinct value (tasks of a plan share a handful)."""
    return timedelta(seconds=seconds)


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

    One bad input costs only itself (``deployment.read_deployment`` lists what is refused): a plan
    that is refused, or whose DAGs fail to build for any reason, is skipped with a warning naming
    its file and the reason (Airflow shows it as a DAG-file warning); an unusable snapshot leaves
    cross-domain sensors unresolved. Only an unusable plans folder raises (there is nothing to load).
    """
    deployment = read_deployment(plans_dir, dbt_projects_dir=dbt_projects_dir, profiles_dir=profiles_dir,
                                 snapshot_path=snapshot_path, only_dag_id=only_dag_id,
                                 only_task_id=only_task_id if only_dag_id else None, validate=validate)
    dags: dict[str, DAG] = {}
    with _no_gc_pauses():
        for deployed in deployment.plans:
            built: dict[str, DAG] = {}
            # the domain's own models from its own plan, other domains' from the snapshot (or the
            # plans side by side): the same rule in every parse (docs/plan.md, versions)
            # (a plan whose DAGs built here have no sensor resolves nothing: no map is built)
            upstreams: Mapping[tuple[str, str], UpstreamTask] = deployment.upstreams
            try:
                if builds_a_sensor(deployed.plan, only_dag_id, only_task_id if only_dag_id else None):
                    upstreams = collections.ChainMap(plan_upstreams([deployed.plan]), deployment.upstreams)
                for pipeline in deployed.plan.pipelines:
                    if only_dag_id is not None and pipeline.dag_id != only_dag_id:
                        continue
                    built[pipeline.dag_id] = build_dag(deployed.plan, pipeline, project=deployed.project,
                                                          upstreams=upstreams, on_success=on_success,
                                                          only_task_id=only_task_id if only_dag_id else None)
            except Exception as exc:  # noqa: BLE001 - any failure of one plan must cost only that plan
                detail = exc.one_line() if isinstance(exc, HandoffError) else f"{type(exc).__name__}: {exc}"
                warn(f"handoff: skipped {deployed.path.name}: {deployed.path}: its DAGs cannot be built "
                     f"({' '.join(detail.split())[:400]}) — re-compile it with `handoff compile` and check it "
                     "with `handoff inspect`")
                continue
            dags.update(built)
    return dags


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


SLA_WATCH_DAG_ID = "handoff_sla_watch"


def sla_watch_dag(schedule: str, registry_url: str) -> DAG:
    """A DAG whose one task watches every model's SLA deadlines (docs/notifications.md): each run
    covers the time until the next tick of ``schedule`` (e.g. @hourly), sleeping in the triggerer
    between deadlines."""
    from ..ticks import next_tick, schedule_of

    start = datetime(2024, 1, 1, tzinfo=timezone.utc)
    cadence = schedule_of(schedule, "UTC")
    first = next_tick(cadence, start)
    window = next_tick(cadence, first) - first  # one run watches until the next one starts
    dag = DAG(dag_id=SLA_WATCH_DAG_ID, schedule=CronTriggerTimetable(to_cron(schedule), timezone="UTC"),
              start_date=start, catchup=False, max_active_runs=1,
              description="handoff: tell owners and consumers when a model misses its SLA",
              tags=["handoff", "maintenance"])
    SlaWatchOperator(task_id="watch", dag=dag, registry_url=registry_url, window=window, retries=1,
                     retry_delay=timedelta(seconds=30))
    return dag


def dags_from_env() -> dict[str, DAG]:
    """What the DAG file in the dags folder calls. Settings (environment):

    HANDOFF_PLANS_DIR (required), HANDOFF_DBT_PROJECTS_DIR (required), HANDOFF_DBT_PROFILES_DIR,
    HANDOFF_SNAPSHOT (default <plans>/registry_snapshot.json), HANDOFF_VALIDATE_PLANS (1/0, default 1),
    HANDOFF_RECONCILE_SCHEDULE (a cron or preset: adds the maintenance DAG handoff_reconcile; needs
    HANDOFF_REGISTRY_URL), HANDOFF_SLA_WATCH_SCHEDULE (e.g. @hourly: adds the SLA watch DAG
    handoff_sla_watch; needs HANDOFF_REGISTRY_URL), HANDOFF_CACHE_DIR (where plans that passed
    validation are remembered; default $XDG_CACHE_HOME/handoff or ~/.cache/handoff).
    """
    plans_dir = os.environ.get("HANDOFF_PLANS_DIR")
    projects_dir = os.environ.get("HANDOFF_DBT_PROJECTS_DIR")
    if not plans_dir or not projects_dir:
        raise HandoffError("HANDOFF_PLANS_DIR and HANDOFF_DBT_PROJECTS_DIR must be set",
                           where="handoff DAG file", hint="see docs/deployment.md")
    from .callbacks import on_model_success

    parsing = get_parsing_context()
    only = parsing.dag_id
    if only in MAINTENANCE_DAGS:
        found = _maintenance_from_env(only)
        return {only: found} if found is not None else {}
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
    if only is None:
        for dag_id in MAINTENANCE_DAGS:
            found = _maintenance_from_env(dag_id)
            if found is not None:
                dags[dag_id] = found
    return dags


# maintenance DAG id -> (the setting that adds it: its schedule, how to build it)
MAINTENANCE_DAGS: dict[str, tuple[str, Callable[[str, str], DAG]]] = {
    MAINTENANCE_DAG_ID: ("HANDOFF_RECONCILE_SCHEDULE", lambda schedule, url: maintenance_dag(schedule, url)),
    SLA_WATCH_DAG_ID: ("HANDOFF_SLA_WATCH_SCHEDULE", sla_watch_dag),
}


def _maintenance_from_env(dag_id: str) -> DAG | None:
    """A maintenance DAG if its setting asks for it, or None — with a warning when its settings are
    unusable (the plans' DAGs load either way)."""
    setting, build = MAINTENANCE_DAGS[dag_id]
    schedule = os.environ.get(setting)
    if not schedule:
        return None
    registry_url = os.environ.get("HANDOFF_REGISTRY_URL")
    if not registry_url:
        warn(f"handoff: skipped the maintenance DAG {dag_id}: {setting} is set but HANDOFF_REGISTRY_URL is not "
             "— see docs/deployment.md")
        return None
    try:
        return build(schedule, registry_url)
    except Exception as exc:  # noqa: BLE001 - a bad setting costs only the maintenance DAG
        detail = exc.one_line() if isinstance(exc, HandoffError) else f"{type(exc).__name__}: {exc}"
        warn(f"handoff: skipped the maintenance DAG {dag_id}: {setting}: {detail}")
        return None
