"""Read queries over one connection (called by ``Registry`` inside a transaction): the whole mesh,
finding a model's tasks, sensors waiting on a model, bindings and history. Who depends on a model
is ``consumers``, one model explained is ``explain``; run state is ``run_state``.
"""

from __future__ import annotations

import difflib
import json
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.engine import Connection, Row

from ..errors import HandoffError
from ..redact import get_logger
from ..sla import Sla
from . import schema as s
from .mesh import SENSOR, Domain, Mesh, Pipeline, Task

log = get_logger(__name__)

# --------------------------------------------------------------------------------------
# Results
# --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Consumer:
    """A model task of another domain that waits, directly or transitively, on the model asked about.

    ``depth``: domain boundaries crossed (1: the first consuming domain). ``via``: the models crossed,
    ``domain.model``, from the model asked about to the one this consumer's DAG waits on.
    ``sensor_task_id``: the sensor in this consumer's DAG through which the wait arrives.
    ``direct``: it reads the model asked about itself (one sensor away).
    """

    domain: str
    dag_id: str
    task_id: str
    model: str
    owner: str
    slack: str
    depth: int
    via: tuple[str, ...]
    sensor_task_id: str
    direct: bool
    kind: str
    access: str
    available_by: str | None

    def as_dict(self) -> dict[str, Any]:
        found = asdict(self)
        found["via"] = list(self.via)
        return found


@dataclass(frozen=True)
class SensorWait:
    """A sensor waiting on an upstream model, with both sides' DAG, task and schedule."""

    downstream_domain: str
    dag_id: str
    sensor_task_id: str
    downstream_schedule: str
    upstream_domain: str
    upstream_model: str
    upstream_dag_id: str
    upstream_task_id: str
    upstream_schedule: str
    timeout_s: int | None
    poke_interval_s: int | None
    mode: str | None
    upstream_timezone: str = "UTC"
    downstream_timezone: str = "UTC"

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


# --------------------------------------------------------------------------------------
# The whole mesh
# --------------------------------------------------------------------------------------

def load_mesh(conn: Connection) -> Mesh:
    """Every published domain with its pipelines and tasks."""
    upstream: dict[tuple[str, str], list[str]] = defaultdict(list)
    for e in conn.execute(select(s.task_edges.c.dag_id, s.task_edges.c.upstream_task_id,
                                 s.task_edges.c.downstream_task_id)):
        upstream[(e.dag_id, e.downstream_task_id)].append(e.upstream_task_id)
    sensors = {(c.dag_id, c.sensor_task_id): c for c in conn.execute(select(s.cross_edges))}
    keys: dict[tuple[str, str], list[str]] = defaultdict(list)
    for k in conn.execute(select(s.lineage.c.src_ns, s.lineage.c.src_id, s.lineage.c.dst_id)
                          .where(s.lineage.c.kind == "export")):
        keys[(k.src_ns, k.src_id)].append(k.dst_id)
    tasks_by_dag: dict[str, list[Task]] = defaultdict(list)
    for t in conn.execute(select(s.tasks).order_by(s.tasks.c.dag_id, s.tasks.c.task_id)):
        tasks_by_dag[t.dag_id].append(_task(t, tuple(sorted(upstream.get((t.dag_id, t.task_id), ()))),
                                            sensors.get((t.dag_id, t.task_id)),
                                            tuple(sorted(keys.get((t.dag_id, t.task_id), ())))))
    pipelines_by_domain: dict[str, list[Pipeline]] = defaultdict(list)
    for p in conn.execute(select(s.pipelines).order_by(s.pipelines.c.dag_id)):
        pipelines_by_domain[p.domain].append(Pipeline(
            domain=p.domain, name=p.name, dag_id=p.dag_id, schedule=p.schedule, start_date=p.start_date,
            description=p.description or "", tasks=tuple(tasks_by_dag.get(p.dag_id, ())), timezone=p.timezone))
    domains = {}
    for d in conn.execute(select(s.domains).order_by(s.domains.c.name)):
        if not d.plan_sha256:
            continue  # a placeholder of a publish in flight (never committed as such)
        domains[d.name] = Domain(
            name=d.name, owner=d.owner, slack=d.slack, description=d.description or "", project=d.project,
            dbt_version=d.dbt_version, handoff_version=d.handoff_version, plan_sha256=d.plan_sha256,
            manifest_sha256=d.manifest_sha256, origin="registry", published_at=utc(d.published_at), label=d.label,
            pipelines=tuple(pipelines_by_domain.get(d.name, ())), bound_project=d.dbt_project)
    return Mesh(domains)


def _task(t: Row[Any], upstream: tuple[str, ...], sensor: Row[Any] | None, keys: tuple[str, ...] = ()) -> Task:
    if t.kind == SENSOR and sensor is not None:
        return Task(domain=t.domain, dag_id=t.dag_id, task_id=t.task_id, kind=SENSOR, upstream=upstream,
                    upstream_domain=sensor.upstream_domain, upstream_model=sensor.upstream_model,
                    sources=tuple(json.loads(sensor.sources)), timeout_s=sensor.timeout_s,
                    poke_interval_s=sensor.poke_interval_s, mode=sensor.mode, reads_json=sensor.reads,
                    refs=tuple(json.loads(sensor.refs)) if sensor.refs else (), accept=_accept(sensor.accept))
    by, within = t.available_by, t.available_within_s
    problem = Sla(by, within).problem()
    if problem is not None:  # one bad published row costs only its own SLA, never the whole mesh
        log.warning("handoff: ignoring the SLA of %s.%s (dag %s): %s — re-publish its domain with a valid SLA",
                    t.domain, t.task_id, t.dag_id, problem)
        by = within = None
    return Task(domain=t.domain, dag_id=t.dag_id, task_id=t.task_id, kind=t.kind, upstream=upstream, model=t.model,
                unique_id=t.unique_id, relation=t.relation, access=t.access, owner=t.owner, slack=t.slack,
                available_by=by, available_within_s=within, columns_json=t.columns,
                keys=keys)


def _accept(text: str | None) -> tuple[tuple[str, str], ...]:
    return tuple((str(code), str(reason)) for code, reason in json.loads(text or "[]"))


# --------------------------------------------------------------------------------------
# Finding a model
# --------------------------------------------------------------------------------------


def require_published_domain(conn: Connection, domain: str) -> None:
    """Raise HandoffError naming the nearest published domain (or the published ones) unless
    ``domain`` is published."""
    known = conn.execute(select(s.domains.c.name).where(s.domains.c.plan_sha256 != "")).scalars().all()
    if domain not in known:
        near = difflib.get_close_matches(domain, known, n=1)
        raise HandoffError(f"no domain '{domain}' is published",
                           hint=(f"did you mean '{near[0]}'?" if near else
                                 f"published domains: {', '.join(sorted(known)[:20]) or 'none'}"))

def model_tasks(conn: Connection, domain: str, model: str) -> list[Row[Any]]:
    """The task(s) a model key names in ``domain`` (the keys the publication recorded,
    ``handoff.plan.model_keys``: a name resolves to its latest version), else the task whose task
    id it is. Several rows only for data published before versions were recorded.

    Raises HandoffError naming what exists when nothing matches.
    """
    base = (select(s.tasks, s.pipelines.c.schedule, s.pipelines.c.timezone)
            .join(s.pipelines, s.pipelines.c.dag_id == s.tasks.c.dag_id)
            .where(s.tasks.c.domain == domain, s.tasks.c.kind != SENSOR))
    lin = s.lineage
    rows = conn.execute(base.join(lin, (lin.c.src_ns == s.tasks.c.dag_id) & (lin.c.src_id == s.tasks.c.task_id))
                        .where(lin.c.kind == "export", lin.c.dst_ns == f"@{domain}", lin.c.dst_id == model)
                        .order_by(s.tasks.c.task_id)).all()
    if rows:
        return list(rows)
    rows = conn.execute(base.where(s.tasks.c.task_id == model)).all()
    if rows:
        return list(rows)
    require_published_domain(conn, domain)
    names = conn.execute(select(lin.c.dst_id).where(lin.c.kind == "export", lin.c.dst_ns == f"@{domain}")
                         ).scalars().all()
    near = difflib.get_close_matches(model, [n for n in names if n], n=1)
    raise HandoffError(f"{domain} publishes no model '{model}'",
                       hint=f"did you mean '{near[0]}'?" if near else f"see `handoff explain {domain}.<model>`")


def _one_task(conn: Connection, domain: str, model: str) -> Row[Any]:
    rows = model_tasks(conn, domain, model)
    if len(rows) > 1:
        raise HandoffError(f"{domain}.{model} names several versions ({', '.join(r.task_id for r in rows)})",
                           hint=f"name one by its task id, e.g. {domain}.{rows[-1].task_id}, or republish "
                                f"{domain} with this handoff (it records which version is the latest)")
    return rows[0]


def _export_keys(conn: Connection, rows: Iterable[Row[Any]]) -> dict[tuple[str, str], tuple[str, ...]]:
    """The model keys each task of ``rows`` was published under."""
    wanted = {(r.dag_id, r.task_id) for r in rows}
    found: dict[tuple[str, str], list[str]] = defaultdict(list)
    lin = s.lineage
    for dag_id in sorted({d for d, _ in wanted}):
        ids = sorted(task for d, task in wanted if d == dag_id)
        for i in range(0, len(ids), 500):  # lineage's primary key (src_ns, src_id): never the DAG's every edge
            for k in conn.execute(select(lin.c.src_id, lin.c.dst_id).where(
                    lin.c.kind == "export", lin.c.src_ns == dag_id, lin.c.src_id.in_(ids[i:i + 500]))):
                found[(dag_id, k.src_id)].append(k.dst_id)
    return {key: tuple(sorted(found.get(key, ()))) for key in wanted}


# --------------------------------------------------------------------------------------
# Teams
# --------------------------------------------------------------------------------------

def _teams(conn: Connection, names: Iterable[str]) -> dict[str, tuple[str, str]]:
    wanted = sorted(set(names))
    if not wanted:
        return {}
    return {d.name: (d.owner, d.slack)
            for d in conn.execute(select(s.domains.c.name, s.domains.c.owner, s.domains.c.slack)
                                  .where(s.domains.c.name.in_(wanted)))}


# --------------------------------------------------------------------------------------
# Sensors waiting on a model (the recovery callback)
# --------------------------------------------------------------------------------------

def sensors_waiting_on(conn: Connection, domain: str, model: str) -> list[SensorWait]:
    """See ``Registry.sensors_waiting_on``."""
    try:
        origins = model_tasks(conn, domain, model)
    except HandoffError:
        return []
    origin_keys = _export_keys(conn, origins)
    keys = sorted({k for ks in origin_keys.values() for k in ks})
    found = []
    for r in _registered_sensors(conn, domain, keys):
        # the sensor's key names exactly one task (a name: the latest version), else it is ambiguous
        # data from before versions were recorded (HO302): no task of ``origins`` then
        targets = [o for o in origins if r.upstream_model in origin_keys[(o.dag_id, o.task_id)]]
        if len(targets) != 1 or _key_count(conn, domain, r.upstream_model) != 1:
            continue
        target = targets[0]
        found.append(_wait(r, domain, target.dag_id, target.task_id, target.schedule, target.timezone))
    return found


def _registered_sensors(conn: Connection, domain: str, keys: list[str]) -> list[Row[Any]]:
    """Cross edges (with the reading pipeline's schedule and timezone) of sensors on ``domain``'s
    model ``keys`` — only sensors the downstream domain's own plan registered, in its own DAGs
    (dag_id derived from its name): reconciliation must never touch another domain's task (#12)."""
    ce, p, sensor = s.cross_edges, s.pipelines, s.tasks.alias("sensor")
    return list(conn.execute(
        select(ce, p.c.schedule, p.c.timezone).join(p, p.c.dag_id == ce.c.dag_id)
        .join(sensor, (sensor.c.dag_id == ce.c.dag_id) & (sensor.c.task_id == ce.c.sensor_task_id))
        .where(ce.c.upstream_domain == domain, ce.c.upstream_model.in_(keys),
               p.c.domain == ce.c.domain, sensor.c.domain == ce.c.domain, sensor.c.kind == SENSOR,
               ce.c.dag_id == p.c.domain.concat("__").concat(p.c.name))
        .order_by(ce.c.dag_id, ce.c.sensor_task_id)).all())


def _wait(row: Row[Any], domain: str, upstream_dag_id: str, upstream_task_id: str, upstream_schedule: Any,
          upstream_timezone: Any) -> SensorWait:
    """One sensor (a row of ``_registered_sensors``) waiting on that upstream task."""
    return SensorWait(
        downstream_domain=row.domain, dag_id=row.dag_id, sensor_task_id=row.sensor_task_id,
        downstream_schedule=row.schedule, upstream_domain=domain, upstream_model=row.upstream_model,
        upstream_dag_id=upstream_dag_id, upstream_task_id=upstream_task_id, upstream_schedule=upstream_schedule,
        timeout_s=row.timeout_s, poke_interval_s=row.poke_interval_s, mode=row.mode,
        upstream_timezone=upstream_timezone, downstream_timezone=row.timezone)


def _key_count(conn: Connection, domain: str, key: str) -> int:
    lin = s.lineage
    return int(conn.execute(select(func.count()).where(lin.c.kind == "export", lin.c.dst_ns == f"@{domain}",
                                                     lin.c.dst_id == key)).scalar() or 0)


def sensors_waiting_on_task(conn: Connection, dag_id: str, task_id: str) -> list[SensorWait]:
    """See ``Registry.sensors_waiting_on_task``: the sensors of other DAGs waiting on one of the
    model keys task ``dag_id.task_id`` exports, keyed by that task (what every success callback
    asks). Each step is an indexed lookup — the task (primary key), its keys (lineage's primary
    key), the sensors reading them (``ix_cross_edges_upstream``), how many tasks export each key
    (``ix_lineage_dst``, migration 8) — so the cost does not grow with the domain's size. Same
    rules as ``sensors_waiting_on``: only sensors the downstream domain's own plan registered, and
    only keys exactly one task exports."""
    t, p, lin = s.tasks, s.pipelines, s.lineage
    task = conn.execute(select(t.c.domain, t.c.kind, p.c.schedule, p.c.timezone).join(p, p.c.dag_id == t.c.dag_id)
                        .where(t.c.dag_id == dag_id, t.c.task_id == task_id)).first()
    if task is None or task.kind == SENSOR:
        return []
    keys = sorted(conn.execute(select(lin.c.dst_id).where(
        lin.c.src_ns == dag_id, lin.c.src_id == task_id, lin.c.kind == "export",
        lin.c.dst_ns == f"@{task.domain}")).scalars())
    if not keys:
        return []
    domain = task.domain
    rows = _registered_sensors(conn, domain, keys)
    if not rows:
        return []
    read = sorted({r.upstream_model for r in rows})
    exporters: dict[str, int] = dict(conn.execute(select(lin.c.dst_id, func.count()).where(
        lin.c.kind == "export", lin.c.dst_ns == f"@{domain}", lin.c.dst_id.in_(read))
        .group_by(lin.c.dst_id)).tuples().all())
    return [_wait(r, domain, dag_id, task_id, task.schedule, task.timezone)
            for r in rows if exporters.get(r.upstream_model) == 1]


# --------------------------------------------------------------------------------------
# History
# --------------------------------------------------------------------------------------

def domain_of_project(conn: Connection, project: str) -> str | None:
    """The domain bound to dbt project ``project`` (None when no domain is)."""
    found = conn.execute(select(s.domains.c.name).where(s.domains.c.dbt_project == project)).scalar_one_or_none()
    return str(found) if found is not None else None


def project_domains(conn: Connection) -> dict[str, str]:
    """Every bound dbt project -> its domain (what compile needs for cross-project refs)."""
    d = s.domains.c
    return {str(p): str(n) for p, n in conn.execute(select(d.dbt_project, d.name).where(d.dbt_project.is_not(None)))}


def transfers(conn: Connection, domain: str | None, limit: int) -> list[dict[str, Any]]:
    """Changes of domains' bindings to dbt projects, latest first."""
    t = s.domain_transfers
    query = select(t).order_by(t.c.id.desc()).limit(limit)
    if domain is not None:
        query = query.where(t.c.domain == domain)
    return [{**r._asdict(), "transferred_at": _iso(r.transferred_at)} for r in conn.execute(query)]


def history(conn: Connection, domain: str | None, limit: int) -> list[dict[str, Any]]:
    query = select(s.publications).order_by(s.publications.c.id.desc()).limit(limit)
    if domain is not None:
        query = query.where(s.publications.c.domain == domain)
    return [{**r._asdict(), "published_at": _iso(r.published_at)} for r in conn.execute(query)]


def utc(moment: datetime | None) -> Any:
    """Datetimes come back naive from SQLite: they were stored in UTC."""
    if moment is None:
        return None
    return moment.replace(tzinfo=timezone.utc) if moment.tzinfo is None else moment.astimezone(timezone.utc)


def _iso(moment: datetime | None) -> str | None:
    found = utc(moment)
    return found.isoformat().replace("+00:00", "Z") if found else None
