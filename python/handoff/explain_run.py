"""`handoff explain DOMAIN.MODEL --at DATE`: why did (or didn't) that run of the model's DAG run?

For the run of the model's DAG at a date (the latest tick of its schedule at or before it), each
sensor upstream of the model: the aligned upstream run, every recorded try of the upstream task
(and which completion counts: a later try supersedes an earlier success), and how and when the
sensor was satisfied — or why recovery left it alone (``sensor_refusals``). Only records of *that*
run are used (run logical date, and the run ids Airflow lists for it). With an Airflow API
(``HANDOFF_AIRFLOW_API_URL``) the live states are added: the runs at that date, each run's sensor,
and the upstream task instance's latest try; a sensor still waiting says since when
(``waiting_since``: run id -> the ISO start of its current try).

Shapes: ``run_state`` returns a dict (the CLI's JSON under "run"); ``run_state_text`` renders it.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timezone
from typing import Any

from .airflow_api import AirflowApi
from .alignment import upstream_logical_date
from .errors import HandoffError
from .recovery import completion_tries, current_completion, run_reference_date
from .registry import Registry
from .registry.run_state import Completion, Refusal, Resolution
from .registry.views import Explained, PipelineWaits, WaitView
from .sla_verdict import judge_run


def run_state(registry: Registry, explained: Explained | PipelineWaits, at: datetime,
              api: AirflowApi | None = None, *, now: datetime | None = None) -> dict[str, Any]:
    """The run of the model's DAG at ``at``, sensor by sensor, and the SLA verdicts of the run
    (``slas``: the model's, or every model of the DAG with an SLA when ``explained`` is
    ``Registry.pipeline_waits``; ``sla_verdict``, judged as of ``now``, default the current time).
    ``explained`` is Registry.explain() or Registry.pipeline_waits()."""
    dag_id = explained["pipeline"]["dag_id"]
    run_date = upstream_logical_date(at, explained["pipeline"]["schedule"], explained["pipeline"].get("timezone"))
    live_runs = runs_at(api, dag_id, run_date)
    run_ids = [str(r["dag_run_id"]) for r in live_runs]
    decisions = run_decisions(registry, dag_id, run_date, run_ids)
    sensors = [sensor_state(registry, api, wait, run_date, decisions, live_runs, dag_id)
               for wait in explained["waits_on"]]
    task_ids = [explained["model"]["task_id"]] if "model" in explained else None
    slas = judge_run(registry.run_slas(dag_id, run_date, task_ids), run_date, now or datetime.now(timezone.utc))
    return {"dag_id": dag_id, "at": at.isoformat(), "run_logical_date": run_date.isoformat(),
            "runs": run_ids, "sensors": sensors, "slas": [v.as_dict() for v in slas]}


def run_decisions(registry: Registry, dag_id: str, run_date: datetime,
                  run_ids: list[str]) -> list[Resolution | Refusal]:
    """Every resolution and refusal recorded for the runs of ``dag_id`` at ``run_date``: by run
    logical date, plus (for records older than that column) by the run ids Airflow lists."""
    found: dict[tuple[str, int], Resolution | Refusal] = {}
    for r in [*registry.resolutions(dag_id=dag_id, run_logical_date=run_date, limit=1000),
              *registry.refusals(dag_id=dag_id, run_logical_date=run_date, limit=1000)]:
        found[(type(r).__name__, r.id)] = r
    for run_id in run_ids:
        for r in [*registry.resolutions(dag_id=dag_id, run_id=run_id, limit=1000),
                  *registry.refusals(dag_id=dag_id, run_id=run_id, limit=1000)]:
            found[(type(r).__name__, r.id)] = r
    return list(found.values())


def sensor_state(registry: Registry, api: AirflowApi | None, wait: WaitView, run_date: datetime,
                 decisions: list[Resolution | Refusal], live_runs: list[dict[str, Any]], dag_id: str) -> dict[str, Any]:
    """One sensor of the run: upstream tries, the decision recorded for it, its live states."""
    entry: dict[str, Any] = {"sensor_task_id": wait["sensor_task_id"],
                             "upstream": f"{wait['upstream_domain']}.{wait['upstream_model']}"}
    target = wait.get("upstream")
    if not target:
        entry.update(verdict="unresolved", why=wait.get("problem") or "the upstream model is not published")
        return entry
    upstream_date = upstream_logical_date(run_date, target["schedule"], target.get("timezone"))
    entry["upstream_task"] = f"{target['dag_id']}.{target['task_id']}"
    entry["upstream_run_date"] = upstream_date.isoformat()
    tries = completion_tries(registry, target["dag_id"], target["task_id"], upstream_date)
    entry["upstream_tries"] = [_try(c) for c in tries]
    current = current_completion(tries)
    superseded = superseded_completions(tries)
    if api is not None:
        live = live_upstream(api, target["dag_id"], target["task_id"], upstream_date)
        entry["upstream_live"] = live
        if live and current and (live["try_number"] != current.try_number or live["state"] != "success"):
            superseded.append(f"try {current.try_number} (success) is superseded: the task instance is now at "
                              f"try {live['try_number']}, {live['state'] or 'not started'}")
            current = None
    if superseded:
        entry["superseded"] = superseded
    if current is not None:
        entry.update(upstream_completed_at=current.completed_at.isoformat(), recorded_by=current.source,
                     upstream_try=current.try_number)
    mine = [d for d in decisions if d.sensor_task_id == wait["sensor_task_id"]
            and not (isinstance(d, Resolution) and d.status != "done")]
    entry.update(verdict_of(latest_decision(mine), current, tries, entry))
    if live_runs and api is not None:
        live_tis = {str(run["dag_run_id"]): _find(api, dag_id, str(run["dag_run_id"]), wait["sensor_task_id"])
                    for run in live_runs}
        entry["live_states"] = {run_id: ti.get("state") if ti else None for run_id, ti in live_tis.items()}
        since = {run_id: str(ti["start_date"]) for run_id, ti in live_tis.items()
                 if ti and ti.get("state") in WAITING_STATES and ti.get("start_date")}
        if since:
            entry["waiting_since"] = since
    return entry


#: Task-instance states of a sensor that is still waiting (Airflow 3: a deferrable sensor defers,
#: a poking one runs or is up for reschedule between pokes).
WAITING_STATES = frozenset({"deferred", "running", "up_for_reschedule", "queued", "scheduled"})


def superseded_completions(tries: list[Completion]) -> list[str]:
    """A sentence for each successful try that a later recorded try superseded."""
    found = []
    for i, c in enumerate(tries):
        later = tries[i + 1:]
        if c.state == "success" and later:
            last = later[-1]
            found.append(f"try {c.try_number} (success, {c.completed_at.isoformat()}) is superseded by "
                         f"try {last.try_number} ({last.state}, {last.completed_at.isoformat()})")
    return found


def latest_decision(decisions: list[Resolution | Refusal]) -> Resolution | Refusal | None:
    """The decision about the sensor's latest try (a resolution beats a refusal of the same try)."""
    def key(d: Resolution | Refusal) -> tuple[int, int, datetime]:
        when = d.resolved_at if isinstance(d, Resolution) else d.recorded_at
        return (d.try_number, 1 if isinstance(d, Resolution) else 0, when)

    return max(decisions, key=key, default=None)


def verdict_of(decision: Resolution | Refusal | None, current: Completion | None, tries: list[Completion],
               entry: Mapping[str, Any]) -> dict[str, Any]:
    """verdict + details for one sensor, from its decision and the upstream's completions."""
    if isinstance(decision, Resolution):
        found: dict[str, Any] = {"verdict": f"satisfied by {decision.how}", "run_id": decision.run_id,
                                 "resolved_at": decision.resolved_at.isoformat(),
                                 "state_before": decision.previous_state}
        used = next((c for c in tries if c.id == decision.completion_id), None)
        if used is not None and (current is None or used.id != current.id):
            found["why"] = (f"it was satisfied with try {used.try_number} of the upstream, which is no longer "
                            "the current completion: the run read data a later try replaced or failed to build")
        return found
    if isinstance(decision, Refusal):
        return {"verdict": f"left alone: {decision.detail}", "run_id": decision.run_id, "reason": decision.reason,
                "decided_at": decision.recorded_at.isoformat(), "actor": decision.actor,
                "acted_at": decision.acted_at.isoformat() if decision.acted_at else None}
    if current is not None:
        return {"verdict": "upstream done, sensor not recorded as satisfied",
                "why": "if it is still waiting or timed out, `handoff reconcile` satisfies it"}
    if entry.get("superseded"):
        return {"verdict": "upstream completion superseded",
                "why": "no try of the upstream task stands in success: nothing may satisfy the sensor "
                       "until a new try succeeds"}
    return {"verdict": "waiting on upstream",
            "why": f"no completion recorded for {entry['upstream_task']} at {entry['upstream_run_date']}"}


def runs_at(api: AirflowApi | None, dag_id: str, run_date: datetime) -> list[dict[str, Any]]:
    """The DAG's runs at exactly ``run_date`` (none without an API)."""
    if api is None:
        return []
    return api.list_dag_runs(dag_id, logical_date_gte=run_date, logical_date_lte=run_date)


def live_upstream(api: AirflowApi, dag_id: str, task_id: str, upstream_date: datetime) -> dict[str, Any] | None:
    """The upstream task instance at ``upstream_date`` now: run id, latest try, state (or None)."""
    for run in runs_at(api, dag_id, upstream_date):
        if run_reference_date(run) != upstream_date:
            continue
        ti = _find(api, dag_id, str(run["dag_run_id"]), task_id)
        if ti is not None:
            return {"run_id": str(run["dag_run_id"]), "try_number": int(ti.get("try_number") or 0),
                    "state": ti.get("state")}
    return None


def _find(api: AirflowApi, dag_id: str, run_id: str, task_id: str) -> dict[str, Any] | None:
    try:
        return api.find_task_instance(dag_id, run_id, task_id)
    except HandoffError:
        return None


def _try(c: Completion) -> dict[str, Any]:
    return {"try_number": c.try_number, "state": c.state, "run_id": c.run_id,
            "completed_at": c.completed_at.isoformat(), "recorded_by": c.source}


def run_state_text(state: dict[str, Any]) -> str:
    """run_state() for people."""
    lines = [f"\nRun of {state['dag_id']} at {state['run_logical_date']}"
             + (f" (runs: {', '.join(state['runs'])})" if state["runs"] else "") + ":"]
    if not state["sensors"]:
        lines.append("  waits on no other DAG: nothing to explain")
    for s in state["sensors"]:
        lines.append(f"  {s['sensor_task_id']} -> {s['upstream']}: {s['verdict']}")
        lines.extend(f"    {line}" for line in sensor_lines(s))
    lines.extend(sla_lines(state.get("slas") or []))
    return "\n".join(lines) + "\n"


def sla_lines(slas: list[dict[str, Any]]) -> list[str]:
    """The SLA verdicts of a run (``run_state``'s ``slas``) for people."""
    if not slas:
        return []
    lines = ["  SLA (deadlines in UTC):"]
    for v in slas:
        due = f"due {v['deadline']}" if v["deadline"] else "no deadline"
        done = f", finished {v['finished_at']}" if v["finished_at"] else ""
        lines.append(f"    {v['model'] or v['task_id']} ({v['sla']}): {v['verdict']} - {due}{done}")
        lines.append(f"      {v['why']}")
    return lines


def sensor_lines(s: Mapping[str, Any]) -> list[str]:
    """The indented lines under one sensor's verdict."""
    lines = []
    if "upstream_task" in s:
        tries = s.get("upstream_tries") or []
        done = ("; ".join(f"try {t['try_number']} {t['state']} at {t['completed_at']} (recorded by {t['recorded_by']})"
                          for t in tries) or "no completion recorded")
        lines.append(f"upstream run {s['upstream_task']} at {s['upstream_run_date']}: {done}")
        live = s.get("upstream_live")
        if live:
            lines.append(f"upstream live: {live['run_id']}: try {live['try_number']}, {live['state']}")
    lines.extend(f"superseded: {text}" for text in s.get("superseded") or [])
    if "resolved_at" in s:
        before = (f"the sensor was {s['state_before'] or 'not started'}" if s["verdict"] == "satisfied by reconcile"
                  else "the sensor saw the upstream itself")
        lines.append(f"satisfied at {s['resolved_at']} in {s['run_id']} ({before})")
    if "decided_at" in s:
        lines.append(f"decided at {s['decided_at']} in {s['run_id']}")
    if "why" in s:
        lines.append(str(s["why"]))
    since = s.get("waiting_since") or {}
    lines.extend(f"live: {run_id}: {live}" + (f", waiting since {since[run_id]}" if run_id in since else "")
                 for run_id, live in (s.get("live_states") or {}).items())
    return lines
