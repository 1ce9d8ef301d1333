"""What the callbacks and the sweep call to tell people (docs/notifications.md).

Each event reads what it needs from the registry (one snapshot: ``Registry.audience``), builds the
messages (``messages``, pure), adds them to the registry's outbox — one row per (kind, subject task
instance, channel), whoever else tries — and posts the rows *this call* added (``deliver``).
Everything else (a duplicate callback, a retry, the 50th sensor giving up on the same upstream run)
finds the rows there and posts nothing. A post that fails stays pending; ``retry_pending`` (the
sweep) posts it later. Nothing here raises into a task: the callbacks wrap these calls.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

from ..alignment import downstream_logical_dates, upstream_logical_date
from ..recovery import run_reference_date
from ..redact import get_logger
from ..registry import Registry
from .delivery import Delivery, DeliveryError
from .messages import (
    Blocked,
    Message,
    Miss,
    Team,
    UpstreamRun,
    blocked_messages,
    resumed_message,
    sla_miss_digests,
)

log = get_logger(__name__)


@dataclass
class Report:
    """What one call did: messages added to the outbox, posted, logged (dry run), muted, failed."""

    added: int = 0
    sent: int = 0
    dry_run: int = 0
    muted: int = 0
    failed: int = 0
    errors: list[str] = field(default_factory=list)

    def merge(self, other: Report) -> Report:
        for name in ("added", "sent", "dry_run", "muted", "failed"):
            setattr(self, name, getattr(self, name) + getattr(other, name))
        self.errors.extend(other.errors)
        return self

    def as_dict(self) -> dict[str, Any]:
        return {"added": self.added, "sent": self.sent, "dry_run": self.dry_run, "muted": self.muted,
                "failed": self.failed, "errors": list(self.errors)}


# -- blocked ---------------------------------------------------------------------------------------

def model_failed(registry: Registry, delivery: Delivery, *, dag_id: str, task_id: str, run_id: str | None,
                 logical_date: datetime, tries: int | None = None) -> Report:
    """A model task failed for good: tell every consuming domain and the owner (once per run)."""
    found = registry.audience(dag_id, task_id)
    if found is None or not found["consumers"] or not delivery.enabled:
        return Report()
    upstream = _upstream(found, run_id, logical_date)
    after = f" after {tries} tries" if tries and tries > 1 else ""
    messages = blocked_messages(upstream, cause=f"failed{after}", blocked=_blocked(found, logical_date),
                                teams=_teams(found))
    return _send(registry, delivery, messages)


def sensor_gave_up(registry: Registry, delivery: Delivery, *, dag_id: str, sensor_task_id: str,
                   run_logical_date: datetime, waited_s: int | None = None) -> Report:
    """A consumer's sensor timed out waiting on its upstream: tell the consumers and the owner that
    the upstream run is late — unless they were already told about that run (a failure of it, or
    another sensor giving up on it: one message per upstream run and channel)."""
    target = registry.sensor_target(dag_id, sensor_task_id)
    if target is None or not delivery.enabled:
        return Report()
    upstream_date = upstream_logical_date(run_logical_date, target["schedule"])
    found = registry.audience(target["dag_id"], target["task_id"])
    if found is None or not found["consumers"]:
        return Report()
    told = {n.channel for n in registry.notifications(kind="blocked", subject_dag_id=target["dag_id"],
                                                       subject_date=upstream_date, limit=1000)}
    domain = dag_id.split("__", 1)[0]
    waited = f" after {_duration(waited_s)}" if waited_s else ""
    upstream = _upstream(found, None, upstream_date)
    messages = [m for m in blocked_messages(
        upstream, cause=f"is late: {domain}'s sensor {sensor_task_id} gave up waiting on it{waited}",
        blocked=_blocked(found, upstream_date), teams=_teams(found)) if m.channel not in told]
    return _send(registry, delivery, messages)


# -- a model succeeded -----------------------------------------------------------------------------

def model_completed(registry: Registry, api: Any, delivery: Delivery, *, dag_id: str, task_id: str, run_id: str,
                    logical_date: datetime | None, run_after: datetime | None, try_number: int = 1,
                    completed_at: datetime | None = None, source: str = "callback") -> tuple[list[Any], Report]:
    """What a model task's success callback records and says (the one recording path: the callback,
    the batch, and the tests' simulated history all come through here):

    * a model others wait on: its completion, then recovery reconciles the waiting sensors
      (``recovery.handle_completion``; ``api`` None: recorded only), then 'resumed' follow-ups;
    * a model with an SLA: its completion (the SLO history ``handoff sla`` reads), and the completion
      time of a run whose miss was recorded;
    * any other model: nothing (no registry write).
    Returns (recovery's actions, the messages' report)."""
    from ..alignment import reference_date
    from ..errors import HandoffError
    from ..recovery import reconcile_completion

    anchor = run_after or logical_date
    moment = reference_date(logical_date, anchor) if anchor is not None else None
    waits = registry.sensors_waiting_on_task(dag_id, task_id)
    sla = None if waits else registry.task_sla(dag_id, task_id)
    if not waits and sla is None:
        return [], Report()
    ended = completed_at or datetime.now(timezone.utc)
    # record first: what the registry knows must not depend on Airflow's API answering
    completion = registry.record_completion(dag_id, task_id, run_id, moment, try_number=try_number, source=source,
                                            completed_at=ended)
    if moment is not None:
        registry.complete_sla_miss(dag_id, task_id, moment, ended)
    actions: list[Any] = []
    if waits and api is not None:
        try:
            actions = reconcile_completion(registry, api, completion)
        except HandoffError as exc:
            log.warning("handoff: reconciling the sensors waiting on %s.%s failed: %s; `handoff reconcile` will "
                        "catch up", dag_id, task_id, exc.one_line())
    report = Report()
    if waits and moment is not None:
        released = [(a.dag_id, a.run_id, a.sensor_task_id) for a in actions if a.action == "satisfied"]
        report = model_succeeded(registry, delivery, dag_id=dag_id, task_id=task_id, run_id=run_id,
                                 logical_date=moment, released=released)
    return actions, report


# -- resumed ---------------------------------------------------------------------------------------

def model_succeeded(registry: Registry, delivery: Delivery, *, dag_id: str, task_id: str, run_id: str | None,
                    logical_date: datetime, released: Sequence[tuple[str, str, str]] = ()) -> Report:
    """A model task succeeded: follow up every 'blocked' message about this run whose subject is
    the task itself or one of its upstream tasks in the DAG (they must have succeeded too).
    ``released``: (dag_id, run_id, sensor) recovery set to success for it."""
    if not delivery.enabled:
        return Report()
    open_ = [n for n in registry.open_blocked(dag_id, logical_date) if n.status != "muted"]
    if not open_:
        return Report()
    above = registry.task_ancestors(dag_id, task_id) | {task_id}
    open_ = [n for n in open_ if n.subject_task_id in above]
    found = registry.audience(dag_id, task_id) if open_ else None
    if found is None:
        return Report()
    upstream = _upstream(found, run_id, logical_date)
    now = datetime.now(timezone.utc)
    messages = [resumed_message({"channel": n.channel, "domain": n.domain, "roles": n.roles,
                                 "subject_task_id": n.subject_task_id}, upstream, succeeded=now,
                                released=released, teams=_teams(found)) for n in open_]
    return _send(registry, delivery, messages)


# -- SLA miss --------------------------------------------------------------------------------------

@dataclass(frozen=True)
class MissedRun:
    """One model run the SLA watch found past its deadline (``sla``: the promise as people read it)."""

    dag_id: str
    task_id: str
    run_id: str | None
    logical_date: datetime
    sla: str
    deadline: datetime
    state: str
    completed: datetime | None = None


def sla_misses_found(registry: Registry, delivery: Delivery, misses: Sequence[MissedRun]) -> Report:
    """The misses one check found, told at once: who reads each model is looked up for all of them
    together (``Registry.audiences``: one snapshot, set-based), and each channel gets one message —
    the single-model message, or one listing its misses (``messages.sla_miss_digests``)."""
    if not misses or not delivery.enabled:
        return Report()
    found = registry.audiences({(m.dag_id, m.task_id) for m in misses})
    teams: dict[str, Team] = {}
    items: list[Miss] = []
    for m in misses:
        audience = found.get((m.dag_id, m.task_id))
        if audience is None:
            continue
        teams.update(_teams(audience))
        items.append(Miss(_upstream(audience, m.run_id, m.logical_date), m.sla, m.deadline, m.state,
                          tuple(_blocked(audience, m.logical_date)), m.completed))
    return _send(registry, delivery, sla_miss_digests(items, teams))


# -- posting ---------------------------------------------------------------------------------------

def _send(registry: Registry, delivery: Delivery, messages: Iterable[Message]) -> Report:
    created = registry.enqueue_notifications([m.row() for m in messages])
    report = Report(added=len(created), muted=sum(1 for n in created if n.status == "muted"))
    return report.merge(deliver(registry, delivery, [n.id for n in created if n.status == "pending"]))


def deliver(registry: Registry, delivery: Delivery, ids: Iterable[int]) -> Report:
    """Post each pending message of ``ids`` that this process can claim; failures stay pending."""
    report = Report()
    for notification_id in ids:
        claimed = registry.claim_notification(notification_id)
        if claimed is None:
            continue  # someone else is posting it, or it is settled
        try:
            status = delivery.post(claimed.channel, claimed.text, claimed.blocks)
        except DeliveryError as exc:
            registry.settle_notification(claimed.id, "pending", str(exc))
            report.failed += 1
            report.errors.append(str(exc))
            log.warning("handoff: %s message to %s not posted (attempt %d): %s; the sweep retries it",
                        claimed.kind, claimed.channel, claimed.attempts, exc)
            continue
        registry.settle_notification(claimed.id, status)
        if status == "sent":
            report.sent += 1
            log.info("handoff: posted the %s message about %s.%s to %s", claimed.kind, claimed.subject_dag_id,
                     claimed.subject_task_id, claimed.channel)
        else:
            report.dry_run += 1
    return report


def retry_pending(registry: Registry, delivery: Delivery) -> Report:
    """Post every pending message nobody is posting (what the sweep does)."""
    if not delivery.enabled:
        return Report()
    return deliver(registry, delivery, registry.due_notifications())


# -- reading the audience ------------------------------------------------------------------------

def _upstream(found: Mapping[str, Any], run_id: str | None, logical_date: datetime) -> UpstreamRun:
    task = found["task"]
    return UpstreamRun(domain=task["domain"], dag_id=task["dag_id"], task_id=task["task_id"],
                       logical_date=logical_date.astimezone(timezone.utc), run_id=run_id,
                       owner=task["owner"] or "", slack=task["slack"] or "")


def _teams(found: Mapping[str, Any]) -> dict[str, Team]:
    return {name: Team(name, t["owner"], t["slack"], frozenset(t["mute"])) for name, t in found["teams"].items()}


def _blocked(found: Mapping[str, Any], upstream_date: datetime) -> list[Blocked]:
    """The consuming DAGs, with the runs of the first consuming domains that wait on this run."""
    schedules = found["schedules"]
    upstream_schedule = schedules[found["task"]["dag_id"]]
    by_dag: dict[str, list[Any]] = {}
    for consumer in found["consumers"]:
        by_dag.setdefault(consumer.dag_id, []).append(consumer)
    blocked = []
    for dag_id in sorted(by_dag):
        rows = by_dag[dag_id]
        direct = min(r.depth for r in rows) == 1
        runs: tuple[datetime, ...] = ()
        if direct and dag_id in schedules:
            try:
                runs = tuple(downstream_logical_dates(upstream_date, upstream_schedule, schedules[dag_id]))
            except Exception:  # noqa: BLE001 - the message still goes out, without the runs it cannot compute
                runs = ()
        shortest = min(rows, key=lambda r: (r.depth, len(r.via)))
        blocked.append(Blocked(domain=rows[0].domain, dag_id=dag_id, runs=runs,
                               tasks=tuple(sorted({r.task_id for r in rows})),
                               sensors=tuple(sorted({r.sensor_task_id for r in rows
                                                     if r.depth == 1 and r.sensor_task_id})),
                               via=shortest.via if not direct else ()))
    return blocked


def _duration(seconds: int) -> str:
    if seconds % 3600 == 0:
        return f"{seconds // 3600}h"
    if seconds % 60 == 0:
        return f"{seconds // 60}m"
    return f"{seconds}s"


# -- the sweep ---------------------------------------------------------------------------------------

def sweep(registry: Registry, api: Any, delivery: Delivery, *, since: datetime) -> Report:
    """What the periodic sweep does for messages: tell consumers about failures of the models they
    wait on that no callback reported (a task a person marked failed, a worker that died before its
    callback), then post every message still pending. ``api``: an ``AirflowApi`` (None: only retries).

    Models left ``upstream_failed`` are not reported here: their failing upstream task is (its own
    callback), or, across domains, the consumers' sensors say the upstream is late."""
    report = Report()
    if not delivery.enabled:
        return report
    if api is not None:
        for ti in api.list_task_instances("~", "~", states=["failed"], end_date_gte=since):
            moment = run_reference_date(ti)
            if moment is None or not registry.sensors_waiting_on_task(ti["dag_id"], ti["task_id"]):
                continue  # nobody waits on it directly: its failing ancestor is what is reported
            report.merge(_missed_failure(registry, delivery, ti, moment))
    return report.merge(retry_pending(registry, delivery))


def _missed_failure(registry: Registry, delivery: Delivery, ti: Mapping[str, Any], moment: datetime) -> Report:
    """'blocked' messages for a failed task others wait on, to the channels not yet told about this
    run of its DAG (by its own callback, or about a failing upstream task)."""
    found = registry.audience(ti["dag_id"], ti["task_id"])
    if found is None or not found["consumers"]:
        return Report()
    told = {n.channel for n in registry.notifications(kind="blocked", subject_dag_id=ti["dag_id"],
                                                       subject_date=moment, limit=1000)}
    cause = "failed"
    upstream = _upstream(found, ti.get("dag_run_id"), moment)
    messages = [m for m in blocked_messages(upstream, cause=cause, blocked=_blocked(found, moment),
                                            teams=_teams(found)) if m.channel not in told]
    return _send(registry, delivery, messages)

