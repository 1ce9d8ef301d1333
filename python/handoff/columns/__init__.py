"""A model's real columns, and which upstream columns a model reads — with where each answer came from.

Where a model's column list comes from, first that applies (docs/impact.md, *Where columns come from*):

1. ``catalog``: dbt's catalog.json (`dbt docs generate`): the relation as built, with warehouse types;
2. ``contract``: an enforced dbt contract: the YAML columns, which dbt guarantees are exactly the output;
3. ``sql``: the compiled SQL (`dbt compile`) read by sqlglot in the adapter's dialect; a star expands
   through the columns of what it selects from (this same order, recursively);
4. ``unknown``, with the reason (not compiled, sqlglot cannot parse it, a star over unknown columns).

Modules: ``catalog`` (reading catalog.json), ``sql`` (sqlglot: what a query outputs and reads).
Pure: the caller reads the files.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from ..manifest import Manifest, Node, Source
from .catalog import Catalog, load_catalog
from .types import EVERYTHING, NOTHING, Demand, OutputColumn, TableKey, Unknown, dialect_for, same_relation

__all__ = ["EVERYTHING", "NOTHING", "Catalog", "ColumnList", "ColumnResolver", "Demand", "OutputColumn", "Reads",
           "demand_from_json", "demand_to_json", "load_catalog"]

SOURCES = ("catalog", "contract", "sql", "unknown")


@dataclass(frozen=True)
class ColumnList:
    """A relation's columns and where the list came from (``SOURCES``); ``reason`` says why it is unknown."""

    source: str
    columns: tuple[OutputColumn, ...] = ()
    reason: str = ""

    @property
    def known(self) -> bool:
        return self.source != "unknown"

    def names(self) -> list[str]:
        return [c.name for c in self.columns]

    def by_name(self) -> dict[str, OutputColumn]:
        return {c.name: c for c in self.columns}

    def to_json(self) -> dict[str, Any]:
        return {"from": self.source, "list": [{"name": c.name, "type": c.data_type} for c in self.columns]}

    @staticmethod
    def from_json(data: Mapping[str, Any], prefix: str = "") -> ColumnList:
        """The plan/registry form ``{"from": …, "list": [{"name", "type"}]}``; ``prefix`` marks its origin."""
        return ColumnList(prefix + str(data["from"]),
                          tuple(OutputColumn(str(c["name"]).lower(), c.get("type")) for c in data["list"]))


def unknown(reason: str) -> ColumnList:
    return ColumnList("unknown", (), reason)


@dataclass(frozen=True)
class Reads:
    """What one model reads of one upstream relation: a ``Demand``, or None with the reason it is unknown."""

    demand: Demand | None
    reason: str = ""


def demand_to_json(demand: Demand | None) -> dict[str, Any] | None:
    """The plan form of a demand: ``{"all": bool, "columns": [...]}`` (all: every column except those), or null."""
    return None if demand is None else {"all": demand.all, "columns": sorted(demand.names)}


def demand_from_json(data: Any) -> Demand | None:
    if not isinstance(data, Mapping):
        return None
    return Demand(bool(data.get("all")), frozenset(str(c).lower() for c in data.get("columns") or ()))


@dataclass
class ColumnResolver:
    """Column lists of one manifest's nodes and sources (memoized), and what its models read.

    ``catalog``: the project's catalog.json, when the caller has one.
    """

    manifest: Manifest
    catalog: Catalog | None = None
    _memo: dict[str, ColumnList] = field(default_factory=dict, init=False, repr=False)
    _relations: dict[str, TableKey] | None = field(default=None, init=False, repr=False)

    @property
    def dialect(self) -> str | None:
        return dialect_for(self.manifest.adapter_type)

    def of(self, unique_id: str) -> ColumnList:
        """The column list of a node or source (``unknown`` for ids the manifest does not hold)."""
        found = self._memo.get(unique_id)
        if found is None:
            self._memo[unique_id] = unknown("a cycle of stars")  # guards a (malformed) cycle
            found = self._memo[unique_id] = self._resolve(unique_id)
        return found

    def _resolve(self, unique_id: str) -> ColumnList:
        if self.catalog is not None and unique_id in self.catalog.nodes:
            return ColumnList("catalog", tuple(OutputColumn(c.name.lower(), c.data_type)
                                               for c in self.catalog.nodes[unique_id]))
        node = self.manifest.nodes.get(unique_id)
        if node is None:
            source = self.manifest.sources.get(unique_id)
            what = "not in the catalog" if source is not None else "not in the manifest"
            return unknown(f"{_label(source) if source else unique_id} is {what}")
        if node.contract_enforced and node.columns:
            return ColumnList("contract", tuple(OutputColumn(c.name.lower(), c.data_type) for c in node.columns))
        if node.resource_type not in ("model", "snapshot") or node.compiled_code is None:
            return unknown("not compiled (run `dbt compile`)" if node.resource_type in ("model", "snapshot")
                           else f"a {node.resource_type}'s columns come only from the catalog")
        schema: dict[TableKey, list[tuple[str, str | None]]] = {}
        for dep in node.depends_on:
            key = self.relation_key(dep)
            if key is None:
                continue
            upstream = self.of(dep)
            if upstream.known:
                schema[key] = [(c.name, c.data_type) for c in upstream.columns]
        try:
            from .sql import output_columns

            return ColumnList("sql", output_columns(node.compiled_code, self.dialect, schema))
        except Unknown as exc:
            return unknown(str(exc))

    def relation_key(self, unique_id: str) -> TableKey | None:
        """The name parts of a node's or source's relation, or None (ephemeral, or no relation)."""
        if self._relations is None:
            self._relations = {}
        if unique_id not in self._relations:
            item: Node | Source | None = self.manifest.nodes.get(unique_id) or self.manifest.sources.get(unique_id)
            relation = item.relation_name if item is not None else None
            try:
                from .sql import table_key

                self._relations[unique_id] = table_key(relation, self.dialect) if relation else ()
            except Unknown:
                self._relations[unique_id] = ()
        return self._relations[unique_id] or None

    def reads(self, node: Node, upstream_ids: list[str]) -> dict[str, Reads]:
        """What ``node``'s compiled SQL reads of each of ``upstream_ids`` (sources or nodes it depends on)."""
        if node.compiled_code is None:
            return {uid: Reads(None, "not compiled (run `dbt compile`)") for uid in upstream_ids}
        try:
            from .sql import read_columns

            tables = read_columns(node.compiled_code, self.dialect)
        except Unknown as exc:
            return {uid: Reads(None, str(exc)) for uid in upstream_ids}
        found = {}
        for uid in upstream_ids:
            key = self.relation_key(uid)
            if key is None:
                found[uid] = Reads(None, "the upstream has no relation name")
                continue
            matched = [wanted for table, wanted in tables.items() if same_relation(table, key)]
            if not matched:
                found[uid] = Reads(None, f"its compiled SQL does not name {'.'.join(key)}")
                continue
            demand = NOTHING
            for wanted in matched:
                demand = demand | wanted
            found[uid] = Reads(demand)
        return found


def _label(source: Source) -> str:
    return f"source {source.source_name}.{source.name}"

