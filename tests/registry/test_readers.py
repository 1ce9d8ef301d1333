"""Who reads many model tasks at once (handoff.registry.readers, the SLA watch's wake): the same
audiences as one ``audience`` walk per task, on a generated registry of domains reading each other
in chains (SQLite and PostgreSQL), from a number of statements that does not grow with the tasks."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from registry_helpers import chained_plans, published_registry
from sqlalchemy import event, select

from handoff.registry import schema as s
from handoff.plan_model import Plan
from handoff.registry.store import Registry

BACKENDS = ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)]


@pytest.fixture(scope="module")
def chain_plans(plans) -> list[Plan]:
    """shop, billing, growth as dbt compiles them, and five synthetic domains of 90 tasks, each
    reading two public marts of each of the two before it (readers of readers: depth 2 and 3)."""
    made: list[Plan] = [plans(name) for name in ("shop", "billing", "growth")]
    return chained_plans(made, "chain", 5, 90, reach=2)


@pytest.fixture(scope="module", params=BACKENDS)
def registry(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory,
             chain_plans: list[Plan]) -> Iterator[Registry]:
    with published_registry(request, tmp_path_factory, "handoff_readers", chain_plans) as opened:
        yield opened


def _model_tasks(registry: Registry) -> list[tuple[str, str]]:
    t = s.tasks.c
    with registry.engine.connect() as conn:
        return [(r.dag_id, r.task_id) for r in conn.execute(
            select(t.dag_id, t.task_id).where(t.kind != "sensor").order_by(t.dag_id, t.task_id))]


def _shape(found: dict[str, Any]) -> dict[str, Any]:
    """An audience without the order of its consumers and their ``via`` (a path of equal length
    may be named differently): what every message is built from."""
    return {"task": found["task"], "schedules": found["schedules"], "teams": found["teams"],
            "consumers": sorted((c.domain, c.dag_id, c.task_id, c.model, c.owner, c.slack, c.depth, c.sensor_task_id,
                                 c.direct, c.kind, c.access, c.available_by, len(c.via), c.via[0])
                                for c in found["consumers"])}


def test_many_audiences_at_once_are_the_audience_of_each(registry) -> None:
    tasks = _model_tasks(registry)
    together = registry.audiences(tasks)
    assert sorted(together) == tasks
    deep = read = 0
    for key in tasks:
        one = registry.audience(*key)
        assert _shape(together[key]) == _shape(one), key
        read += bool(one["consumers"])
        deep += any(c.depth >= 2 for c in one["consumers"])
        for c in together[key]["consumers"]:  # the path named still starts at the task and ends at a key it crosses
            assert c.via[0] == f"{one['task']['domain']}.{key[1]}", (key, c)
    assert len(tasks) > 400 and read >= 40 and deep >= 30, (len(tasks), read, deep)  # readers of readers too  # staging models reach readers of readers
    assert registry.audiences([("chain0__daily", "nothing"), ("billing__daily", "wait__shop__orders")]) == {}


def test_the_statements_of_a_wake_do_not_grow_with_its_tasks(registry) -> None:
    tasks = _model_tasks(registry)
    few = [t for t in tasks if t[0] == "chain0__daily"][:5]
    many = [t for t in tasks if t[0] == "chain0__daily"]
    counts = []
    for wanted in (few, many):
        seen: list[str] = []

        def grab(conn: Any, cursor: Any, statement: str, parameters: Any, context: Any, executemany: bool,
                 into: list[str] = seen) -> None:
            into.append(statement)

        event.listen(registry.engine, "before_cursor_execute", grab)
        try:
            found = registry.audiences(wanted)
        finally:
            event.remove(registry.engine, "before_cursor_execute", grab)
        assert len(found) == len(wanted) and any(a["consumers"] for a in found.values())
        counts.append(len([st for st in seen if st.lstrip().upper().startswith(("SELECT", "WITH"))]))
    assert len(many) >= 80 and counts[0] == counts[1] <= 8, counts
