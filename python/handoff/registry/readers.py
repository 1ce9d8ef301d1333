"""Who reads many model tasks at once (one snapshot, one dict build): the audiences of a wake of the
SLA watch, where hundreds or thousands of models of one domain can miss together.

``Registry.audience`` answers for one task with a recursive walk over the lineage from it, which
crosses the task's in-domain descendants: asked for every model of a 5,000-model DAG it walks the
DAG 5,000 times (quadratic: > 25 min). ``audiences`` answers for all tasks of a wake together:

1. it loads, once, the in-domain lineage of the tasks' domains (``ix_lineage_domain``) and the
   sensors of other domains reading their model keys (lineage's primary key on ``@domain``);
2. per domain, one pass over the in-domain graph (memoized, children before parents) finds for
   every task the model keys reachable from it *within* its domain that another domain reads
   (the only way out of the domain);
3. the other domains' side of each such key is walked once (the recursive ``consumers._REACH``
   query, seeded with the keys, in chunks) and shared by every task reaching it;
4. per task, ``consumers._walk`` — the same 0-1 breadth-first walk ``consumers`` runs — over the
   task's own keys, one edge to each key it reaches, and those keys' shared other-domain side.

The consumers, their depth (domain boundaries crossed), nearest sensor and ``direct`` flag are
what ``consumers(domain, task, transitive=True)`` finds in other domains; ``via`` names the model
keys crossed from the task's domain onwards (an in-domain path through another pipeline of the
task's domain is not spelled out). Cost: the size of the domains involved plus, per task, its
readers — never the task's whole in-domain closure. tests/notify/test_sla_grouping.py checks the
answers against ``audience`` on a generated registry.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from sqlalchemy import select, text
from sqlalchemy.engine import Connection

from ..plan.graph import reachable
from . import schema as s
from .consumers import _REACH, NodeKey, _walk
from .mesh import SENSOR
from .queries import Consumer

_CHUNK = 400  # seeds per recursive query (SQLite caps a compound SELECT at 500 terms); names per IN list

Row = tuple[Any, ...]  # (src_ns, src_id, dst_ns, dst_id, kind, t_domain, t_kind, t_model, t_owner, ...)


def audiences(conn: Connection, targets: Iterable[tuple[str, str]]) -> dict[tuple[str, str], dict[str, Any]]:
    """``notifications.audience`` for every (dag_id, task_id) of ``targets`` that is a published
    model task, from one snapshot: {target: {task, consumers, schedules, teams}} (the same keys)."""
    from .notifications import teams as teams_of

    wanted = sorted(set(targets))
    tasks = _tasks(conn, wanted)
    if not tasks:
        return {}
    found = readers(conn, {key: row["domain"] for key, row in tasks.items()})
    dags = {dag for dag, _ in tasks} | {c.dag_id for cs in found.values() for c in cs}
    p = s.pipelines.c
    schedules: dict[str, str] = {}
    for chunk in _chunks(sorted(dags)):
        schedules.update((r.dag_id, r.schedule) for r in conn.execute(select(p.dag_id, p.schedule)
                                                                        .where(p.dag_id.in_(chunk))))
    domains = {row["domain"] for row in tasks.values()} | {c.domain for cs in found.values() for c in cs}
    teams = teams_of(conn, domains)
    out = {}
    for key, row in tasks.items():
        consumers = found.get(key, [])
        involved = {row["domain"]} | {c.domain for c in consumers}
        out[key] = {"task": row, "consumers": consumers,
                    "schedules": {d: schedules[d] for d in {key[0]} | {c.dag_id for c in consumers} if d in schedules},
                    "teams": {d: teams[d] for d in involved if d in teams}}
    return out


def readers(conn: Connection, tasks: Mapping[tuple[str, str], str]) -> dict[tuple[str, str], list[Consumer]]:
    """(dag_id, task_id) -> its consumers in other domains, for every model task of ``tasks``
    (target -> its domain); see the module docstring."""
    by_domain: dict[str, list[tuple[str, str]]] = defaultdict(list)
    for key, domain in tasks.items():
        by_domain[domain].append(key)
    out: dict[tuple[str, str], list[Consumer]] = {}
    for domain, keys in by_domain.items():
        out.update(_domain_readers(conn, domain, keys))
    return out


def _domain_readers(conn: Connection, domain: str, targets: Sequence[tuple[str, str]]
                    ) -> dict[tuple[str, str], list[Consumer]]:
    home = f"@{domain}"
    lin = s.lineage.c
    inside: dict[NodeKey, list[NodeKey]] = defaultdict(list)  # in-domain edges (depth 0)
    exports: dict[NodeKey, list[str]] = defaultdict(list)  # task node -> its model keys
    for src_ns, src_id, dst_ns, dst_id, kind in conn.execute(
            select(lin.src_ns, lin.src_id, lin.dst_ns, lin.dst_id, lin.kind).where(lin.domain == domain)):
        if src_ns.startswith("@") and src_ns != home:
            continue  # this domain's sensors reading other domains: not reachable from its own tasks at depth 0
        inside[(src_ns, src_id)].append((dst_ns, dst_id))
        if kind == "export":
            exports[(src_ns, src_id)].append(dst_id)
    read_keys = sorted({str(k) for k in conn.execute(select(lin.src_id).where(
        lin.src_ns == home, lin.kind == "sensor", lin.domain != domain)).scalars()})
    if not read_keys:
        return {t: [] for t in targets}
    exits = _exits(inside, {(home, k) for k in read_keys}, list(targets))
    outside = _outside(conn, domain, read_keys)
    found: dict[tuple[str, str], list[Consumer]] = {}
    for dag_id, task_id in targets:
        node = (dag_id, task_id)
        reached = exits.get(node, frozenset())
        if not reached:
            found[node] = []
            continue
        own = sorted(set(exports.get(node, ())) - {task_id})
        seeds: list[NodeKey] = [(home, task_id), node] + [(home, k) for k in own]
        rows: list[Row] = [(dag_id, task_id, home, key, "export", *(None,) * 7) for _, key in sorted(reached)
                           if (home, key) not in seeds]
        for key_node in sorted(reached):
            rows.extend(outside.get(key_node[1], ()))
        found[node] = [c for c in _walk(domain, task_id, seeds, rows, {}) if c.domain != domain]
    return found


def _exits(inside: Mapping[NodeKey, Sequence[NodeKey]], read: set[NodeKey], targets: Sequence[NodeKey]
           ) -> dict[NodeKey, frozenset[NodeKey]]:
    """For each node reachable from ``targets`` over ``inside``: the read model keys it reaches
    (itself included). Children before parents, iteratively (a 5,000-deep chain is no recursion);
    an edge back into a node still open (a cycle through another pipeline) is followed by a plain
    search from that node instead, so nothing reachable is left out."""
    memo: dict[NodeKey, frozenset[NodeKey]] = {}
    empty: frozenset[NodeKey] = frozenset()
    for start in targets:
        if start in memo:
            continue
        stack: list[tuple[NodeKey, int]] = [(start, 0)]
        open_: set[NodeKey] = {start}
        done: list[NodeKey] = []
        cyclic = False
        while stack:
            node, i = stack[-1]
            children = inside.get(node, ())
            if i < len(children):
                stack[-1] = (node, i + 1)
                child = children[i]
                if child in memo:
                    continue
                if child in open_:
                    cyclic = True
                    continue
                open_.add(child)
                stack.append((child, 0))
                continue
            stack.pop()
            open_.discard(node)
            acc: set[NodeKey] = {node} & read
            for child in children:
                acc |= memo.get(child, empty)
            memo[node] = frozenset(acc) if acc else empty
            done.append(node)
        if cyclic:  # what this pass memoized may be short of what the cycle reaches: search again
            for node in done:
                memo[node] = _search(inside, read, node)
    return memo


def _search(inside: Mapping[NodeKey, Sequence[NodeKey]], read: set[NodeKey], start: NodeKey) -> frozenset[NodeKey]:
    return frozenset(reachable([start], inside) & read)


def _outside(conn: Connection, domain: str, keys: Sequence[str]) -> dict[str, list[Row]]:
    """Per read model key of ``domain``: the lineage rows of its other-domain side — its sensors in
    other domains and everything reachable from them — as ``consumers._REACH`` returns rows."""
    home = f"@{domain}"
    rows: list[Row] = []
    for chunk in _chunks(list(keys)):
        params: dict[str, str] = {"ns": home}
        selects = []
        for i, key in enumerate(chunk):
            params[f"id{i}"] = key
            selects.append(f"SELECT CAST(:ns AS VARCHAR(200)), CAST(:id{i} AS VARCHAR(250))")
        rows.extend(tuple(r) for r in conn.execute(text(_REACH.format(seeds=" UNION ALL ".join(selects))), params))
    succ: dict[NodeKey, list[Row]] = defaultdict(list)
    for row in rows:
        succ[(row[0], row[1])].append(row)
    found: dict[str, list[Row]] = {}
    for key in keys:
        # leave by the sensors of other domains only; from there, everything (depth > 0)
        first = [r for r in succ.get((home, key), ()) if r[4] == "sensor" and r[5] != domain and r[6] == SENSOR]
        seen: set[NodeKey] = set()
        todo = [(r[2], r[3]) for r in first]
        taken = list(first)
        while todo:
            node = todo.pop()
            if node in seen:
                continue
            seen.add(node)
            for r in succ.get(node, ()):
                taken.append(r)
                todo.append((r[2], r[3]))
        found[key] = list(dict.fromkeys(taken))
    return found


def _tasks(conn: Connection, wanted: Sequence[tuple[str, str]]) -> dict[tuple[str, str], dict[str, Any]]:
    t, p = s.tasks, s.pipelines
    by_dag: dict[str, list[str]] = defaultdict(list)
    for dag_id, task_id in wanted:
        by_dag[dag_id].append(task_id)
    found: dict[tuple[str, str], dict[str, Any]] = {}
    for dag_id in sorted(by_dag):
        for chunk in _chunks(by_dag[dag_id]):
            for r in conn.execute(select(t.c.domain, t.c.task_id, t.c.kind, t.c.model, t.c.owner, t.c.slack,
                                         t.c.available_by, p.c.schedule).join(p, p.c.dag_id == t.c.dag_id)
                                  .where(t.c.dag_id == dag_id, t.c.task_id.in_(chunk))):
                if r.kind == SENSOR:
                    continue
                found[(dag_id, r.task_id)] = {"domain": r.domain, "dag_id": dag_id, "task_id": r.task_id,
                                              "model": r.model, "owner": r.owner, "slack": r.slack,
                                              "schedule": r.schedule, "available_by": r.available_by}
    return found


def _chunks(items: Sequence[str]) -> list[Sequence[str]]:
    return [items[i:i + _CHUNK] for i in range(0, len(items), _CHUNK)]
