"""Read queries for the map and the web pages (called by ``Registry`` inside a transaction).

The mesh seen from above: domains and the models they hand each other (``domain_map``), a model
search (``search_models``), what a whole DAG waits on (``pipeline_waits``, the shape of
``explain``'s ``waits_on``) and which domain/model an Airflow DAG or task is (``locate``). The
model page itself is ``explain.explain`` + ``consumers.consumers``: one implementation of each.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.engine import Connection

from ..errors import HandoffError
from . import schema as s
from .consumers import consumers
from .explain import _wait, explain
from .mesh import SENSOR
from .queries import Consumer, _iso, _one_task, _teams
from .views import Explained, PipelineSummary, PipelineWaits


def domain_map(conn: Connection) -> dict[str, Any]:
    """Every published domain and every cross-domain hand-over, aggregated per pair of domains.

    Returns ``{"domains": [...], "edges": [...]}``, both sorted by name:

    - domain: name, owner, slack, description, project, label, published_at (ISO, UTC),
      models (model tasks), public (of which ``access: public``), sensors, pipelines
      (``[{name, dag_id, schedule, models, sensors}]``);
    - edge: upstream, downstream (domain names), models (the upstream model keys read, sorted),
      sensors (how many sensors wait on them), dag_ids (the downstream DAGs that wait).

    A sensor whose upstream domain is not published still gives an edge (its ``upstream`` is not
    among the domains): the page shows it as missing.
    """
    t, p, d = s.tasks, s.pipelines, s.domains
    counts: dict[str, dict[str, int]] = defaultdict(lambda: {"models": 0, "public": 0, "sensors": 0})
    for dag_id, kind, access, n in conn.execute(
            select(t.c.dag_id, t.c.kind == SENSOR, t.c.access == "public", func.count())
            .group_by(t.c.dag_id, t.c.kind == SENSOR, t.c.access == "public")):
        key = "sensors" if kind else "models"
        counts[dag_id][key] += n
        if not kind and access:
            counts[dag_id]["public"] += n
    pipelines: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for r in conn.execute(select(p.c.domain, p.c.name, p.c.dag_id, p.c.schedule).order_by(p.c.dag_id)):
        c = counts[r.dag_id]
        pipelines[r.domain].append({"name": r.name, "dag_id": r.dag_id, "schedule": r.schedule,
                                    "models": c["models"], "public": c["public"], "sensors": c["sensors"]})
    domains = []
    for r in conn.execute(select(d).where(d.c.plan_sha256 != "").order_by(d.c.name)):
        own = pipelines.get(r.name, [])
        domains.append({
            "name": r.name, "owner": r.owner, "slack": r.slack, "description": r.description or "",
            "project": r.project, "label": r.label, "published_at": _iso(r.published_at),
            "models": sum(x["models"] for x in own), "public": sum(x["public"] for x in own),
            "sensors": sum(x["sensors"] for x in own), "pipelines": own})
    ce = s.cross_edges
    pairs: dict[tuple[str, str], dict[str, Any]] = {}
    for r in conn.execute(select(ce.c.upstream_domain, ce.c.domain, ce.c.upstream_model, ce.c.dag_id)
                          .where(ce.c.upstream_domain != ce.c.domain)):
        edge = pairs.setdefault((r.upstream_domain, r.domain), {"models": set(), "sensors": 0, "dag_ids": set()})
        edge["models"].add(r.upstream_model)
        edge["sensors"] += 1
        edge["dag_ids"].add(r.dag_id)
    edges = [{"upstream": up, "downstream": down, "models": sorted(e["models"]), "sensors": e["sensors"],
              "dag_ids": sorted(e["dag_ids"])} for (up, down), e in sorted(pairs.items())]
    return {"domains": domains, "edges": edges}


def search_models(conn: Connection, text: str, limit: int = 20) -> list[dict[str, Any]]:
    """Model tasks whose dbt name or task id contains ``text`` (case-insensitive), exact names first.

    Each: domain, model, task_id, dag_id, access. ``text`` is matched literally (``%`` and ``_``
    are not wildcards). At most ``limit`` (1-200) results.
    """
    needle = text.strip().lower()
    if not needle:
        return []
    limit = max(1, min(int(limit), 200))
    pattern = "%" + needle.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
    t = s.tasks
    lowered = func.lower(t.c.model)
    rows = conn.execute(
        select(t.c.domain, t.c.model, t.c.task_id, t.c.dag_id, t.c.access)
        .where(t.c.kind != SENSOR,
               lowered.like(pattern, escape="\\") | func.lower(t.c.task_id).like(pattern, escape="\\"))
        .order_by((lowered != needle), func.length(t.c.model), t.c.domain, t.c.task_id)
        .limit(limit)).all()
    return [{"domain": r.domain, "model": r.model, "task_id": r.task_id, "dag_id": r.dag_id, "access": r.access}
            for r in rows]


def pipeline_waits(conn: Connection, dag_id: str) -> PipelineWaits:
    """A DAG as ``run_state`` reads an explained model: {"domain", "pipeline", "waits_on"}.

    ``waits_on`` holds every sensor of the DAG in ``explain``'s shape (``direct`` is True: each
    sensor is asked about for itself). Raises HandoffError when no such DAG is published.
    """
    p = conn.execute(select(s.pipelines).where(s.pipelines.c.dag_id == dag_id)).first()
    if p is None:
        raise HandoffError(f"no published pipeline has the DAG id '{dag_id}'",
                           hint="see `handoff registry status` for the published domains")
    sensors = conn.execute(select(s.cross_edges).where(s.cross_edges.c.dag_id == dag_id)
                           .order_by(s.cross_edges.c.sensor_task_id)).all()
    return {
        "domain": {"name": p.domain},
        "pipeline": {"name": p.name, "dag_id": p.dag_id, "schedule": p.schedule, "start_date": p.start_date,
                     "timezone": p.timezone},
        "waits_on": [_wait(conn, sensor, True, p.schedule, p.timezone) for sensor in sensors],
    }


def locate(conn: Connection, dag_id: str, task_id: str | None = None) -> dict[str, Any]:
    """Which domain (and model, for a task) an Airflow DAG (task) is: {"domain", "dag_id", "task_id",
    "model", "kind"}; a sensor's task gives its upstream as ``upstream``. Raises HandoffError when
    it is not published."""
    p = conn.execute(select(s.pipelines.c.domain).where(s.pipelines.c.dag_id == dag_id)).first()
    if p is None:
        raise HandoffError(f"no published pipeline has the DAG id '{dag_id}'")
    found: dict[str, Any] = {"domain": p.domain, "dag_id": dag_id, "task_id": task_id, "model": None, "kind": None}
    if task_id is None:
        return found
    t = conn.execute(select(s.tasks.c.kind, s.tasks.c.model).where(
        s.tasks.c.dag_id == dag_id, s.tasks.c.task_id == task_id)).first()
    if t is None:
        raise HandoffError(f"DAG '{dag_id}' has no published task '{task_id}'")
    found.update(kind=t.kind, model=task_id if t.kind != SENSOR else None)
    if t.kind == SENSOR:
        ce = conn.execute(select(s.cross_edges.c.upstream_domain, s.cross_edges.c.upstream_model).where(
            s.cross_edges.c.dag_id == dag_id, s.cross_edges.c.sensor_task_id == task_id)).first()
        if ce is not None:
            found["upstream"] = {"domain": ce.upstream_domain, "model": ce.upstream_model}
    return found


def domain_pipelines(conn: Connection, domain: str) -> list[PipelineSummary]:
    """A published domain's pipelines: [{name, dag_id, schedule}] by dag_id. Raises HandoffError
    (with a did-you-mean) when the domain is not published."""
    rows = conn.execute(select(s.pipelines.c.name, s.pipelines.c.dag_id, s.pipelines.c.schedule)
                        .where(s.pipelines.c.domain == domain).order_by(s.pipelines.c.dag_id)).all()
    if not rows:
        import difflib

        known = conn.execute(select(s.domains.c.name).where(s.domains.c.plan_sha256 != "")).scalars().all()
        near = difflib.get_close_matches(domain, known, n=1)
        raise HandoffError(f"no domain '{domain}' is published",
                           hint=f"did you mean '{near[0]}'?" if near else "see `handoff registry status`")
    return [{"name": r.name, "dag_id": r.dag_id, "schedule": r.schedule} for r in rows]


def model_view(conn: Connection, domain: str, model: str) -> tuple[Explained, list[Consumer],
                                                                    dict[str, tuple[str, str]]]:
    """What a model's page shows, from one snapshot: ``explain`` of the model, every consumer
    (direct and transitive, ``consumers``) and each consuming domain's (owner, slack). The
    transitive walk runs once (explain's count reuses it). Raises HandoffError like ``explain``."""
    task = _one_task(conn, domain, model)
    every = consumers(conn, domain, task.task_id, transitive=True)
    info = explain(conn, domain, model, every=every)
    return info, every, _teams(conn, {c.domain for c in every})

