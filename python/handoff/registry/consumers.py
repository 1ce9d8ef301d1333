"""Who depends on a model (``handoff who-depends-on``, the model page, messages): one recursive
query over the lineage index and a 0-1 breadth-first walk that counts domain boundaries crossed
(called by ``Registry`` inside a transaction; results are ``queries.Consumer``).
"""

from __future__ import annotations

from collections import defaultdict, deque
from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import select, text
from sqlalchemy.engine import Connection, Row

from . import schema as s
from .mesh import SENSOR
from .queries import Consumer, _export_keys, _teams, model_tasks

# One recursive query over the lineage index: every node reachable from the seeds, and the
# edges leaving them, with the task behind each edge's target. UNION (not UNION ALL) visits
# each node once, so cycles terminate.
_REACH = """
WITH RECURSIVE reach(ns, id) AS (
  {seeds}
  UNION
  SELECT l.dst_ns, l.dst_id FROM reach r JOIN lineage l ON l.src_ns = r.ns AND l.src_id = r.id
)
SELECT l.src_ns, l.src_id, l.dst_ns, l.dst_id, l.kind,
       t.domain AS t_domain, t.kind AS t_kind, t.model AS t_model, t.owner AS t_owner, t.slack AS t_slack,
       t.access AS t_access, t.available_by AS t_available_by
FROM reach r
JOIN lineage l ON l.src_ns = r.ns AND l.src_id = r.id
LEFT JOIN tasks t ON t.dag_id = l.dst_ns AND t.task_id = l.dst_id
"""

NodeKey = tuple[str, str]


def consumers(conn: Connection, domain: str, model: str, *, transitive: bool = True) -> list[Consumer]:
    """See ``Registry.consumers``."""
    origins = model_tasks(conn, domain, model)
    if not transitive:
        return _direct_consumers(conn, domain, origins)
    seeds: list[NodeKey] = [(f"@{domain}", model)] + [(o.dag_id, o.task_id) for o in origins]
    keys = _export_keys(conn, origins)
    seeds += [(f"@{domain}", key) for o in origins for key in keys[(o.dag_id, o.task_id)] if key != model]
    params: dict[str, str] = {}
    selects = []
    for i, (ns, id_) in enumerate(seeds):
        params[f"ns{i}"], params[f"id{i}"] = ns, id_
        selects.append(f"SELECT CAST(:ns{i} AS VARCHAR(200)), CAST(:id{i} AS VARCHAR(250))")
    rows = conn.execute(text(_REACH.format(seeds=" UNION ALL ".join(selects))), params).all()
    return _walk(domain, model, seeds, rows, {})  # every model task carries its owner and Slack channel


def _walk(domain: str, model: str, seeds: list[NodeKey], rows: Sequence[Sequence[Any]],
          teams: Mapping[str, tuple[str, str]]) -> list[Consumer]:
    """Domain-crossing depth (0-1 breadth-first) and the path to every model task reached."""
    succ: dict[NodeKey, list[tuple[NodeKey, str]]] = defaultdict(list)
    # task node -> (domain, kind, model, owner, slack, access, available_by)
    info: dict[NodeKey, tuple[Any, ...]] = {}
    for src_ns, src_id, dst_ns, dst_id, kind, *task in rows:  # plain tuples: Row attributes cost µs each
        dst = (dst_ns, dst_id)
        succ[(src_ns, src_id)].append((dst, kind))
        if task[0] is not None:
            info[dst] = tuple(task)
    seed_key = (f"@{domain}", model)
    depth: dict[NodeKey, int] = dict.fromkeys(seeds, 0)
    parent: dict[NodeKey, NodeKey] = {}
    queue: deque[NodeKey] = deque(seeds)
    while queue:
        node = queue.popleft()
        here = depth[node]
        for dst, kind in succ.get(node, ()):
            # a sensor of another domain waiting on a model key crosses a domain boundary
            cost = 1 if kind == "sensor" and info[dst][0] != node[0][1:] else 0
            if dst not in depth or here + cost < depth[dst]:
                depth[dst] = here + cost
                parent[dst] = node
                (queue.append if cost else queue.appendleft)(dst)

    origin = f"{domain}.{model}"
    direct_sensors = [dst for dst, kind in succ.get(seed_key, ()) if kind == "sensor"]
    directly_fed = {dst for sensor in direct_sensors for dst, kind in succ.get(sensor, ()) if kind == "task"}
    via: dict[NodeKey, tuple[str, ...]] = dict.fromkeys(seeds, ())
    via[seed_key] = (origin,)
    last_sensor: dict[NodeKey, str] = dict.fromkeys(seeds, "")

    def path_of(node: NodeKey) -> tuple[tuple[str, ...], str]:
        """(models crossed, nearest sensor) on the path to ``node``, memoized down the parent tree."""
        chain = []
        step = node
        while step not in via:
            chain.append(step)
            step = parent[step]
        for step in reversed(chain):
            up = parent[step]
            via[step] = via[up] + ((f"{step[0][1:]}.{step[1]}",) if step[0][0] == "@" else ())
            last_sensor[step] = step[1] if step in info and info[step][1] == SENSOR else last_sensor[up]
        return via[node], last_sensor[node]

    found = []
    for node, (t_domain, t_kind, t_model, t_owner, t_slack, t_access, t_available_by) in info.items():
        if t_kind == SENSOR or depth.get(node, 0) == 0:
            continue
        crossed, sensor = path_of(node)
        if not crossed or crossed[0] != origin:
            crossed = (origin, *crossed)
        team = teams.get(t_domain, ("", ""))
        found.append(Consumer(domain=t_domain, dag_id=node[0], task_id=node[1], model=t_model,
                              owner=t_owner or team[0], slack=t_slack or team[1], depth=depth[node], via=crossed,
                              sensor_task_id=sensor, direct=node in directly_fed, kind=t_kind, access=t_access,
                              available_by=t_available_by))
    found.sort(key=lambda c: (c.depth, c.domain, c.dag_id, c.task_id))
    return found


def _direct_consumers(conn: Connection, domain: str, origins: list[Row[Any]]) -> list[Consumer]:
    keys = sorted({k for ks in _export_keys(conn, origins).values() for k in ks})
    ce, e, t = s.cross_edges, s.task_edges, s.tasks
    rows = conn.execute(
        select(ce.c.sensor_task_id, ce.c.upstream_model, t)
        .join(e, (e.c.dag_id == ce.c.dag_id) & (e.c.upstream_task_id == ce.c.sensor_task_id))
        .join(t, (t.c.dag_id == e.c.dag_id) & (t.c.task_id == e.c.downstream_task_id))
        .where(ce.c.upstream_domain == domain, ce.c.upstream_model.in_(keys), ce.c.domain != domain,
               t.c.kind != SENSOR)).all()
    teams = _teams(conn, {r.domain for r in rows})
    found = {}
    for r in rows:
        owner, slack = r.owner or teams[r.domain][0], r.slack or teams[r.domain][1]
        found[(r.dag_id, r.task_id)] = Consumer(
            domain=r.domain, dag_id=r.dag_id, task_id=r.task_id, model=r.model, owner=owner, slack=slack, depth=1,
            via=(f"{domain}.{r.upstream_model}",), sensor_task_id=r.sensor_task_id, direct=True, kind=r.kind,
            access=r.access, available_by=r.available_by)
    return sorted(found.values(), key=lambda c: (c.domain, c.dag_id, c.task_id))
