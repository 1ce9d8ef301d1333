"""Per-model SLA monitoring: which runs passed their deadline without the model's success.

``check`` is what the SLA watch runs each time a deadline passes (and what the sweep runs as a
safety net): for every model run whose deadline fell in the window it

1. reads the first successful try of each run from the registry (the completion callbacks record
   it for every model with an SLA);
2. asks Airflow about the runs with no recorded success — a success the callback could not record
   is recorded now (source ``sweep``) and judged by its end; otherwise the task's state at the
   deadline (or ``no run``: the DAG run does not exist) is the verdict;
3. records its misses together, each once (``sla_misses``, unique per run), and tells the new
   ones at once (``events.sla_misses_found``): who reads the models is looked up for all of them in
   one set-based read, and each channel — the owner's, the reading domains' — gets ONE message,
   listing its models when there are several (capped: "and N more"; docs/decisions.md).

A run that completed after its deadline but before the check (the watch was late) is a miss
recorded with its completion time. Without an Airflow API the registry alone decides (a callback
that failed to record a success then reads as a miss). docs/notifications.md, "SLA monitoring".
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any

from .. import sla_runs
from ..alignment import reference_date
from ..batching import BATCH_TASK_ID
from ..errors import HandoffError
from ..redact import get_logger
from ..registry import Registry
from ..sla_runs import Due, SlaModel, due_between, next_deadline
from . import events
from .delivery import Delivery

log = get_logger(__name__)

LOOKBACK = timedelta(hours=2)  # how far back each check looks (misses are recorded once)
MANY_CANDIDATES = 20  # per run: list its task instances instead of one GET per task
BATCH = BATCH_TASK_ID


@dataclass
class SlaReport:
    """What one check found: runs checked, met, missed (new misses), and the messages."""

    checked: int = 0
    met: int = 0
    missed: list[dict[str, Any]] = field(default_factory=list)
    known: int = 0  # misses recorded before this check
    messages: events.Report = field(default_factory=events.Report)
    api_calls: int = 0
    found: list[_Found] = field(default_factory=list, repr=False)  # misses to record and tell at the end

    def as_dict(self, *, listed: int | None = None) -> dict[str, Any]:
        """The report as JSON-able data; ``listed``: name at most that many misses (``missed_count``
        says how many there were) — what a task returns as its XCom after a storm of misses."""
        return {"checked": self.checked, "met": self.met,
                "missed": self.missed if listed is None else self.missed[:listed],
                "missed_count": len(self.missed), "known": self.known,
                "messages": self.messages.as_dict(), "api_calls": self.api_calls}


@dataclass(frozen=True)
class _Found:
    due: Due
    state: str
    completed: datetime | None
    run_id: str | None


def models_of(rows: Sequence[Mapping[str, Any]]) -> list[SlaModel]:
    """``Registry.sla_models()`` rows as ``SlaModel``s; a row with an unusable SLA is skipped with
    one logged line (``sla_runs.models_of``)."""
    return sla_runs.models_of(rows)


def check(registry: Registry, api: Any, delivery: Delivery, *, now: datetime | None = None,
          lookback: timedelta = LOOKBACK, models: Sequence[SlaModel] | None = None) -> SlaReport:
    """Judge every model run whose deadline is in (now - lookback, now]; record and announce misses."""
    now = (now or datetime.now(timezone.utc)).astimezone(timezone.utc)
    if models is None:
        models = models_of(registry.sla_models())
    due = due_between(models, now - lookback, now)
    report = SlaReport(checked=len(due))
    if not due:
        return report
    dags = {d.model.dag_id for d in due}
    first = min(d.logical_date for d in due)
    # every miss recorded in the window (no cap: after a storm of 5,000, none may look new again)
    known = {(m.dag_id, m.task_id, m.logical_date)
             for m in registry.sla_misses(dag_ids=dags, since=first, limit=None)}
    done = registry.first_successes(dags, first, now)
    pending: list[Due] = []
    for d in due:
        key = (d.model.dag_id, d.model.task_id, d.logical_date)
        if key in known:
            report.known += 1
            continue
        completed = done.get(key)
        if completed is not None and completed <= d.deadline:
            report.met += 1
        elif completed is not None:
            _miss(registry, delivery, report, d, "late", completed, None)
        else:
            pending.append(d)
    for (dag_id, logical_date), runs in _by_run(pending).items():
        _judge_run(registry, api, delivery, report, dag_id, logical_date, runs)
    _record_and_tell(registry, delivery, report)
    return report


def _by_run(pending: Sequence[Due]) -> dict[tuple[str, datetime], list[Due]]:
    grouped: dict[tuple[str, datetime], list[Due]] = {}
    for d in pending:
        grouped.setdefault((d.model.dag_id, d.logical_date), []).append(d)
    return grouped


def _judge_run(registry: Registry, api: Any, delivery: Delivery, report: SlaReport, dag_id: str,
               logical_date: datetime, runs: list[Due]) -> None:
    """The runs of one DAG run with no recorded success: ask Airflow, record, announce."""
    if api is None:
        for d in runs:
            if _watched(d):
                _miss(registry, delivery, report, d, "no success recorded", None, None)
        return
    try:
        found = api.list_dag_runs(dag_id, logical_date_gte=logical_date, logical_date_lte=logical_date)
        report.api_calls += 1
        run = next((r for r in found if _when(r.get("logical_date")) == logical_date), None)
        states = _states(api, report, dag_id, run, [d.model.task_id for d in runs]) if run else {}
    except HandoffError as exc:
        log.warning("handoff: SLA check of %s at %s: Airflow API: %s; judging from the registry",
                    dag_id, logical_date.isoformat(), exc.one_line())
        for d in runs:
            if _watched(d):
                _miss(registry, delivery, report, d, "no success recorded", None, None)
        return
    for d in runs:
        ti = states.get(d.model.task_id)
        if run is None:
            if _watched(d):
                _miss(registry, delivery, report, d, "no run", None, None)
            continue
        state = (ti or {}).get("state") or states.get(BATCH, {}).get("handoff_state") or "not started"
        ended = _when((ti or {}).get("end_date"))
        if state == "success" and ended is not None:
            registry.record_completion(dag_id, d.model.task_id, str(run["dag_run_id"]),
                                       reference_date(logical_date, logical_date), completed_at=ended,
                                       try_number=_try(ti), source="sweep")
            if ended <= d.deadline:
                report.met += 1
                continue
            _miss(registry, delivery, report, d, "late", ended, run)
            continue
        _miss(registry, delivery, report, d, state, None, run)


def _states(api: Any, report: SlaReport, dag_id: str, run: Mapping[str, Any],
            task_ids: list[str]) -> dict[str, dict[str, Any]]:
    """The task instances of ``task_ids`` in ``run``; when one has no state yet and the run has a
    batch (batched execution: a model's task gets its state when the batch has built it), what the
    batch is doing, as ``found[BATCH]["handoff_state"]``."""
    run_id = str(run["dag_run_id"])
    wanted = set(task_ids) | {BATCH}
    if len(task_ids) > MANY_CANDIDATES:
        report.api_calls += 1
        found = {ti["task_id"]: ti for ti in api.list_task_instances(dag_id, run_id) if ti["task_id"] in wanted}
    else:
        found = {}
        for task_id in task_ids:
            report.api_calls += 1
            ti = api.find_task_instance(dag_id, run_id, task_id)
            if ti is not None:
                found[task_id] = ti
        if any(not (found.get(t) or {}).get("state") for t in task_ids):
            report.api_calls += 1
            batch = api.find_task_instance(dag_id, run_id, BATCH)
            if batch is not None:
                found[BATCH] = batch
    batch_state = (found.get(BATCH) or {}).get("state")
    if batch_state in ("running", "queued", "scheduled", "deferred", "up_for_reschedule"):
        found[BATCH] = {**found[BATCH], "handoff_state": "queued in the batch" if batch_state != "running"
                        else "running in the batch"}
        if batch_state == "deferred":
            found[BATCH]["handoff_state"] = "waiting in the batch (its upstream is not done)"
    return found


def _watched(d: Due) -> bool:
    """A run with no evidence at all counts as missed only from the domain's first publication on:
    before it, handoff was not there to record it."""
    return d.model.watched_from is None or d.logical_date >= d.model.watched_from


def _miss(registry: Registry, delivery: Delivery, report: SlaReport, d: Due, state: str,
          completed: datetime | None, run: Mapping[str, Any] | None) -> None:
    """Note a miss; ``_record_and_tell`` records and announces every miss of the check together."""
    report.found.append(_Found(d, state, completed, str(run["dag_run_id"]) if run else None))


LOGGED = 20  # misses logged one line each per check; the rest in one line


def _record_and_tell(registry: Registry, delivery: Delivery, report: SlaReport) -> None:
    """Record the check's misses in one transaction (once per run: a miss another check recorded
    first is ``known``), then tell the new ones with one message per channel."""
    if not report.found:
        return
    recorded = registry.record_sla_misses([
        {"dag_id": f.due.model.dag_id, "task_id": f.due.model.task_id, "logical_date": f.due.logical_date,
         "domain": f.due.model.domain, "model": f.due.model.model, "sla": _promise(f.due.model),
         "deadline": f.due.deadline, "state_at_deadline": f.state, "completed_at": f.completed}
        for f in report.found])
    new: list[events.MissedRun] = []
    for f, miss in zip(report.found, recorded, strict=True):
        if not miss.created:
            report.known += 1
            continue
        m, d = f.due.model, f.due
        report.missed.append({"model": m.name, "dag_id": m.dag_id, "logical_date": d.logical_date.isoformat(),
                              "deadline": d.deadline.isoformat(), "state": f.state,
                              "completed_at": f.completed.isoformat() if f.completed else None})
        if len(new) < LOGGED:
            log.warning("handoff: %s missed its SLA (%s) for the run of %s: due %s, %s", m.name, _promise(m),
                        d.logical_date.isoformat(), d.deadline.isoformat(), f.state)
        new.append(events.MissedRun(m.dag_id, m.task_id, f.run_id, d.logical_date, _promise(m), d.deadline,
                                    f.state, f.completed))
    if len(new) > LOGGED:
        log.warning("handoff: and %d more model runs missed their SLA (handoff sla; the registry's sla_misses)",
                    len(new) - LOGGED)
    report.found = []
    report.messages.merge(events.sla_misses_found(registry, delivery, new))


def _promise(m: SlaModel) -> str:
    return m.promise() or "no SLA"  # the watch only gets models with an SLA


def wake_at(registry: Registry, after: datetime) -> datetime | None:
    """When the watch must check next: the first deadline after ``after`` (None: no SLA within 2 days)."""
    return next_deadline(models_of(registry.sla_models()), after)


def _when(value: Any) -> datetime | None:
    if not value:
        return None
    moment = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    return (moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)).astimezone(timezone.utc)


def _try(ti: Mapping[str, Any] | None) -> int:
    value = (ti or {}).get("try_number")
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else 1
