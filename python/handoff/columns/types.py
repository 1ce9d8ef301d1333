"""The column vocabulary, without sqlglot: a column a query outputs, the columns of a table a query reads
(``Demand``), relation keys, and ``Unknown``. Importing this costs nothing (the plan and the Airflow
factory import it); ``sql`` imports sqlglot when columns are actually computed."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

# dbt adapter type -> sqlglot dialect (adapters not listed parse with sqlglot's generic dialect)
_DIALECTS = {
    "athena": "athena", "bigquery": "bigquery", "clickhouse": "clickhouse", "databricks": "databricks",
    "duckdb": "duckdb", "fabric": "tsql", "materialize": "materialize", "mysql": "mysql", "oracle": "oracle",
    "postgres": "postgres", "redshift": "redshift", "snowflake": "snowflake", "spark": "spark",
    "sqlserver": "tsql", "synapse": "tsql", "teradata": "teradata", "trino": "trino",
}

TableKey = tuple[str, ...]  # a relation's name parts, lowercased: (database, schema, identifier)


class Unknown(Exception):
    """The columns cannot be determined; ``str(exc)`` says why, in a few words."""


def dialect_for(adapter_type: str | None) -> str | None:
    """The sqlglot dialect of a dbt adapter (``manifest.metadata.adapter_type``); None: sqlglot's generic SQL."""
    return _DIALECTS.get((adapter_type or "").lower())


@dataclass(frozen=True)
class OutputColumn:
    """One column a query outputs: its name, its type when sqlglot can infer it, and the SQL of the
    expression computing it (qualified, alias removed) — the evidence for a likely rename."""

    name: str
    data_type: str | None = None
    expression: str | None = None


@dataclass(frozen=True)
class Demand:
    """The columns of one table a query reads: ``names`` (``all`` false), or every column except
    ``names`` (``all`` true: ``select *``, ``select * exclude (…)``)."""

    all: bool
    names: frozenset[str] = frozenset()

    def __or__(self, other: Demand) -> Demand:
        if self.all and other.all:
            return Demand(True, self.names & other.names)
        if self.all or other.all:
            every, some = (self, other) if self.all else (other, self)
            return Demand(True, every.names - some.names)
        return Demand(False, self.names | other.names)

    def reads(self, column: str) -> bool:
        return (column.lower() not in self.names) if self.all else column.lower() in self.names

    def without(self, names: Iterable[str]) -> Demand:
        dropped = {n.lower() for n in names}
        return Demand(True, self.names | dropped) if self.all else Demand(False, self.names - dropped)

    def describe(self) -> str:
        """``*``, ``* except a, b`` or ``a, b`` (sorted)."""
        if self.all:
            return "*" + (f" except {', '.join(sorted(self.names))}" if self.names else "")
        return ", ".join(sorted(self.names)) or "no column"


NOTHING = Demand(False)
EVERYTHING = Demand(True)


def same_relation(a: TableKey, b: TableKey) -> bool:
    """Whether two keys name the same relation: equal, or one is the other without its database/schema."""
    n = min(len(a), len(b))
    return n > 0 and a[-n:] == b[-n:]
