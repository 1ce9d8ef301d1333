"""The outbox of messages and the record of SLA misses (called by ``Registry`` inside a transaction).

Exactly-once rules (docs/notifications.md, "Never twice"):

* a message is one row per (kind, subject task instance, channel): ``enqueue`` inserts with
  ``ON CONFLICT DO NOTHING`` and says which rows this call created — only their creator posts
  them at once; a duplicate callback, a retry or the 50th blocked sensor finds the row there;
* posting *claims* a pending row first (compare-and-set on ``claimed_at``), so a callback and a
  sweep never post the same row together; a claim older than ``stale_before`` (its holder died)
  can be taken over; a failed post releases the claim and leaves the row pending for the sweep,
  until ``MAX_ATTEMPTS`` posts failed (then ``failed``);
* an SLA miss is one row per (dag, task, logical date); its eventual completion is filled once.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import and_, or_, select, update
from sqlalchemy.engine import Connection, Row

from ..plan.graph import reachable
from . import schema as s
from .queries import utc
from .run_state import insert_ignoring_duplicates

MAX_ATTEMPTS = 8  # posts of one message before it is given up ("failed", still listed)
_MESSAGE_KEY = ["kind", "subject_dag_id", "subject_task_id", "subject_date", "channel"]
_MISS_KEY = ["dag_id", "task_id", "logical_date"]


@dataclass(frozen=True)
class Notification:
    """One message of the outbox (``text``: plain fallback; ``blocks``: Slack Block Kit)."""

    id: int
    kind: str
    subject_dag_id: str
    subject_task_id: str
    subject_date: datetime
    subject_run_id: str | None
    channel: str
    domain: str
    roles: str
    text: str
    blocks: list[dict[str, Any]]
    status: str
    attempts: int
    last_error: str | None
    created_at: datetime
    claimed_at: datetime | None
    sent_at: datetime | None

    def as_dict(self) -> dict[str, Any]:
        found = {k: getattr(self, k) for k in self.__dataclass_fields__ if k != "blocks"}
        for key in ("subject_date", "created_at", "claimed_at", "sent_at"):
            found[key] = found[key].isoformat() if found[key] else None
        return found


@dataclass(frozen=True)
class SlaMiss:
    """A model run past its SLA deadline without the model's success (and when it completed)."""

    id: int
    dag_id: str
    task_id: str
    logical_date: datetime
    domain: str
    model: str | None
    sla: str
    deadline: datetime
    detected_at: datetime
    state_at_deadline: str
    completed_at: datetime | None
    created: bool = True

    def as_dict(self) -> dict[str, Any]:
        found: dict[str, Any] = {k: getattr(self, k) for k in self.__dataclass_fields__ if k != "created"}
        for key in ("logical_date", "deadline", "detected_at", "completed_at"):
            found[key] = found[key].isoformat() if found[key] else None
        return found


# -- the outbox -----------------------------------------------------------------------------------

def enqueue(conn: Connection, rows: Sequence[Mapping[str, Any]]) -> list[Notification]:
    """Insert each message unless its (kind, subject, channel) is there; the rows THIS call created."""
    created = []
    for row in rows:
        full = {**row, "blocks": json.dumps(row["blocks"], separators=(",", ":"))}
        if insert_ignoring_duplicates(conn, s.notifications, full, _MESSAGE_KEY):
            created.append(_notification(conn.execute(select(s.notifications).where(
                *(s.notifications.c[k] == full[k] for k in _MESSAGE_KEY))).one()))
    return created


def claim(conn: Connection, notification_id: int, now: datetime, stale_before: datetime) -> Notification | None:
    """Claim one pending message for posting (None: someone else holds it, or it is settled)."""
    n = s.notifications.c
    taken = conn.execute(update(s.notifications).where(
        n.id == notification_id, n.status == "pending",
        or_(n.claimed_at.is_(None), n.claimed_at < stale_before)).values(claimed_at=now, attempts=n.attempts + 1))
    if not taken.rowcount:
        return None
    return _notification(conn.execute(select(s.notifications).where(n.id == notification_id)).one())


def settle(conn: Connection, notification_id: int, status: str, now: datetime, error: str | None = None) -> None:
    """A claimed message was posted ("sent"), logged ("dry_run"), or failed to post (``error``):
    then it is released for the sweep, or given up after MAX_ATTEMPTS."""
    n = s.notifications.c
    if status in ("sent", "dry_run"):
        values: dict[str, Any] = {"status": status, "sent_at": now, "claimed_at": None, "last_error": error}
    else:
        attempts = conn.execute(select(n.attempts).where(n.id == notification_id)).scalar_one()
        values = {"status": "failed" if attempts >= MAX_ATTEMPTS else "pending", "claimed_at": None,
                  "last_error": (error or "unknown error")[:2000]}
    conn.execute(update(s.notifications).where(n.id == notification_id).values(**values))


def due(conn: Connection, stale_before: datetime, limit: int) -> list[int]:
    """Ids of pending messages nobody holds (or whose claim went stale), oldest first."""
    n = s.notifications.c
    return list(conn.execute(select(n.id).where(
        n.status == "pending", or_(n.claimed_at.is_(None), n.claimed_at < stale_before))
        .order_by(n.id).limit(limit)).scalars())


def notifications(conn: Connection, *, kind: str | None = None, subject_dag_id: str | None = None,
                  subject_task_id: str | None = None, subject_date: datetime | None = None,
                  status: str | None = None, since: datetime | None = None, limit: int = 100) -> list[Notification]:
    """Messages, latest first, filtered by whatever is given."""
    n = s.notifications.c
    query = select(s.notifications).order_by(n.id.desc()).limit(limit)
    for column, value in ((n.kind, kind), (n.subject_dag_id, subject_dag_id), (n.subject_task_id, subject_task_id),
                          (n.subject_date, subject_date), (n.status, status)):
        if value is not None:
            query = query.where(column == value)
    if since is not None:
        query = query.where(n.created_at >= since)
    return [_notification(r) for r in conn.execute(query)]


def blocked_open(conn: Connection, dag_id: str, subject_date: datetime) -> list[Notification]:
    """'blocked' messages about a run of ``dag_id`` (any of its tasks) that have no 'resumed' yet."""
    n = s.notifications
    resumed = n.alias("resumed")
    query = (select(n).outerjoin(resumed, and_(
        resumed.c.kind == "resumed", resumed.c.subject_dag_id == n.c.subject_dag_id,
        resumed.c.subject_task_id == n.c.subject_task_id, resumed.c.subject_date == n.c.subject_date,
        resumed.c.channel == n.c.channel))
        .where(n.c.kind == "blocked", n.c.subject_dag_id == dag_id, n.c.subject_date == subject_date,
               resumed.c.id.is_(None))
        .order_by(n.c.id))
    return [_notification(r) for r in conn.execute(query)]


def _notification(r: Row[Any]) -> Notification:
    return Notification(id=r.id, kind=r.kind, subject_dag_id=r.subject_dag_id, subject_task_id=r.subject_task_id,
                        subject_date=utc(r.subject_date), subject_run_id=r.subject_run_id, channel=r.channel,
                        domain=r.domain, roles=r.roles, text=r.text, blocks=json.loads(r.blocks), status=r.status,
                        attempts=r.attempts, last_error=r.last_error, created_at=utc(r.created_at),
                        claimed_at=utc(r.claimed_at), sent_at=utc(r.sent_at))


# -- SLA misses -----------------------------------------------------------------------------------

def record_miss(conn: Connection, row: Mapping[str, Any]) -> SlaMiss:
    """Record a miss unless this run's miss is recorded; ``created`` says which."""
    created = insert_ignoring_duplicates(conn, s.sla_misses, row, _MISS_KEY)
    return _miss(conn.execute(select(s.sla_misses).where(*(s.sla_misses.c[k] == row[k] for k in _MISS_KEY))).one(),
                 created)


def complete_miss(conn: Connection, dag_id: str, task_id: str, logical_date: datetime,
                  completed_at: datetime) -> bool:
    """The model of a missed run succeeded: note when (once; True if this call noted it)."""
    m = s.sla_misses.c
    done = conn.execute(update(s.sla_misses).where(
        m.dag_id == dag_id, m.task_id == task_id, m.logical_date == logical_date, m.completed_at.is_(None))
        .values(completed_at=completed_at))
    return bool(done.rowcount)


def misses(conn: Connection, *, dag_ids: Iterable[str] | None = None, domain: str | None = None,
           since: datetime | None = None, limit: int | None = 1000) -> list[SlaMiss]:
    """Recorded misses, latest run first (``limit`` None: all)."""
    m = s.sla_misses.c
    query = select(s.sla_misses).order_by(m.logical_date.desc(), m.id.desc())
    if limit is not None:
        query = query.limit(limit)
    if dag_ids is not None:
        query = query.where(m.dag_id.in_(sorted(set(dag_ids))))
    if domain is not None:
        query = query.where(m.domain == domain)
    if since is not None:
        query = query.where(m.logical_date >= since)
    return [_miss(r, True) for r in conn.execute(query)]


def misses_of_run(conn: Connection, dag_id: str, logical_date: datetime) -> dict[str, SlaMiss]:
    """task_id -> the miss recorded for the run of ``dag_id`` at ``logical_date`` (the unique key's
    prefix: one index lookup)."""
    m = s.sla_misses.c
    query = select(s.sla_misses).where(m.dag_id == dag_id, m.logical_date == logical_date)
    return {r.task_id: _miss(r, True) for r in conn.execute(query)}


def _miss(r: Row[Any], created: bool) -> SlaMiss:
    return SlaMiss(id=r.id, dag_id=r.dag_id, task_id=r.task_id, logical_date=utc(r.logical_date), domain=r.domain,
                   model=r.model, sla=r.sla, deadline=utc(r.deadline), detected_at=utc(r.detected_at),
                   state_at_deadline=r.state_at_deadline, completed_at=utc(r.completed_at), created=created)


# -- who hears it ---------------------------------------------------------------------------------

def audience(conn: Connection, dag_id: str, task_id: str) -> dict[str, Any] | None:
    """What a message about task ``dag_id.task_id`` needs, from one snapshot (None: not a published
    model task): ``task`` (domain, model, owner, slack, schedule, available_by), ``consumers`` (every
    model task of another domain waiting on it, directly or not: ``queries.Consumer``),
    ``schedules`` (dag_id -> schedule of the task's DAG and every consuming DAG), ``teams``
    (domain -> {owner, slack, mute}) of every domain involved."""
    from .consumers import consumers
    from .mesh import SENSOR

    t, p = s.tasks, s.pipelines
    row = conn.execute(select(t, p.c.schedule).join(p, p.c.dag_id == t.c.dag_id)
                       .where(t.c.dag_id == dag_id, t.c.task_id == task_id)).first()
    if row is None or row.kind == SENSOR:
        return None
    found = [c for c in consumers(conn, row.domain, task_id, transitive=True) if c.domain != row.domain]
    dags = sorted({dag_id} | {c.dag_id for c in found})
    schedules = {r.dag_id: r.schedule
                 for r in conn.execute(select(p.c.dag_id, p.c.schedule).where(p.c.dag_id.in_(dags)))}
    return {"task": {"domain": row.domain, "dag_id": dag_id, "task_id": task_id, "model": row.model,
                     "owner": row.owner, "slack": row.slack, "schedule": row.schedule,
                     "available_by": row.available_by},
            "consumers": found, "schedules": schedules,
            "teams": teams(conn, {row.domain} | {c.domain for c in found})}


def teams(conn: Connection, names: Iterable[str]) -> dict[str, dict[str, Any]]:
    """domain -> {owner, slack, mute (list of message kinds)} of the published ones among ``names``."""
    d = s.domains.c
    wanted = sorted(set(names))
    found = {}
    for r in conn.execute(select(d.name, d.owner, d.slack, d.mute).where(d.name.in_(wanted))):
        mute = json.loads(r.mute) if r.mute else []
        kinds = [str(k) for k in mute] if isinstance(mute, list) else []
        found[r.name] = {"owner": r.owner, "slack": r.slack, "mute": kinds}
    return found


def sensor_target(conn: Connection, dag_id: str, sensor_task_id: str) -> dict[str, Any] | None:
    """The upstream task a sensor waits on: {dag_id, task_id, schedule, domain, model}, and the
    sensor's own DAG schedule as ``downstream_schedule``; None when unknown or unresolvable."""
    from ..errors import HandoffError
    from .queries import _one_task

    ce, p = s.cross_edges, s.pipelines
    row = conn.execute(select(ce.c.upstream_domain, ce.c.upstream_model, ce.c.timeout_s, p.c.schedule)
                       .join(p, p.c.dag_id == ce.c.dag_id)
                       .where(ce.c.dag_id == dag_id, ce.c.sensor_task_id == sensor_task_id)).first()
    if row is None:
        return None
    try:
        target = _one_task(conn, row.upstream_domain, row.upstream_model)
    except HandoffError:
        return None
    return {"dag_id": target.dag_id, "task_id": target.task_id, "schedule": target.schedule,
            "domain": row.upstream_domain, "model": target.model, "downstream_schedule": row.schedule,
            "timeout_s": row.timeout_s}


def ancestors(conn: Connection, dag_id: str, task_id: str) -> set[str]:
    """Every task of ``dag_id`` upstream of ``task_id`` (transitively), the task itself excluded."""
    e = s.task_edges.c
    preds: dict[str, list[str]] = {}
    for up, down in conn.execute(select(e.upstream_task_id, e.downstream_task_id).where(e.dag_id == dag_id)):
        preds.setdefault(down, []).append(up)
    return reachable(preds.get(task_id, ()), preds)
