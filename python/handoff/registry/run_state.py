"""Recovery's run state in the registry: upstream tries, sensor resolutions and refusals.

Called by ``Registry`` inside one transaction per call. Every write is idempotent under a unique
constraint (``INSERT ... ON CONFLICT DO NOTHING`` on SQLite and PostgreSQL), so duplicate or racing
callbacks and sweeps record each fact once (docs/recovery.md, "Exactly once"):

* ``completions``: one row per finished try of an upstream task (dag, task, run, try);
* ``sensor_resolutions``: one row per satisfied sensor try (dag, run, sensor, try). handoff
  *claims* the row before it PATCHes the sensor, so of several racers exactly one sends the PATCH;
* ``sensor_refusals``: one row per sensor try and reason recovery left the sensor alone.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from typing import Any

from sqlalchemy import delete, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine import Connection, Row

from . import schema as s
from .queries import utc


@dataclass(frozen=True)
class Completion:
    """One finished try of an upstream task, as recorded by its callback or the sweep.

    ``state`` "success" is a completion; a later try of the same task instance supersedes it.
    """

    id: int
    dag_id: str
    task_id: str
    run_id: str
    logical_date: datetime | None
    completed_at: datetime
    source: str
    domain: str | None
    model: str | None
    try_number: int = 1
    state: str = "success"
    created: bool = True  # False: this try was already recorded (the record is the first one)


@dataclass(frozen=True)
class Resolution:
    """A downstream sensor try satisfied, by its own poke or by the reconciler.

    ``status`` "claimed": a reconciler holds it and is sending the PATCH; "done": settled.
    """

    id: int
    dag_id: str
    run_id: str
    sensor_task_id: str
    completion_id: int | None
    how: str
    previous_state: str | None
    resolved_at: datetime
    try_number: int = 0
    run_logical_date: datetime | None = None
    status: str = "done"
    created: bool = True


@dataclass(frozen=True)
class Refusal:
    """A sensor try recovery left alone, with the reason code and the sentence explain prints."""

    id: int
    dag_id: str
    run_id: str
    run_logical_date: datetime | None
    sensor_task_id: str
    try_number: int
    completion_id: int | None
    sensor_state: str | None
    run_state: str | None
    reason: str
    detail: str
    actor: str | None
    acted_at: datetime | None
    recorded_at: datetime
    created: bool = True

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


_COMPLETION_KEY = ["dag_id", "task_id", "run_id", "try_number"]
_RESOLUTION_KEY = ["dag_id", "run_id", "sensor_task_id", "try_number"]
_REFUSAL_KEY = ["dag_id", "run_id", "sensor_task_id", "try_number", "reason"]


def insert_ignoring_duplicates(conn: Connection, table: Any, row: Mapping[str, Any], keys: list[str]) -> bool:
    """INSERT unless a row with the same ``keys`` exists; True if this call inserted it."""
    dialect_insert = pg_insert if conn.dialect.name == "postgresql" else sqlite_insert
    result = conn.execute(dialect_insert(table).values(**row).on_conflict_do_nothing(index_elements=keys))
    return bool(result.rowcount)


def _by_key(conn: Connection, table: Any, row: Mapping[str, Any], keys: list[str]) -> Row[Any]:
    return conn.execute(select(table).where(*(table.c[k] == row[k] for k in keys))).one()


# -- completions -------------------------------------------------------------------------------

def record_completion(conn: Connection, row: dict[str, Any]) -> Completion:
    task = conn.execute(select(s.tasks.c.domain, s.tasks.c.model).where(
        s.tasks.c.dag_id == row["dag_id"], s.tasks.c.task_id == row["task_id"])).first()
    full = {**row, "domain": task.domain if task else None, "model": task.model if task else None,
            "recorded_at": datetime.now(timezone.utc)}
    created = insert_ignoring_duplicates(conn, s.completions, full, _COMPLETION_KEY)
    return _completion(_by_key(conn, s.completions, full, _COMPLETION_KEY), created)


def completions(conn: Connection, *, dag_id: str | None, task_id: str | None, run_id: str | None,
                logical_date: datetime | None, limit: int) -> list[Completion]:
    c = s.completions.c
    query = select(s.completions).order_by(c.id.desc()).limit(limit)
    for column, value in ((c.dag_id, dag_id), (c.task_id, task_id), (c.run_id, run_id),
                          (c.logical_date, logical_date)):
        if value is not None:
            query = query.where(column == value)
    return [_completion(r, True) for r in conn.execute(query)]


def _completion(r: Row[Any], created: bool) -> Completion:
    return Completion(id=r.id, dag_id=r.dag_id, task_id=r.task_id, run_id=r.run_id, logical_date=utc(r.logical_date),
                      completed_at=utc(r.completed_at), source=r.source, domain=r.domain, model=r.model,
                      try_number=r.try_number, state=r.state, created=created)


# -- sensor resolutions ------------------------------------------------------------------------

def record_resolution(conn: Connection, row: dict[str, Any]) -> Resolution:
    """A settled resolution (a poke seen by the sensor's callback), unless that try has one."""
    created = insert_ignoring_duplicates(conn, s.sensor_resolutions, {**row, "status": "done"}, _RESOLUTION_KEY)
    return _resolution(_by_key(conn, s.sensor_resolutions, row, _RESOLUTION_KEY), created)


def claim_resolution(conn: Connection, row: dict[str, Any], stale_before: datetime) -> Resolution | None:
    """Claim the right to satisfy one sensor try: the claim, or None when someone else holds it.

    A claim left 'claimed' since before ``stale_before`` (its holder died between the claim and
    the PATCH) is taken over, atomically (compare-and-set on its time)."""
    claim = {**row, "how": "reconcile", "status": "claimed"}
    if insert_ignoring_duplicates(conn, s.sensor_resolutions, claim, _RESOLUTION_KEY):
        return _resolution(_by_key(conn, s.sensor_resolutions, claim, _RESOLUTION_KEY), True)
    held = _by_key(conn, s.sensor_resolutions, claim, _RESOLUTION_KEY)
    if held.status != "claimed" or utc(held.resolved_at) >= stale_before:
        return None
    t = s.sensor_resolutions
    taken = conn.execute(update(t).where(t.c.id == held.id, t.c.status == "claimed",
                                         t.c.resolved_at == held.resolved_at)
                         .values(resolved_at=row["resolved_at"], completion_id=row.get("completion_id"),
                                 previous_state=row.get("previous_state"), how="reconcile"))
    if not taken.rowcount:
        return None
    return _resolution(conn.execute(select(t).where(t.c.id == held.id)).one(), True)


def finish_resolution(conn: Connection, resolution_id: int, how: str, resolved_at: datetime) -> Resolution:
    t = s.sensor_resolutions
    conn.execute(update(t).where(t.c.id == resolution_id).values(how=how, status="done", resolved_at=resolved_at))
    return _resolution(conn.execute(select(t).where(t.c.id == resolution_id)).one(), True)


def release_resolution(conn: Connection, resolution_id: int) -> None:
    t = s.sensor_resolutions
    conn.execute(delete(t).where(t.c.id == resolution_id, t.c.status == "claimed"))


def resolutions(conn: Connection, *, dag_id: str | None, run_id: str | None, completion_id: int | None,
                run_logical_date: datetime | None, limit: int) -> list[Resolution]:
    c = s.sensor_resolutions.c
    query = select(s.sensor_resolutions).order_by(c.id.desc()).limit(limit)
    for column, value in ((c.dag_id, dag_id), (c.run_id, run_id), (c.completion_id, completion_id),
                          (c.run_logical_date, run_logical_date)):
        if value is not None:
            query = query.where(column == value)
    return [_resolution(r, True) for r in conn.execute(query)]


def _resolution(r: Row[Any], created: bool) -> Resolution:
    return Resolution(id=r.id, dag_id=r.dag_id, run_id=r.run_id, sensor_task_id=r.sensor_task_id,
                      completion_id=r.completion_id, how=r.how, previous_state=r.previous_state,
                      resolved_at=utc(r.resolved_at), try_number=r.try_number,
                      run_logical_date=utc(r.run_logical_date), status=r.status, created=created)


# -- refusals ----------------------------------------------------------------------------------

def record_refusal(conn: Connection, row: dict[str, Any]) -> Refusal:
    full = {**row, "recorded_at": datetime.now(timezone.utc)}
    created = insert_ignoring_duplicates(conn, s.sensor_refusals, full, _REFUSAL_KEY)
    return _refusal(_by_key(conn, s.sensor_refusals, full, _REFUSAL_KEY), created)


def refusals(conn: Connection, *, dag_id: str | None, run_id: str | None, run_logical_date: datetime | None,
             limit: int) -> list[Refusal]:
    c = s.sensor_refusals.c
    query = select(s.sensor_refusals).order_by(c.id.desc()).limit(limit)
    for column, value in ((c.dag_id, dag_id), (c.run_id, run_id), (c.run_logical_date, run_logical_date)):
        if value is not None:
            query = query.where(column == value)
    return [_refusal(r, True) for r in conn.execute(query)]


def _refusal(r: Row[Any], created: bool) -> Refusal:
    return Refusal(id=r.id, dag_id=r.dag_id, run_id=r.run_id, run_logical_date=utc(r.run_logical_date),
                   sensor_task_id=r.sensor_task_id, try_number=r.try_number, completion_id=r.completion_id,
                   sensor_state=r.sensor_state, run_state=r.run_state, reason=r.reason, detail=r.detail,
                   actor=r.actor, acted_at=utc(r.acted_at), recorded_at=utc(r.recorded_at), created=created)
