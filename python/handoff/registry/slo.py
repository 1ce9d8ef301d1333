"""Registry reads for SLA monitoring and the SLO history (docs/notifications.md): the models with
an SLA and what their pipelines run on, the first successful try of each run, and who reads a
model across domains. Pure SQLAlchemy Core over the same tables on SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

from sqlalchemy import func, or_, select
from sqlalchemy.engine import Connection

from ..errors import HandoffError
from . import schema as s
from .mesh import SENSOR
from .queries import model_tasks, require_published_domain, utc

_CHUNK = 500  # names per IN (...) list


def _first_published(conn: Connection) -> dict[str, datetime]:
    pub = s.publications.c
    return {d: utc(w) for d, w in conn.execute(select(pub.domain, func.min(pub.published_at)).group_by(pub.domain))}


def _model_rows(conn: Connection, where: Iterable[Any]) -> list[dict[str, Any]]:
    t, p = s.tasks, s.pipelines
    query = (select(t.c.domain, t.c.dag_id, t.c.task_id, t.c.model, t.c.available_by, t.c.available_within_s,
                    p.c.schedule, p.c.timezone, p.c.start_date)
             .join(p, p.c.dag_id == t.c.dag_id)
             .where(t.c.kind != SENSOR, *where)
             .order_by(t.c.domain, t.c.dag_id, t.c.task_id))
    rows = [r._asdict() for r in conn.execute(query)]
    first = _first_published(conn)
    for r in rows:
        r["first_published"] = first.get(r["domain"])
    return rows


def sla_models(conn: Connection, *, domain: str | None = None) -> list[dict[str, Any]]:
    """Every published model task with an SLA (``available_by`` or ``available_within_s``) and what
    its pipeline runs on: domain, dag_id, task_id, model, schedule, timezone, start_date (YYYY-MM-DD),
    available_by, available_within_s, first_published (the domain's first publication: earlier runs
    were not handoff's to watch)."""
    t = s.tasks.c
    where = [or_(t.available_by.is_not(None), t.available_within_s.is_not(None))]
    if domain is not None:
        where.append(t.domain == domain)
    return _model_rows(conn, where)


def history_models(conn: Connection, *, domain: str | None, model: str | None,
                   since: datetime) -> list[dict[str, Any]]:
    """The model tasks ``handoff sla`` reports (rows as ``sla_models``): every model task of
    ``domain`` (all domains: None; one model: ``model``, a model name or task id) that has an SLA
    or a recorded success since ``since``. An unknown domain or model is a HandoffError naming
    what exists."""
    t = s.tasks.c
    where: list[Any] = []
    if domain is not None:
        if model is not None:
            found = model_tasks(conn, domain, model)  # raises naming the domains / models that exist
            where.append(t.dag_id.in_(sorted({r.dag_id for r in found})))
            where.append(t.task_id.in_(sorted({r.task_id for r in found})))
        else:
            require_published_domain(conn, domain)
        where.append(t.domain == domain)
    rows = _model_rows(conn, where)
    c = s.completions.c
    done = {(d, task) for d, task in conn.execute(
        select(c.dag_id, c.task_id).where(c.state == "success", c.logical_date >= since).distinct())}
    return [r for r in rows if r["available_by"] is not None or r["available_within_s"] is not None
            or (r["dag_id"], r["task_id"]) in done]


def first_successes(conn: Connection, dag_ids: Iterable[str], since: datetime, until: datetime
                    ) -> dict[tuple[str, str, datetime], datetime]:
    """(dag_id, task_id, logical_date) -> the end of that run's first successful try, for runs of
    ``dag_ids`` with a logical date in [since, until]."""
    c = s.completions.c
    wanted = sorted(set(dag_ids))
    found: dict[tuple[str, str, datetime], datetime] = {}
    for i in range(0, len(wanted), _CHUNK):
        query = (select(c.dag_id, c.task_id, c.logical_date, func.min(c.completed_at))
                 .where(c.dag_id.in_(wanted[i:i + _CHUNK]), c.state == "success", c.logical_date >= since,
                        c.logical_date <= until)
                 .group_by(c.dag_id, c.task_id, c.logical_date))
        for dag_id, task_id, logical_date, completed_at in conn.execute(query):
            found[(dag_id, task_id, utc(logical_date))] = utc(completed_at)
    return found


def task_sla(conn: Connection, dag_id: str, task_id: str) -> dict[str, Any] | None:
    """The SLA of one model task ({available_by, available_within_s}) or None when it has none."""
    t = s.tasks.c
    row = conn.execute(select(t.available_by, t.available_within_s).where(
        t.dag_id == dag_id, t.task_id == task_id)).first()
    if row is None or (row.available_by is None and row.available_within_s is None):
        return None
    return {"available_by": row.available_by, "available_within_s": row.available_within_s}


def reading_dags(conn: Connection, targets: Iterable[tuple[str, str]]) -> list[dict[str, Any]]:
    """The consumer DAGs of other domains whose sensors wait on one of ``targets`` ((dag_id,
    task_id) of upstream model tasks): upstream_dag_id, upstream_task_id, domain, dag_id, schedule,
    timezone — one row per (upstream task, consumer DAG). Sensors whose upstream no longer
    resolves are left out."""
    wanted = set(targets)
    if not wanted:
        return []
    ce, p = s.cross_edges, s.pipelines
    query = (select(ce.c.dag_id, ce.c.domain, ce.c.upstream_domain, ce.c.upstream_model, p.c.schedule,
                    p.c.timezone).join(p, p.c.dag_id == ce.c.dag_id)
             .order_by(ce.c.dag_id, ce.c.sensor_task_id))
    found: dict[tuple[str, str, str], dict[str, Any]] = {}
    resolved: dict[tuple[str, str], list[Any]] = {}
    for row in conn.execute(query):
        key = (row.upstream_domain, row.upstream_model)
        if key not in resolved:
            try:
                resolved[key] = model_tasks(conn, *key)
            except HandoffError:
                resolved[key] = []
        tasks = resolved[key]
        if len(tasks) != 1 or (tasks[0].dag_id, tasks[0].task_id) not in wanted:
            continue
        up = tasks[0]
        found.setdefault((up.dag_id, up.task_id, row.dag_id), {
            "upstream_dag_id": up.dag_id, "upstream_task_id": up.task_id, "domain": row.domain,
            "dag_id": row.dag_id, "schedule": row.schedule, "timezone": row.timezone or "UTC"})
    return list(found.values())


def run_slas(conn: Connection, dag_id: str, logical_date: datetime,
             task_ids: Iterable[str] | None = None) -> list[dict[str, Any]]:
    """What judging one DAG run's SLAs needs: every model task of ``dag_id`` with an SLA (only
    ``task_ids`` when given), as ``sla_models`` rows, each with ``completed_at`` (the end of the
    first successful try of the run at ``logical_date``, or None) and ``miss`` (the ``SlaMiss`` the
    SLA watch recorded for that run, or None). ``handoff explain --at`` and the run-status page
    read it (``sla_verdict.judge_run``)."""
    from .notifications import misses_of_run

    t = s.tasks.c
    where: list[Any] = [t.dag_id == dag_id, or_(t.available_by.is_not(None), t.available_within_s.is_not(None))]
    if task_ids is not None:
        where.append(t.task_id.in_(sorted(set(task_ids))))
    rows = _model_rows(conn, where)
    if not rows:
        return rows
    when = utc(logical_date)
    done = first_successes(conn, [dag_id], when, when)
    recorded = misses_of_run(conn, dag_id, when)
    for r in rows:
        r["completed_at"] = done.get((dag_id, r["task_id"], when))
        r["miss"] = recorded.get(r["task_id"])
    return rows
