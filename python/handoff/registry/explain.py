"""One model explained (``handoff explain``, the model page): its domain, pipeline and task, the
sensors upstream of it resolved to their upstream DAG/task/schedule, and who reads it. A plain
dict so that features can add keys (e.g. run states) without changing its callers; the CLI
renders whatever it holds.
"""

from __future__ import annotations

import json
from collections import defaultdict
from typing import Any

from sqlalchemy import select
from sqlalchemy.engine import Connection, Row

from ..alignment import alignment_warning
from ..errors import HandoffError
from . import schema as s
from .consumers import consumers
from .queries import Consumer, _accept, _iso, _one_task
from .views import Explained, UpstreamView, WaitView


def explain(conn: Connection, domain: str, model: str, *, every: list[Consumer] | None = None) -> Explained:
    """One model as a dict: domain, pipeline, the task, what it waits on, who reads it.

    ``every``: its transitive consumers when the caller already has them (the model page lists
    them; computing them twice doubles the cost of a wide consumer tree).

    Keys: domain, pipeline, model, upstream_tasks, downstream_tasks, waits_on (every sensor
    upstream of the model in its DAG, resolved to the upstream DAG/task/schedule), consumers
    (direct consumers in other domains), transitive_consumers (how many in all).
    """
    task = _one_task(conn, domain, model)
    d = conn.execute(select(s.domains).where(s.domains.c.name == domain)).one()
    p = conn.execute(select(s.pipelines).where(s.pipelines.c.dag_id == task.dag_id)).one()
    edges = conn.execute(select(s.task_edges.c.upstream_task_id, s.task_edges.c.downstream_task_id)
                         .where(s.task_edges.c.dag_id == task.dag_id)).all()
    preds: dict[str, list[str]] = defaultdict(list)
    for e in edges:
        preds[e.downstream_task_id].append(e.upstream_task_id)
    ancestors: dict[str, bool] = {}  # task id -> direct upstream of the model?
    stack = [(u, True) for u in preds[task.task_id]]
    while stack:
        node, direct = stack.pop()
        if node in ancestors:
            ancestors[node] = ancestors[node] or direct
            continue
        ancestors[node] = direct
        stack.extend((u, False) for u in preds[node])
    sensors = conn.execute(select(s.cross_edges).where(
        s.cross_edges.c.dag_id == task.dag_id, s.cross_edges.c.sensor_task_id.in_(sorted(ancestors)))
        .order_by(s.cross_edges.c.sensor_task_id)).all()
    waits_on = [_wait(conn, sensor, ancestors[sensor.sensor_task_id], p.schedule, p.timezone) for sensor in sensors]
    readers = consumers(conn, domain, task.task_id, transitive=False)
    if every is None:
        every = consumers(conn, domain, task.task_id, transitive=True)
    return {
        "domain": {"name": d.name, "owner": d.owner, "slack": d.slack, "description": d.description,
                   "project": d.project, "published_at": _iso(d.published_at), "label": d.label,
                   "plan_sha256": d.plan_sha256},
        "pipeline": {"name": p.name, "dag_id": p.dag_id, "schedule": p.schedule, "start_date": p.start_date,
                     "timezone": p.timezone},
        "model": {"name": task.model, "task_id": task.task_id, "kind": task.kind, "unique_id": task.unique_id,
                  "relation": task.relation, "access": task.access, "owner": task.owner, "slack": task.slack,
                  "available_by": task.available_by, "available_within_s": task.available_within_s},
        "upstream_tasks": sorted(preds[task.task_id]),
        "downstream_tasks": sorted(e.downstream_task_id for e in edges if e.upstream_task_id == task.task_id),
        "waits_on": waits_on,
        "consumers": [c.as_dict() for c in readers],
        "transitive_consumers": len(every),
    }


def _wait(conn: Connection, sensor: Row[Any], direct: bool, schedule: str,
          timezone_name: str = "UTC") -> WaitView:
    upstream: UpstreamView | None = None
    problem = None
    try:
        target = _one_task(conn, sensor.upstream_domain, sensor.upstream_model)
        upstream = {"dag_id": target.dag_id, "task_id": target.task_id, "schedule": target.schedule,
                    "timezone": target.timezone, "owner": target.owner, "slack": target.slack,
                    "access": target.access, "available_by": target.available_by,
                    "available_within_s": target.available_within_s}
    except HandoffError as exc:
        problem = exc.one_line()
    return {
        "sensor_task_id": sensor.sensor_task_id, "direct": direct,
        "upstream_domain": sensor.upstream_domain, "upstream_model": sensor.upstream_model,
        "sources": json.loads(sensor.sources), "refs": json.loads(sensor.refs) if sensor.refs else [],
        "timeout_s": sensor.timeout_s,
        "poke_interval_s": sensor.poke_interval_s, "mode": sensor.mode,
        "upstream": upstream, "problem": problem,
        "alignment_warning": (alignment_warning(upstream["schedule"], schedule, upstream["timezone"], timezone_name)
                              if upstream else None),
        "accepted": dict(_accept(sensor.accept)),
    }
