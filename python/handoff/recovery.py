"""Late-completion recovery: when an upstream model task succeeds, satisfy the sensors waiting on it —
unless a person decided otherwise.

Flow (docs/recovery.md):
1. The public model's task succeeds; its ``on_success_callback`` (handoff.airflow.callbacks)
   records the completion of that try in the registry and calls ``reconcile_completion``.
2. The completion must still be the upstream task instance's latest try, in success (a try
   cleared and re-run supersedes it): otherwise nothing is touched.
3. For every sensor registered on that upstream task (``Registry.sensors_waiting_on_task``), the
   downstream runs whose aligned upstream date is this run's logical date are looked up through
   Airflow's REST API v2, and the recovery rule (``recovery_rule.decide``) judges each sensor: a
   waiting sensor, or one failed by its own timeout, is set to success with one PATCH (Airflow then
   clears what its failure blocked); a skipped sensor, or one a person failed (or whose run a person
   failed), is left alone and the refusal recorded with its reason.
4. Exactly once: the PATCH is sent only by whoever claims the sensor's try in the registry (a
   unique row), so racing callbacks and sweeps send one PATCH and record one resolution.

Errors never propagate into the upstream task: the callback logs them and ``handoff reconcile``
catches up. This module imports neither Airflow nor dbt.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta
from typing import Any

from .airflow_api import AirflowApi
from .alignment import reference_date, upstream_logical_date, upstream_window
from .errors import HandoffError
from .plan.graph import reachable
from .recovery_rule import RUN_STATE_EVENTS, Verdict, decide, needs_events, parse_time
from .redact import get_logger, redact
from .registry import Registry
from .registry.queries import SensorWait
from .registry.run_state import Completion

log = get_logger(__name__)


@dataclass(frozen=True)
class Action:
    """What reconciliation did with one downstream sensor of one run (``run_id`` "" when it did
    not get as far as a run: the completion was superseded)."""

    dag_id: str
    run_id: str
    sensor_task_id: str
    previous_state: str | None
    action: str  # "satisfied" | "already_satisfied" | "left"
    upstream: str
    reason: str = ""  # recovery_rule codes, or "superseded" / "claimed" / "no_such_task"
    detail: str = ""

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def run_reference_date(run: Mapping[str, Any]) -> datetime | None:
    """A DAG run's (or task instance's) alignment date from its API form: logical_date, else run_after."""
    logical, after = parse_time(run.get("logical_date")), parse_time(run.get("run_after"))
    if logical is None and after is None:
        return None
    return reference_date(logical, after or logical)  # type: ignore[arg-type]


# -- completions: which try of the upstream counts ------------------------------------------------

def completion_tries(registry: Registry, dag_id: str, task_id: str, logical_date: datetime) -> list[Completion]:
    """Every recorded try of ``dag_id.task_id`` for its run at ``logical_date``, oldest first."""
    found = registry.completions(dag_id=dag_id, task_id=task_id, logical_date=logical_date, limit=1000)
    return sorted(found, key=lambda c: c.id)


def current_completion(tries: list[Completion]) -> Completion | None:
    """The completion recovery may use: the latest recorded try, if it succeeded."""
    return tries[-1] if tries and tries[-1].state == "success" else None


def find_completion(registry: Registry, dag_id: str, task_id: str, logical_date: datetime) -> Completion | None:
    """The current completion of ``dag_id.task_id`` for its run at ``logical_date`` (or None)."""
    return current_completion(completion_tries(registry, dag_id, task_id, logical_date))


def superseded_by(registry: Registry, api: AirflowApi, completion: Completion) -> str | None:
    """Why ``completion`` no longer stands (its task instance was cleared and re-run: a later try,
    or a state other than success), or None when it is still the latest successful try. A later
    try found failed is recorded, so `handoff explain --at` knows without the API."""
    live = api.find_task_instance(completion.dag_id, completion.run_id, completion.task_id)
    if live is None:
        return f"run {completion.run_id} of {completion.dag_id} no longer has {completion.task_id}"
    try_number, state = int(live.get("try_number") or 0), live.get("state")
    if try_number == completion.try_number and state == "success":
        return None
    if state == "failed" and try_number > completion.try_number:
        registry.record_completion(completion.dag_id, completion.task_id, completion.run_id,
                                   completion.logical_date, try_number=try_number, state="failed",
                                   completed_at=parse_time(live.get("end_date")), source="sweep")
    return (f"try {completion.try_number} of {completion.dag_id}.{completion.task_id} is superseded: "
            f"the task instance is at try {try_number}, {state or 'not started'}")


# -- reconciling one completion ---------------------------------------------------------------------

def reconcile_completion(registry: Registry, api: AirflowApi, completion: Completion) -> list[Action]:
    """Satisfy every downstream sensor waiting on ``completion`` that the recovery rule allows."""
    upstream = f"{completion.dag_id}.{completion.task_id}"
    waits = registry.sensors_waiting_on_task(completion.dag_id, completion.task_id)
    if not waits or completion.logical_date is None or completion.state != "success":
        return []
    stale = superseded_by(registry, api, completion)
    if stale is not None:
        log.info("handoff: %s; nothing satisfied", stale)
        return [Action(w.dag_id, "", w.sensor_task_id, None, "left", upstream, "superseded", stale) for w in waits]
    actions: list[Action] = []
    for wait in waits:
        try:
            runs = aligned_runs(api, wait, completion.logical_date)
        except HandoffError as exc:  # e.g. a consumer published but not deployed here (404): costs only itself
            log.warning("handoff: runs of %s waiting on %s not read: %s", wait.dag_id, upstream, exc.one_line())
            continue
        for run in runs:
            actions.append(reconcile_sensor(registry, api, wait, run, completion))
    return actions


def aligned_runs(api: AirflowApi, wait: SensorWait, upstream_date: datetime) -> list[dict[str, Any]]:
    """The runs of ``wait``'s DAG whose sensor waits for the upstream run at ``upstream_date``."""
    window = upstream_window(upstream_date, wait.upstream_schedule, wait.upstream_timezone)
    if window is None:
        return []  # not an upstream tick (a manual run on no schedule date): nobody waits on it
    start, end = window
    runs = api.list_dag_runs(wait.dag_id, logical_date_gte=start, logical_date_lte=end - timedelta(microseconds=1))
    return [run for run in runs if (moment := run_reference_date(run)) is not None
            and upstream_logical_date(moment, wait.upstream_schedule, wait.upstream_timezone) == start]


def reconcile_sensor(registry: Registry, api: AirflowApi, wait: SensorWait, run: Mapping[str, Any],
                     completion: Completion) -> Action:
    """Judge one sensor of one run and act on the verdict: claim + PATCH, or record the refusal."""
    upstream = f"{completion.dag_id}.{completion.task_id}"
    dag_id, run_id, sensor = wait.dag_id, str(run["dag_run_id"]), wait.sensor_task_id
    ti = api.find_task_instance(dag_id, run_id, sensor)
    if ti is None:
        return Action(dag_id, run_id, sensor, None, "left", upstream, "no_such_task", "the run has no such task")
    state, try_number, run_date = ti.get("state"), int(ti.get("try_number") or 0), run_reference_date(run)
    verdict = _verdict(api, wait, run, ti)
    if verdict.action == "already_satisfied":
        registry.record_resolution(dag_id, run_id, sensor, how="poke", try_number=try_number,
                                   completion_id=completion.id, run_logical_date=run_date)
        return Action(dag_id, run_id, sensor, state, "already_satisfied", upstream, verdict.reason, verdict.detail)
    if verdict.action == "leave":
        registry.record_refusal(dag_id, run_id, sensor, try_number=try_number, reason=verdict.reason,
                                detail=verdict.detail, run_logical_date=run_date, completion_id=completion.id,
                                sensor_state=state, run_state=run.get("state"), actor=verdict.actor,
                                acted_at=verdict.acted_at)
        log.info("handoff: %s.%s in %s left alone: %s", dag_id, sensor, run_id, verdict.detail)
        return Action(dag_id, run_id, sensor, state, "left", upstream, verdict.reason, verdict.detail)
    claim = registry.claim_resolution(dag_id, run_id, sensor, try_number=try_number, completion_id=completion.id,
                                      previous_state=state, run_logical_date=run_date)
    if claim is None:
        return Action(dag_id, run_id, sensor, state, "already_satisfied", upstream, "claimed",
                      "another callback or sweep satisfied it, or is doing so")
    try:
        changed = api.set_task_state(dag_id, run_id, sensor, "success",
                                     note=f"handoff: {upstream} try {completion.try_number} completed; "
                                          f"{verdict.detail}; satisfied by reconciliation")
    except BaseException:
        registry.release_resolution(claim)  # let the next callback or sweep try again
        raise
    registry.finish_resolution(claim, how="reconcile" if changed else "poke")
    log.info("handoff: %s.%s in %s was %s: set to success (%s completed)", dag_id, sensor, run_id, state, upstream)
    return Action(dag_id, run_id, sensor, state, "satisfied" if changed else "already_satisfied", upstream,
                  verdict.reason, verdict.detail)


def _verdict(api: AirflowApi, wait: SensorWait, run: Mapping[str, Any], ti: Mapping[str, Any]) -> Verdict:
    events: list[dict[str, Any]] = []
    if needs_events(ti.get("state"), run.get("state")):
        try:
            events = sensor_events(api, wait.dag_id, run, wait.sensor_task_id)
        except HandoffError as exc:
            return Verdict("leave", "event_log_unreadable",
                           f"cannot read Airflow's event log to tell who set the sensor {ti.get('state')} "
                           f"({redact(exc.problem)}): give handoff's API user read access to the audit log")
    verdict = decide(ti, run, events, timeout_s=wait.timeout_s)
    if verdict.action != "satisfy":
        return verdict
    try:
        below = failed_below(api, wait.dag_id, str(run["dag_run_id"]), wait.sensor_task_id)
    except HandoffError as exc:
        return Verdict("leave", "tasks_unreadable",
                       f"cannot read the run's tasks to tell whether a person marked one below the sensor "
                       f"({redact(exc.problem)})")
    return decide(ti, run, events, timeout_s=wait.timeout_s, below=below)


def failed_below(api: AirflowApi, dag_id: str, run_id: str, sensor_task_id: str) -> dict[str, str | None]:
    """The tasks downstream of the sensor that are ``failed`` in this run ({task_id: "failed"}): one
    request for the run's failed task instances, and the DAG's structure only when there is one."""
    failed = {str(t.get("task_id")) for t in api.list_task_instances(dag_id, run_id, states=["failed"])}
    failed.discard(sensor_task_id)
    if not failed:
        return {}
    children: dict[str, list[str]] = {}
    for task in api.list_tasks(dag_id):
        down = task.get("downstream_task_ids")
        children[str(task.get("task_id"))] = [str(d) for d in down] if isinstance(down, list) else []
    below = reachable(children.get(sensor_task_id, []), children)
    return dict.fromkeys(sorted(failed & below), "failed")


def sensor_events(api: AirflowApi, dag_id: str, run: Mapping[str, Any], sensor_task_id: str) -> list[dict[str, Any]]:
    """What the recovery rule reads: the sensor's events in this run, and the DAG's run-state
    changes since the run was queued (two requests)."""
    run_id = str(run["dag_run_id"])
    since = parse_time(run.get("queued_at"))
    return [*api.list_event_logs(dag_id, run_id=run_id, task_id=sensor_task_id),
            *api.list_event_logs(dag_id, events=sorted(RUN_STATE_EVENTS),
                                 after=since - timedelta(seconds=1) if since else None)]


# -- entry points: the callback and the sweep -------------------------------------------------------

def handle_completion(registry: Registry, api: AirflowApi | None, *, dag_id: str, task_id: str, run_id: str,
                      logical_date: datetime | None, run_after: datetime | None, try_number: int = 1,
                      source: str = "callback") -> list[Action]:
    """Record one upstream try's success, then reconcile its downstream sensors (if an API is given)."""
    moment = reference_date(logical_date, run_after or logical_date)  # type: ignore[arg-type]
    completion = registry.record_completion(dag_id, task_id, run_id, moment, try_number=try_number, source=source)
    if api is None:
        return []
    return reconcile_completion(registry, api, completion)


def sweep(registry: Registry, api: AirflowApi, *, since: datetime) -> list[Action]:
    """Reconcile every upstream task with consumers whose latest try succeeded since ``since`` (any
    cause: a normal run, a manual fix in the UI, a callback that could not reach the API)."""
    upstream_tasks = sorted({(s.upstream_dag_id, s.upstream_task_id) for s in _all_waits(registry)})
    actions: list[Action] = []
    for dag_id, task_id in upstream_tasks:
        for ti in api.recent_successes(since, dag_id=dag_id, task_id=task_id):
            moment = run_reference_date(ti)
            if moment is None:
                continue
            actions.extend(handle_completion(registry, api, dag_id=dag_id, task_id=task_id, run_id=ti["dag_run_id"],
                                             logical_date=moment, run_after=moment,
                                             try_number=_try_of(ti), source="sweep"))
    return actions


def _try_of(ti: Mapping[str, Any]) -> int:
    """A task instance's try number from its API form (0: settled by batched execution, never started)."""
    value = ti.get("try_number")
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else 1


def _all_waits(registry: Registry) -> Iterable[SensorWait]:
    mesh = registry.mesh()
    seen: set[tuple[str, str]] = set()
    for task in mesh.tasks():
        if task.is_sensor:
            key = (task.upstream_domain, task.upstream_model)
            if key not in seen:
                seen.add(key)
                yield from registry.sensors_waiting_on(*key)


def api_if_configured() -> AirflowApi | None:
    """The API client when HANDOFF_AIRFLOW_API_URL is set (explain's live states), else None."""
    import os

    from .airflow_api import ENV_URL

    return AirflowApi.from_env() if os.environ.get(ENV_URL) else None
