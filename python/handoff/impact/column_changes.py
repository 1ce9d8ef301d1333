"""Column changes of one model: its real columns before and after (``handoff.columns``), likely column
renames, and "columns unknown" when they cannot be determined. Pure.

Which consumers a column change breaks is judged later, from what each consumer reads
(``consumers.attach_consumers``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from ..columns import ColumnList, ColumnResolver
from ..manifest import Manifest, Node
from ..plan import task_id_for_node
from .report import Change

# column-list sources whose types can be compared with each other (sqlglot's inferred types only with
# sqlglot's: SUM(INTEGER) is HUGEINT in DuckDB and BIGINT to sqlglot)
_TYPE_FAMILY = {"catalog": "warehouse", "contract": "warehouse", "sql": "sql"}


@dataclass
class Sides:
    """Both manifests' column lists, and what the registry says is deployed (task id -> ColumnList)."""

    base: ColumnResolver
    head: ColumnResolver
    deployed: Mapping[str, ColumnList] = field(default_factory=dict)
    _changed: set[str] | None = field(default=None, init=False, repr=False)

    def before(self, node: Node) -> ColumnList:
        found = self.base.of(node.unique_id)
        if found.known:
            return found
        return self.deployed.get(task_id_for_node(node), found)

    def after(self, node: Node) -> ColumnList:
        return self.head.of(node.unique_id)

    def may_have_changed(self, old: Node, new: Node) -> bool:
        """Whether the columns may differ: its code changed, or it selects * from something whose code did."""
        if _code_changed(old, new):
            return True
        if "*" not in (new.compiled_code or ""):
            return False
        return any(dep in self._changed_ids() for dep in new.depends_on)

    def _changed_ids(self) -> set[str]:
        if self._changed is None:
            self._changed = _changed_closure(self.base.manifest, self.head.manifest)
        return self._changed


def _code_changed(old: Node, new: Node) -> bool:
    if old.checksum != new.checksum:
        return True
    return old.compiled_code is not None and new.compiled_code is not None and old.compiled_code != new.compiled_code


def _changed_closure(base: Manifest, head: Manifest) -> set[str]:
    """Head node ids whose code changed, plus those selecting * from one of them (transitively)."""
    changed = {uid for uid, node in head.nodes.items()
               if uid not in base.nodes or _code_changed(base.nodes[uid], node)}
    grew = True
    while grew:
        grew = False
        for uid, node in head.nodes.items():
            if uid not in changed and "*" in (node.compiled_code or "") and changed.intersection(node.depends_on):
                changed.add(uid)
                grew = True
    return changed


def column_changes(old: Node, new: Node, sides: Sides) -> list[Change]:
    """Changes of a model's columns: real ones when both sides are known, else documented ones (+ unknown)."""
    if new.resource_type != "model":
        return documented_changes(old, new)
    code_changed = sides.may_have_changed(old, new)
    if not code_changed and documented(old) == documented(new) and old.contract_enforced == new.contract_enforced:
        return []
    before, after = sides.before(old), sides.after(new)
    if before.known and after.known:
        return real_changes(old, new, before, after)
    changes = documented_changes(old, new)
    if not code_changed:
        return changes
    missing, side = (before, "deployed") if not before.known else (after, "PR")
    changes.append(Change("columns_unknown", f"SQL changed; columns unknown ({side}: {missing.reason})"))
    return changes


def real_changes(old: Node, new: Node, before: ColumnList, after: ColumnList) -> list[Change]:
    was, now = before.by_name(), after.by_name()
    origin = (f"columns from {before.source}" if before.source == after.source
              else f"columns from {before.source} → {after.source}")
    removed = [n for n in was if n not in now]
    added = [n for n in now if n not in was]
    renamed = _likely_renames(removed, added, before, after)
    changes = []
    for old_name, (new_name, expression) in renamed.items():
        changes.append(Change("column_renamed", f"column `{old_name}` likely renamed to `{new_name}`: same "
                                                f"expression `{expression}` ({origin})", columns=(old_name,)))
    gone = [n for n in removed if n not in renamed]
    if gone:
        changes.append(Change("column_removed", f"column{_s(gone)} {_names(gone)} removed ({origin})",
                              columns=tuple(gone)))
    retyped = [n for n in was if n in now and _types_differ(was[n].data_type, now[n].data_type, before, after)]
    if retyped:
        detail = ", ".join(f"`{n}` {was[n].data_type} → {now[n].data_type}" for n in retyped)
        changes.append(Change("column_type_changed", f"type changed: {detail} ({origin})", columns=tuple(retyped)))
    reworked = [n for n in was if n in now and n not in retyped
                and not _types_comparable(was[n].data_type, now[n].data_type, before, after)
                and was[n].expression and now[n].expression and was[n].expression != now[n].expression]
    if reworked:
        changes.append(Change("column_expression_changed", f"expression changed, type unknown: {_names(reworked)} "
                                                           f"({origin})", columns=tuple(reworked)))
    fresh = [n for n in added if n not in {v[0] for v in renamed.values()}]
    if fresh:
        changes.append(Change("column_added", f"column{_s(fresh)} {_names(fresh)} added"))
    undocumented = [c.name for c in old.columns
                    if c.name.lower() not in {d.name.lower() for d in new.columns} and c.name.lower() in now]
    if undocumented:
        changes.append(Change("column_undocumented", f"column{_s(undocumented)} {_names(undocumented)} no longer "
                                                     "documented (still in the output)"))
    return changes


def _likely_renames(removed: list[str], added: list[str], before: ColumnList,
                    after: ColumnList) -> dict[str, tuple[str, str]]:
    """Removed -> (added, expression) pairs computed by the same expression, when the pair is unique."""
    was, now = before.by_name(), after.by_name()

    def lineage(column_expression: str | None) -> str | None:
        # a literal or NULL is no evidence; an expression reading a column is
        if not column_expression or not any(ch.isalpha() for ch in column_expression.replace("NULL", "")):
            return None
        return column_expression

    olds: dict[str, list[str]] = {}
    news: dict[str, list[str]] = {}
    for name in removed:
        key = lineage(was[name].expression)
        if key:
            olds.setdefault(key, []).append(name)
    for name in added:
        key = lineage(now[name].expression)
        if key:
            news.setdefault(key, []).append(name)
    return {names[0]: (news[key][0], key) for key, names in olds.items()
            if len(names) == 1 and len(news.get(key, ())) == 1}


def _types_comparable(a: str | None, b: str | None, before: ColumnList, after: ColumnList) -> bool:
    """Both types known, from sources of one family (catalog vs catalog, declared vs declared)."""
    if not a or not b:
        return False
    family_a = _TYPE_FAMILY.get(before.source.split(":")[-1])
    family_b = _TYPE_FAMILY.get(after.source.split(":")[-1])
    return family_a is not None and family_a == family_b


def _types_differ(a: str | None, b: str | None, before: ColumnList, after: ColumnList) -> bool:
    return _types_comparable(a, b, before, after) and normalize_type(a or "") != normalize_type(b or "")


def normalize_type(data_type: str) -> str:
    """``BIGINT`` = ``bigint`` = ``int8``: sqlglot's canonical spelling, else the lowercased text."""
    from sqlglot import exp
    from sqlglot.errors import SqlglotError

    try:
        return exp.DataType.build(data_type).sql().lower()
    except (SqlglotError, ValueError):  # a type sqlglot does not know compares as text
        return " ".join(data_type.lower().split())


def documented_changes(old: Node, new: Node) -> list[Change]:
    """Changes of the documented (YAML) columns, for models whose real columns are not both known."""
    before, after = documented(old), documented(new)
    names = {c.name.lower(): c.name for c in (*old.columns, *new.columns)}
    changes = []
    removed = [names[c] for c in before if c not in after]
    if removed:
        if old.contract_enforced or old.checksum != new.checksum:
            changes.append(Change("column_removed", f"column{_s(removed)} {_names(removed)} removed",
                                  columns=tuple(c.lower() for c in removed)))
        else:
            changes.append(Change("column_undocumented",
                                  f"column{_s(removed)} {_names(removed)} no longer documented "
                                  "(SQL unchanged, no contract)"))
    retyped = [c for c in before if c in after and before[c] and after[c] and before[c] != after[c]]
    if retyped:
        changes.append(Change("column_type_changed", "type changed: " + ", ".join(
            f"`{names[c]}` {before[c]} → {after[c]}" for c in retyped), columns=tuple(retyped)))
    added = [names[c] for c in after if c not in before]
    if added:
        changes.append(Change("column_added", f"column{_s(added)} {_names(added)} added"))
    return changes


def documented(node: Node) -> dict[str, str | None]:
    """A node's documented columns: lowercased name -> normalized type (None when not documented)."""
    return {c.name.lower(): (" ".join(c.data_type.lower().split()) if c.data_type else None) for c in node.columns}


def _s(items: list[str]) -> str:
    return "s" if len(items) > 1 else ""


def _names(items: list[str]) -> str:
    return ", ".join(f"`{c}`" for c in items)
