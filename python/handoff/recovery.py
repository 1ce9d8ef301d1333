"""Late-completion recovery: when an upstream model task succeeds, satisfy the sensors waiting on it.

Flow (docs/recovery.md):
1. The public model's task succeeds; its ``on_success_callback`` (handoff.airflow.callbacks)
   records the completion in the registry and calls ``reconcile_completion``.
2. For every sensor registered on that upstream task (``Registry.sensors_waiting_on_task``),
   the downstream runs whose aligned upstream date is this run's logical date are looked up
   through Airflow's REST API v2.
3. A sensor still waiting, up for reschedule/retry, or already failed (timeout) or skipped
   (soft_fail) is set to success with one PATCH; Airflow then clears what the sensor's failure
   blocked and the scheduler runs it. A sensor already in success was satisfied by its own poke.
4. Each decision is recorded in the registry (``sensor_resolutions``): explain shows it.

Everything is idempotent: a second callback or sweep for the same completion finds the
sensors in success (or the PATCH answers 409) and records nothing twice. Errors never
propagate into the upstream task: the callback logs them and ``handoff reconcile`` catches up.
This module imports neither Airflow nor dbt.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import datetime, timedelta, timezone
from typing import Any, Iterable

from .airflow_api import AirflowApi
from .alignment import reference_date, upstream_logical_date, upstream_window
from .errors import HandoffError
from .redact import get_logger
from .registry import Registry

log = get_logger(__name__)

# Sensor states that recovery turns into success. "running" covers a sensor in poke mode
# (Airflow stops the running try when its state is changed under it); None: not started yet.
SATISFIABLE = frozenset({None, "none", "scheduled", "queued", "running", "up_for_reschedule",
                         "up_for_retry", "deferred", "restarting", "failed", "skipped"})


@dataclass(frozen=True)
class Action:
    """What reconciliation did with one downstream sensor of one run."""

    dag_id: str
    run_id: str
    sensor_task_id: str
    previous_state: str | None
    action: str  # "satisfied" | "already_satisfied" | "left" (a state recovery never touches)
    upstream: str

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _parse_time(value: Any) -> datetime | None:
    if not value:
        return None
    moment = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)


def run_reference_date(run: dict[str, Any]) -> datetime | None:
    """A DAG run's alignment date from its API form: logical_date, else run_after."""
    logical, after = _parse_time(run.get("logical_date")), _parse_time(run.get("run_after"))
    if logical is None and after is None:
        return None
    return reference_date(logical, after or logical)  # type: ignore[arg-type]


def reconcile_completion(registry: Registry, api: AirflowApi, upstream_dag_id: str, upstream_task_id: str,
                         upstream_date: datetime, *, completion_id: int | None = None) -> list[Action]:
    """Satisfy every downstream sensor waiting on ``upstream_dag_id.upstream_task_id`` at ``upstream_date``."""
    actions: list[Action] = []
    for wait in registry.sensors_waiting_on_task(upstream_dag_id, upstream_task_id):
        window = upstream_window(upstream_date, wait.upstream_schedule)
        if window is None:
            continue  # not an upstream tick (a manual run on no schedule date): nobody waits on it
        start, end = window
        runs = api.list_dag_runs(wait.dag_id, logical_date_gte=start,
                                 logical_date_lte=end - timedelta(microseconds=1))
        for run in runs:
            moment = run_reference_date(run)
            if moment is None or upstream_logical_date(moment, wait.upstream_schedule) != start:
                continue
            actions.append(_satisfy(registry, api, wait.dag_id, run["dag_run_id"], wait.sensor_task_id,
                                    f"{upstream_dag_id}.{upstream_task_id}", completion_id))
    return actions


def _satisfy(registry: Registry, api: AirflowApi, dag_id: str, run_id: str, sensor: str, upstream: str,
             completion_id: int | None) -> Action:
    try:
        state = api.get_task_instance(dag_id, run_id, sensor).get("state")
    except HandoffError as exc:
        if "404" in str(exc):
            return Action(dag_id, run_id, sensor, None, "left", upstream)  # the run has no such task
        raise
    if state == "success":
        registry.record_resolution(dag_id, run_id, sensor, how="poke", completion_id=completion_id,
                                   previous_state=None)
        return Action(dag_id, run_id, sensor, state, "already_satisfied", upstream)
    if state not in SATISFIABLE:
        return Action(dag_id, run_id, sensor, state, "left", upstream)
    changed = api.set_task_state(dag_id, run_id, sensor, "success",
                                 note=f"handoff: {upstream} completed; satisfied by reconciliation")
    registry.record_resolution(dag_id, run_id, sensor, how="reconcile" if changed else "poke",
                               completion_id=completion_id, previous_state=state)
    log.info("handoff: %s.%s in %s was %s: set to success (%s completed)", dag_id, sensor, run_id, state, upstream)
    return Action(dag_id, run_id, sensor, state, "satisfied" if changed else "already_satisfied", upstream)


def handle_completion(registry: Registry, api: AirflowApi | None, *, dag_id: str, task_id: str, run_id: str,
                      logical_date: datetime | None, run_after: datetime | None,
                      source: str = "callback") -> list[Action]:
    """Record one upstream completion, then reconcile its downstream sensors (if an API is given)."""
    moment = reference_date(logical_date, run_after or logical_date)  # type: ignore[arg-type]
    completion = registry.record_completion(dag_id, task_id, run_id, moment, source=source)
    if api is None:
        return []
    return reconcile_completion(registry, api, dag_id, task_id, moment, completion_id=completion.id)


def sweep(registry: Registry, api: AirflowApi, *, since: datetime) -> list[Action]:
    """Reconcile every upstream task with consumers that succeeded since ``since`` (any cause:
    a normal run, a manual fix in the UI, a callback that could not reach the API)."""
    upstream_tasks = sorted({(s.upstream_dag_id, s.upstream_task_id) for s in _all_waits(registry)})
    actions: list[Action] = []
    for dag_id, task_id in upstream_tasks:
        for ti in api.recent_successes(since, dag_id=dag_id, task_id=task_id):
            run = api.get_dag_run(dag_id, ti["dag_run_id"])
            moment = run_reference_date(run)
            if moment is None:
                continue
            actions.extend(handle_completion(registry, api, dag_id=dag_id, task_id=task_id, run_id=ti["dag_run_id"],
                                             logical_date=moment, run_after=moment, source="sweep"))
    return actions


def _all_waits(registry: Registry) -> Iterable[Any]:
    mesh = registry.mesh()
    seen: set[tuple[str, str]] = set()
    for task in mesh.tasks():
        if task.is_sensor:
            key = (task.upstream_domain, task.upstream_model)
            if key not in seen:
                seen.add(key)
                yield from registry.sensors_waiting_on(*key)


def find_completion(registry: Registry, dag_id: str, task_id: str, logical_date: datetime) -> Any:
    """The recorded completion of ``dag_id.task_id`` for its run at ``logical_date`` (or None)."""
    return next((c for c in registry.completions(dag_id=dag_id, task_id=task_id, limit=1000)
                 if c.logical_date == logical_date), None)


def run_state(registry: Registry, explained: dict[str, Any], at: datetime,
              api: AirflowApi | None = None) -> dict[str, Any]:
    """"Why did (or didn't) this run?": for the run of the model's DAG at ``at`` (the latest tick
    of its schedule at or before ``at``), each sensor upstream of the model — the upstream run it
    waits for, whether that run's completion was recorded, and whether and how the sensor was
    satisfied. With ``api``, the live state of each sensor too. ``explained`` is Registry.explain()."""
    dag_id = explained["pipeline"]["dag_id"]
    run_date = upstream_logical_date(at, explained["pipeline"]["schedule"])
    live_runs = _runs_at(api, dag_id, run_date) if api is not None else []
    sensors = []
    for wait in explained["waits_on"]:
        entry: dict[str, Any] = {"sensor_task_id": wait["sensor_task_id"],
                                 "upstream": f"{wait['upstream_domain']}.{wait['upstream_model']}"}
        target = wait.get("upstream")
        if not target:
            entry.update(verdict="unresolved", why=wait.get("problem") or "the upstream model is not published")
            sensors.append(entry)
            continue
        upstream_date = upstream_logical_date(run_date, target["schedule"])
        entry["upstream_task"] = f"{target['dag_id']}.{target['task_id']}"
        entry["upstream_run_date"] = upstream_date.isoformat()
        completion = find_completion(registry, target["dag_id"], target["task_id"], upstream_date)
        resolution = None
        if completion is not None:
            entry["upstream_completed_at"] = completion.completed_at.isoformat()
            entry["recorded_by"] = completion.source
            resolution = next((r for r in registry.resolutions(dag_id=dag_id, completion_id=completion.id)
                               if r.sensor_task_id == wait["sensor_task_id"]), None)
        if resolution is not None:
            entry.update(verdict=f"satisfied by {resolution.how}", resolved_at=resolution.resolved_at.isoformat(),
                         state_before=resolution.previous_state)
        elif completion is not None:
            entry.update(verdict="upstream done, sensor not recorded as satisfied",
                         why="if it is still waiting or timed out, `handoff reconcile` satisfies it")
        else:
            entry.update(verdict="waiting on upstream",
                         why=f"no completion recorded for {entry['upstream_task']} at {upstream_date.isoformat()}")
        if live_runs:
            entry["live_states"] = {run["dag_run_id"]: _live_state(api, dag_id, run["dag_run_id"], wait["sensor_task_id"])
                                    for run in live_runs}
        sensors.append(entry)
    return {"dag_id": dag_id, "at": at.isoformat(), "run_logical_date": run_date.isoformat(),
            "runs": [r["dag_run_id"] for r in live_runs], "sensors": sensors}


def _runs_at(api: AirflowApi | None, dag_id: str, run_date: datetime) -> list[dict[str, Any]]:
    if api is None:
        return []
    return api.list_dag_runs(dag_id, logical_date_gte=run_date, logical_date_lte=run_date)


def _live_state(api: AirflowApi | None, dag_id: str, run_id: str, task_id: str) -> str | None:
    assert api is not None
    try:
        return api.get_task_instance(dag_id, run_id, task_id).get("state")
    except HandoffError:
        return None


def api_if_configured() -> AirflowApi | None:
    """The API client when HANDOFF_AIRFLOW_API_URL is set (explain's live states), else None."""
    import os

    from .airflow_api import ENV_URL

    return AirflowApi.from_env() if os.environ.get(ENV_URL) else None


def run_state_text(state: dict[str, Any]) -> str:
    """run_state() for people."""
    lines = [f"\nRun of {state['dag_id']} at {state['run_logical_date']}"
             + (f" (runs: {', '.join(state['runs'])})" if state["runs"] else "") + ":"]
    if not state["sensors"]:
        lines.append("  waits on no other DAG: nothing to explain")
    for s in state["sensors"]:
        lines.append(f"  {s['sensor_task_id']} -> {s['upstream']}: {s['verdict']}")
        if "upstream_task" in s:
            done = (f"completed {s['upstream_completed_at']} (recorded by {s['recorded_by']})"
                    if "upstream_completed_at" in s else "no completion recorded")
            lines.append(f"    upstream run {s['upstream_task']} at {s['upstream_run_date']}: {done}")
        if "resolved_at" in s:
            before = (f"the sensor was {s['state_before'] or 'not started'}" if s["verdict"] == "satisfied by reconcile"
                      else "the sensor saw the upstream itself")
            lines.append(f"    satisfied at {s['resolved_at']} ({before})")
        if "why" in s:
            lines.append(f"    {s['why']}")
        for run_id, live in (s.get("live_states") or {}).items():
            lines.append(f"    live: {run_id}: {live}")
    return "\n".join(lines) + "\n"
