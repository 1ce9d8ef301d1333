"""Ordered, idempotent schema migrations, applied by the tool (never drop-and-recreate).

``schema_version`` holds one row per applied migration. Opening a registry applies what is
missing (``ensure_current``); ``handoff registry upgrade`` does the same explicitly. Migrations run
in one write transaction under a lock (PostgreSQL: a transaction-scoped advisory lock; SQLite:
BEGIN IMMEDIATE), so two processes opening a new registry at once apply each migration once.

Writing a migration: append ``Migration(N, description, function)``; the function gets the
connection inside that transaction. Migration 1 creates the tables of ``schema.py`` as they are
now, so every later migration must be a no-op on a database that migration 1 has just created
(e.g. add a column only if it is missing: ``add_column_if_missing``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timezone

from sqlalchemy import (
    CheckConstraint,
    Column,
    Integer,
    String,
    Text,
    UniqueConstraint,
    func,
    insert,
    inspect,
    select,
    text,
)
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.schema import CreateColumn

from .. import __version__
from ..errors import HandoffError
from . import engine as engines
from . import schema

# pg_advisory_xact_lock key: "handoff" in ASCII.
PG_MIGRATION_LOCK = 0x68616E646F6666


@dataclass(frozen=True)
class Migration:
    version: int
    description: str
    apply: Callable[[Connection], None]


def _create_tables(conn: Connection) -> None:
    schema.metadata.create_all(conn, checkfirst=True)


def add_column_if_missing(conn: Connection, table: str, column: Column) -> None:  # type: ignore[type-arg]
    """``ALTER TABLE table ADD COLUMN column`` unless the column is there (for future migrations)."""
    if column.name in {c["name"] for c in inspect(conn).get_columns(table)}:
        return
    ddl = CreateColumn(column).compile(dialect=conn.dialect)
    conn.execute(text(f"ALTER TABLE {conn.dialect.identifier_preparer.quote(table)} ADD COLUMN {ddl}"))


def _column_lists(conn: Connection) -> None:
    add_column_if_missing(conn, schema.tasks.name, Column("columns", Text))
    add_column_if_missing(conn, schema.cross_edges.name, Column("reads", Text))
def _time_columns(conn: Connection) -> None:
    """Pipelines in a timezone, SLAs relative to the run, acknowledged warnings (docs/convention.md)."""
    add_column_if_missing(conn, "pipelines", Column("timezone", String(64), nullable=False, server_default="UTC"))
    add_column_if_missing(conn, "tasks", Column("available_within_s", Integer))
    add_column_if_missing(conn, "cross_edges", Column("accept", Text, nullable=False, server_default="[]"))


def _cross_project_refs(conn: Connection) -> None:
    add_column_if_missing(conn, schema.cross_edges.name, Column("refs", Text))


def _bind_domains_to_projects(conn: Connection) -> None:
    """domains.dbt_project (+ bound_at, a unique index) and domain_transfers (issue #12).

    Existing domains are bound to the project they were last published from, unless several
    domains share it (a takeover that already happened): those stay unbound, and the first of
    them published again binds the project (the others are then refused until transferred)."""
    add_column_if_missing(conn, schema.domains.name, schema.domains.c.dbt_project)
    add_column_if_missing(conn, schema.domains.name, schema.domains.c.bound_at)
    d = schema.domains.c
    shared = select(d.project).group_by(d.project).having(func.count() > 1)
    conn.execute(schema.domains.update().where(d.dbt_project.is_(None), d.project != "", d.project.not_in(shared))
                 .values(dbt_project=d.project, bound_at=d.published_at))
    if "uq_domains_dbt_project" not in {i["name"] for i in inspect(conn).get_indexes(schema.domains.name)}:
        next(i for i in schema.domains.indexes if i.name == "uq_domains_dbt_project").create(conn)
    schema.domain_transfers.create(conn, checkfirst=True)


def _run_state_by_try(conn: Connection) -> None:
    """Completions and sensor resolutions one row per try; sensor refusals (docs/recovery.md).

    PostgreSQL: ALTER TABLE in place. SQLite cannot drop a unique constraint: the two tables are
    rebuilt (renamed, created as in schema.py, copied, dropped) inside the migration's transaction.
    Existing rows become try 1 (completions) and try 0 (resolutions); nothing is lost.
    """
    if "try_number" not in {c["name"] for c in inspect(conn).get_columns(schema.completions.name)}:
        if conn.dialect.name == "postgresql":
            _alter_run_state_tables(conn)
        else:
            _rebuild_run_state_tables(conn)
    schema.sensor_refusals.create(conn, checkfirst=True)


_BY_TRY = {  # table -> (the unique constraint of migration 1, the columns migration 5 adds)
    "completions": ("uq_completions_run", ("try_number", "state")),
    "sensor_resolutions": ("uq_sensor_resolutions_run", ("try_number", "run_logical_date", "status")),
}


def _alter_run_state_tables(conn: Connection) -> None:
    for name, (old_unique, columns) in _BY_TRY.items():
        table = schema.metadata.tables[name]
        for column in columns:
            add_column_if_missing(conn, name, table.c[column])
        conn.execute(text(f"ALTER TABLE {name} DROP CONSTRAINT IF EXISTS {old_unique}"))
        known = {c["name"] for c in inspect(conn).get_unique_constraints(name)}
        known |= {c["name"] for c in inspect(conn).get_check_constraints(name)}
        # plain DDL: sqlalchemy's AddConstraint would mark schema.py's constraint as created (and so
        # leave it out of every later CREATE TABLE of that Table object, in this process)
        for constraint in table.constraints:
            if constraint.name in known:
                continue
            if isinstance(constraint, UniqueConstraint):
                unique = ", ".join(c.name for c in constraint.columns)
                conn.execute(text(f"ALTER TABLE {name} ADD CONSTRAINT {constraint.name} UNIQUE ({unique})"))
            elif isinstance(constraint, CheckConstraint):
                conn.execute(text(f"ALTER TABLE {name} ADD CONSTRAINT {constraint.name} CHECK ({constraint.sqltext})"))
        indexes = {i["name"] for i in inspect(conn).get_indexes(name)}
        for index in table.indexes:
            if index.name not in indexes:
                index.create(conn)


def _rebuild_run_state_tables(conn: Connection) -> None:
    old_columns = {name: [c["name"] for c in inspect(conn).get_columns(name)] for name in _BY_TRY}
    for name in _BY_TRY:  # index names are global in SQLite: free them for the new tables
        for index in inspect(conn).get_indexes(name):
            conn.execute(text(f"DROP INDEX {conn.dialect.identifier_preparer.quote(str(index['name']))}"))
    # resolutions first: renaming completions then points their foreign key at completions_v1
    for name in ("sensor_resolutions", "completions"):
        conn.execute(text(f"ALTER TABLE {name} RENAME TO {name}_v1"))
    for name in ("completions", "sensor_resolutions"):
        schema.metadata.tables[name].create(conn)
        columns = ", ".join(old_columns[name])  # names the database gave for our own tables
        conn.execute(text(f"INSERT INTO {name} ({columns}) SELECT {columns} FROM {name}_v1"))  # noqa: S608
    for name in ("sensor_resolutions", "completions"):
        conn.execute(text(f"DROP TABLE {name}_v1"))


def _notifications(conn: Connection) -> None:
    """The outbox of messages, the record of SLA misses, and what each domain muted (issue #15)."""
    add_column_if_missing(conn, schema.domains.name, schema.domains.c.mute)
    schema.notifications.create(conn, checkfirst=True)
    schema.sla_misses.create(conn, checkfirst=True)


def _lineage_dst_index(conn: Connection) -> None:
    """lineage(dst_ns, dst_id): who exports a model key, looked up per success callback (issue #15)."""
    index = next(i for i in schema.lineage.indexes if i.name == "ix_lineage_dst")
    index.create(conn, checkfirst=True)


MIGRATIONS: tuple[Migration, ...] = (
    Migration(1, "domains, pipelines, tasks, edges, lineage, publications, completions, sensor_resolutions",
              _create_tables),
    Migration(2, "tasks.columns (published column lists), cross_edges.reads (columns each consumer reads)",
              _column_lists),
    Migration(3, "cross_edges.refs (the other dbt project's nodes a cross-project ref's sensor stands for)",
              _cross_project_refs),
    Migration(4, "domains bound to their dbt project (dbt_project, bound_at), domain_transfers",
              _bind_domains_to_projects),
    Migration(5, "completions and sensor resolutions per try; sensor refusals", _run_state_by_try),
    Migration(6, "notifications (the outbox of Slack messages), sla_misses, domains.mute", _notifications),
    Migration(7, "pipelines.timezone, tasks.available_within_s, cross_edges.accept", _time_columns),
    Migration(8, "index lineage(dst_ns, dst_id): the tasks exporting a model key", _lineage_dst_index),
)
LATEST = MIGRATIONS[-1].version


def current_version(conn: Connection) -> int:
    """The registry's schema version (0: no tables yet)."""
    if not inspect(conn).has_table(schema.schema_version.name):
        return 0
    return int(conn.execute(select(func.max(schema.schema_version.c.version))).scalar() or 0)


def ensure_current(engine: Engine, shown_url: str, *, must_exist: bool = False, read_only: bool = False) -> list[int]:
    """Apply missing migrations (cheap when there are none); returns the versions applied.

    A database without registry tables is set up only when it is empty and ``must_exist`` is
    false: read-only commands never create a registry, and a database holding other tables (a
    wrong URL?) is refused — `handoff registry upgrade` sets one up explicitly.
    """
    version, others = engines.run(engine, _version_and_other_tables, write=False,
                                  what="reading the schema version", shown_url=shown_url)
    _refuse_newer(version, shown_url)
    if version == LATEST:
        return []
    if read_only and version > 0:
        raise HandoffError(f"registry {shown_url} has schema version {version}; this handoff reads version {LATEST}",
                           hint="upgrade it once with a role that may write: `handoff registry upgrade --registry "
                                "URL` (read commands never change a registry)")
    if version == 0 and (must_exist or read_only):
        raise HandoffError(f"{shown_url} is not a handoff registry (it has no registry tables)",
                           hint="publish plans first (`handoff publish`), or point --registry / "
                                f"${engines.ENV_VAR} at the registry `handoff publish` writes to")
    if version == 0 and others:
        raise HandoffError(f"{shown_url} holds other tables ({', '.join(others[:5])}) and no handoff registry",
                           hint="use an empty database, or add the registry tables to this one with "
                                "`handoff registry upgrade --registry URL`")
    return upgrade(engine, shown_url)


def _version_and_other_tables(conn: Connection) -> tuple[int, list[str]]:
    version = current_version(conn)
    others = [] if version else sorted(inspect(conn).get_table_names())
    return version, others


def upgrade(engine: Engine, shown_url: str) -> list[int]:
    """Apply every migration newer than the registry's version, in order, in one transaction."""

    def work(conn: Connection) -> list[int]:
        if conn.dialect.name == "postgresql":
            conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": PG_MIGRATION_LOCK})
        schema.schema_version.create(conn, checkfirst=True)
        version = current_version(conn)
        _refuse_newer(version, shown_url)
        applied = []
        for migration in MIGRATIONS:
            if migration.version <= version:
                continue
            migration.apply(conn)
            conn.execute(insert(schema.schema_version).values(
                version=migration.version, description=migration.description,
                applied_at=datetime.now(timezone.utc), handoff_version=__version__))
            applied.append(migration.version)
        return applied

    return engines.run(engine, work, write=True, what="upgrading the registry schema", shown_url=shown_url)


def _refuse_newer(version: int, shown_url: str) -> None:
    if version > LATEST:
        raise HandoffError(f"registry {shown_url} has schema version {version}, newer than this handoff "
                           f"knows ({LATEST})", hint="upgrade handoff (pip install -U handoff)")
