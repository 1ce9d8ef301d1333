"""Recovery's run state in the registry, on SQLite and a real PostgreSQL: completions per try,
sensor claims that let exactly one of many racing processes satisfy a sensor, refusals recorded
once, and migration 5 upgrading a registry of schema 4 that holds rows.
"""

from __future__ import annotations

import multiprocessing
from datetime import datetime, timedelta, timezone

import pytest
from handoff.errors import HandoffError
from handoff.registry import migrations
from handoff.registry import schema as s
from handoff.registry.store import Registry
from sqlalchemy import (
    CheckConstraint,
    Column,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    create_engine,
    inspect,
    select,
)

UTC = timezone.utc
DAY = datetime(2024, 3, 10, 3, tzinfo=UTC)
RUN = "scheduled__2024-03-10T03:00:00+00:00"
DOWN = "scheduled__2024-03-10T05:00:00+00:00"
SENSOR = "wait__shop__orders"


@pytest.fixture
def registry(registry_url, plans):
    with Registry(registry_url) as opened:
        opened.publish([plans("shop"), plans("billing")])
        yield opened


def test_completions_are_kept_per_try_and_recorded_once(registry):
    first = registry.record_completion("shop__daily", "orders", RUN, DAY, try_number=1,
                                       completed_at=DAY + timedelta(hours=1))
    again = registry.record_completion("shop__daily", "orders", RUN, DAY, try_number=1, source="sweep")
    failed = registry.record_completion("shop__daily", "orders", RUN, DAY, try_number=2, state="failed")
    assert first.created and not again.created and again.id == first.id and again.source == "callback"
    assert (failed.created, failed.try_number, failed.state) == (True, 2, "failed")
    assert [(c.try_number, c.state) for c in registry.completions(dag_id="shop__daily", logical_date=DAY)] == [
        (2, "failed"), (1, "success")]
    assert (first.domain, first.model) == ("shop", "orders")
    with pytest.raises(HandoffError, match="not 'success' or 'failed'"):
        registry.record_completion("shop__daily", "orders", RUN, DAY, state="running")
    with pytest.raises(HandoffError, match="try number -1"):
        registry.record_completion("shop__daily", "orders", RUN, DAY, try_number=-1)


def test_a_claim_is_held_by_one_settled_once_and_a_released_one_can_be_taken_again(registry):
    completion = registry.record_completion("shop__daily", "orders", RUN, DAY)
    kwargs = {"try_number": 1, "completion_id": completion.id, "previous_state": "failed",
              "run_logical_date": DAY.replace(hour=5)}
    claim = registry.claim_resolution("billing__daily", DOWN, SENSOR, **kwargs)
    assert claim is not None and claim.status == "claimed"
    assert registry.claim_resolution("billing__daily", DOWN, SENSOR, **kwargs) is None  # held
    registry.release_resolution(claim)  # the PATCH failed: give it back
    claim = registry.claim_resolution("billing__daily", DOWN, SENSOR, **kwargs)
    assert claim is not None
    done = registry.finish_resolution(claim, how="reconcile")
    assert (done.status, done.how, done.previous_state, done.try_number) == ("done", "reconcile", "failed", 1)
    assert registry.claim_resolution("billing__daily", DOWN, SENSOR, **kwargs) is None  # settled
    assert registry.claim_resolution("billing__daily", DOWN, SENSOR, **kwargs,
                                     stale_after=timedelta(0)) is None  # settled is never stale
    # a poke recorded afterwards for the same try changes nothing; a later try is its own row
    assert not registry.record_resolution("billing__daily", DOWN, SENSOR, how="poke", try_number=1).created
    assert registry.record_resolution("billing__daily", DOWN, SENSOR, how="poke", try_number=2).created
    assert [(r.try_number, r.how) for r in registry.resolutions(
        dag_id="billing__daily", run_logical_date=DAY.replace(hour=5))] == [(1, "reconcile")]


def test_a_claim_whose_holder_died_is_taken_over_once(registry):
    kwargs = {"try_number": 1, "completion_id": None, "previous_state": "failed", "run_logical_date": None}
    assert registry.claim_resolution("billing__daily", DOWN, SENSOR, **kwargs) is not None
    assert registry.claim_resolution("billing__daily", DOWN, SENSOR, **kwargs) is None
    taken = registry.claim_resolution("billing__daily", DOWN, SENSOR, **kwargs, stale_after=timedelta(0))
    assert taken is not None and taken.status == "claimed"


def test_refusals_are_recorded_once_per_sensor_try_and_reason(registry):
    kwargs = {"try_number": 1, "reason": "skipped", "detail": "skipped by operator at 2024-03-10 05:12 UTC",
              "run_logical_date": DAY.replace(hour=5), "sensor_state": "skipped", "run_state": "success",
              "actor": "operator", "acted_at": DAY.replace(hour=5, minute=12)}
    first = registry.record_refusal("billing__daily", DOWN, SENSOR, **kwargs)
    again = registry.record_refusal("billing__daily", DOWN, SENSOR, **kwargs)
    assert first.created and not again.created and again.id == first.id
    [refusal] = registry.refusals(dag_id="billing__daily", run_logical_date=DAY.replace(hour=5))
    assert (refusal.actor, refusal.acted_at, refusal.reason) == ("operator", DAY.replace(hour=5, minute=12), "skipped")
    assert registry.refusals(dag_id="billing__daily", run_logical_date=DAY.replace(hour=6)) == []


def _claim_worker(url: str, start, results) -> None:  # type: ignore[no-untyped-def]
    with Registry(url, must_exist=True) as registry:
        start.wait()
        claim = registry.claim_resolution("billing__daily", DOWN, SENSOR, try_number=1, completion_id=None,
                                          previous_state="failed", run_logical_date=None)
        if claim is not None:
            registry.finish_resolution(claim, how="reconcile")
        results.put(claim is not None)


def test_of_many_processes_racing_for_one_sensor_exactly_one_wins(registry):
    context = multiprocessing.get_context("spawn")
    start, results = context.Event(), context.Queue()
    workers = [context.Process(target=_claim_worker, args=(registry.url, start, results)) for _ in range(8)]
    for worker in workers:
        worker.start()
    start.set()
    won = [results.get(timeout=120) for _ in workers]
    for worker in workers:
        worker.join(timeout=60)
    assert sorted(won) == [False] * 7 + [True]
    assert len(registry.resolutions(dag_id="billing__daily", run_id=DOWN)) == 1


# --------------------------------------------------------------------------------------
# migration 5 on a registry of schema 4
# --------------------------------------------------------------------------------------

def _schema_4() -> MetaData:
    """The registry as migration 4 left it: today's tables, with completions and sensor_resolutions
    as they were (one row per run) and no sensor_refusals."""
    old = MetaData()
    for table in s.metadata.sorted_tables:
        if table.name not in ("completions", "sensor_resolutions", "sensor_refusals"):
            table.to_metadata(old)
    Table("completions", old,
          Column("id", Integer, primary_key=True, autoincrement=True),
          Column("dag_id", String(200), nullable=False), Column("task_id", String(250), nullable=False),
          Column("run_id", String(250), nullable=False), Column("logical_date", DateTime(timezone=True)),
          Column("completed_at", DateTime(timezone=True), nullable=False),
          Column("source", String(10), nullable=False), Column("domain", String(64)), Column("model", Text),
          Column("recorded_at", DateTime(timezone=True), nullable=False),
          UniqueConstraint("dag_id", "task_id", "run_id", name="uq_completions_run"),
          CheckConstraint("source IN ('callback', 'sweep')", name="ck_completions_source"),
          Index("ix_completions_model", "domain", "model"))
    Table("sensor_resolutions", old,
          Column("id", Integer, primary_key=True, autoincrement=True),
          Column("dag_id", String(200), nullable=False), Column("run_id", String(250), nullable=False),
          Column("sensor_task_id", String(250), nullable=False),
          Column("completion_id", Integer, ForeignKey("completions.id")),
          Column("how", String(10), nullable=False), Column("previous_state", String(40)),
          Column("resolved_at", DateTime(timezone=True), nullable=False),
          UniqueConstraint("dag_id", "run_id", "sensor_task_id", name="uq_sensor_resolutions_run"),
          CheckConstraint("how IN ('poke', 'reconcile')", name="ck_sensor_resolutions_how"),
          Index("ix_sensor_resolutions_completion", "completion_id"))
    return old


def test_migration_5_keeps_every_row_and_ends_in_the_declared_schema(registry_url):
    engine = create_engine(registry_url.replace("postgresql://", "postgresql+psycopg2://"))
    old = _schema_4()
    try:
        with engine.begin() as conn:
            old.create_all(conn)
            for version in range(1, 5):  # the schema of migration 4: 5 and later run on open
                conn.execute(s.schema_version.insert().values(version=version, description=f"v{version}",
                                                              applied_at=DAY, handoff_version="0.1.0"))
            old_id = conn.execute(old.tables["completions"].insert().values(
                dag_id="shop__daily", task_id="orders", run_id=RUN, logical_date=DAY, completed_at=DAY,
                source="callback", recorded_at=DAY)).inserted_primary_key[0]
            conn.execute(old.tables["sensor_resolutions"].insert().values(
                dag_id="billing__daily", run_id=DOWN, sensor_task_id=SENSOR, completion_id=old_id, how="reconcile",
                previous_state="failed", resolved_at=DAY))
        with Registry(registry_url) as registry:
            assert registry.schema_version() == migrations.LATEST
            [completion] = registry.completions()
            assert (completion.id, completion.try_number, completion.state, completion.logical_date) == (
                old_id, 1, "success", DAY)
            [resolution] = registry.resolutions()
            assert (resolution.completion_id, resolution.try_number, resolution.status, resolution.how) == (
                old_id, 0, "done", "reconcile")
            # the new unique keys hold: try 2 is a new row, the same try is not
            assert registry.record_completion("shop__daily", "orders", RUN, DAY, try_number=2, state="failed").created
            assert not registry.record_completion("shop__daily", "orders", RUN, DAY, try_number=1).created
            assert registry.record_completion("shop__daily", "orders", RUN, DAY, try_number=3).id not in (old_id, None)
        inspector = inspect(engine)
        for table in (s.completions, s.sensor_resolutions, s.sensor_refusals):
            assert [c["name"] for c in inspector.get_columns(table.name)] == [c.name for c in table.columns]
            uniques = {u["name"] for u in inspector.get_unique_constraints(table.name)}
            declared = {c.name for c in table.constraints if isinstance(c, UniqueConstraint)}
            assert uniques == declared, table.name
            assert {i.name for i in table.indexes} <= {i["name"] for i in inspector.get_indexes(table.name)}
        assert {fk["referred_table"] for fk in inspector.get_foreign_keys("sensor_resolutions")} == {"completions"}
        with engine.connect() as conn:
            assert conn.execute(select(s.schema_version.c.version)).scalars().all() == list(range(1, migrations.LATEST + 1))
    finally:
        engine.dispose()
