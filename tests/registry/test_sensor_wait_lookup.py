"""The per-success lookup ``sensors_waiting_on_task`` (issue #15 follow-up): keyed by the completed
task, every statement an indexed search (migration 8: ``ix_lineage_dst``), and the same answer as
the model-key path (``sensors_waiting_on``) it replaced, on a generated registry of several domains
reading each other (SQLite and PostgreSQL) plus the compiled example projects."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from registry_helpers import chained_plans, published_registry
from sqlalchemy import event, inspect, select, text

from handoff.registry import migrations, queries
from handoff.registry import schema as s
from handoff.plan_model import Plan
from handoff.registry.store import Registry

BACKENDS = ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)]


@pytest.fixture(scope="module")
def mesh_plans(plans) -> list[Plan]:
    """shop, billing and growth as dbt compiles them, and six synthetic domains
    of 120 tasks, each reading public marts of up to three earlier ones."""
    made: list[Plan] = [plans(name) for name in ("shop", "billing", "growth")]
    return chained_plans(made, "gen", 6, 120, reach=3)


@pytest.fixture(scope="module", params=BACKENDS)
def registry(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory,
             mesh_plans: list[Plan]) -> Iterator[Registry]:
    with published_registry(request, tmp_path_factory, "handoff_sensor_lookup", mesh_plans) as opened:
        yield opened


def _model_tasks(registry: Registry) -> list[tuple[str, str, str]]:
    t = s.tasks.c
    with registry.engine.connect() as conn:
        return [(r.domain, r.dag_id, r.task_id) for r in conn.execute(
            select(t.domain, t.dag_id, t.task_id).where(t.kind != "sensor").order_by(t.dag_id, t.task_id))]


def test_the_task_keyed_lookup_answers_what_the_model_key_path_answered(registry) -> None:
    tasks = _model_tasks(registry)
    waited_on = 0
    with registry.engine.connect() as conn:
        for domain, dag_id, task_id in tasks:
            new = queries.sensors_waiting_on_task(conn, dag_id, task_id)
            assert new == queries.sensors_waiting_on(conn, domain, task_id), (dag_id, task_id)
            waited_on += bool(new)
        assert queries.sensors_waiting_on_task(conn, "billing__daily", "wait__shop__orders") == []  # a sensor
        assert queries.sensors_waiting_on_task(conn, "nobody__daily", "x") == []
    assert len(tasks) > 700 and waited_on >= 10  # the mesh has readers to find
    [wait] = registry.sensors_waiting_on_task("shop__daily", "orders")
    assert (wait.upstream_model, wait.dag_id, wait.sensor_task_id) == ("orders", "billing__daily", "wait__shop__orders")


def _plan(conn: Any, statement: str, parameters: Any) -> list[str]:
    """The steps of the statement's query plan (PostgreSQL: with sequential scans disabled, so a
    'Seq Scan' left in the plan means no index can serve it)."""
    if conn.dialect.name == "sqlite":
        return [str(row[-1]) for row in conn.exec_driver_sql(f"EXPLAIN QUERY PLAN {statement}", parameters)]
    conn.exec_driver_sql("SET enable_seqscan = off")
    return [str(row[0]) for row in conn.exec_driver_sql(f"EXPLAIN {statement}", parameters)]


def test_every_statement_of_the_lookup_is_an_indexed_search(registry) -> None:
    dag_id, task_id = next((g, t) for d, g, t in _model_tasks(registry)
                           if d.startswith("gen") and registry.sensors_waiting_on_task(g, t))
    seen: list[tuple[str, Any]] = []

    def grab(conn: Any, cursor: Any, statement: str, parameters: Any, context: Any, executemany: bool) -> None:
        seen.append((statement, parameters))

    event.listen(registry.engine, "before_cursor_execute", grab)
    try:
        assert registry.sensors_waiting_on_task(dag_id, task_id)
    finally:
        event.remove(registry.engine, "before_cursor_execute", grab)
    selects = [(st, p) for st, p in seen if st.lstrip().upper().startswith("SELECT")]
    assert len(selects) == 4, [st for st, _ in selects]  # the task, its keys, the sensors, exporters per key
    steps: list[str] = []
    with registry.engine.connect() as conn:
        for statement, parameters in selects:
            found = _plan(conn, statement, parameters)
            assert not [step for step in found if step.startswith("SCAN") or "Seq Scan" in step], (statement, found)
            steps.extend(found)
        conn.rollback()
    assert any("ix_lineage_dst" in step for step in steps), steps
    assert any("ix_cross_edges_upstream" in step for step in steps), steps


def test_the_lineage_index_migration_upgrades_an_older_registry(registry_url) -> None:
    version = next(m.version for m in migrations.MIGRATIONS if m.apply is migrations._lineage_dst_index)
    with Registry(registry_url) as old:
        with old.engine.begin() as conn:  # as a registry from before the migration
            conn.execute(text("DROP INDEX ix_lineage_dst"))
            conn.execute(s.schema_version.delete().where(s.schema_version.c.version >= version))
        assert "ix_lineage_dst" not in {i["name"] for i in inspect(old.engine).get_indexes("lineage")}
    with Registry(registry_url) as upgraded:
        assert "ix_lineage_dst" in {i["name"] for i in inspect(upgraded.engine).get_indexes("lineage")}
        assert upgraded.schema_version() == migrations.LATEST
