"""Column lineage of compiled SQL, with sqlglot: the columns a query outputs, and the columns of each
table it reads.

Pure functions over SQL text. sqlglot parses with the project's adapter dialect (``dialect_for``);
anything it cannot parse, or a shape it cannot follow, raises ``Unknown`` with a reason — never a
guess. Names compare case-insensitively (lowercased), like the warehouses dbt supports by default.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import sqlglot
from sqlglot import exp
from sqlglot.errors import SqlglotError
from sqlglot.optimizer.annotate_types import annotate_types
from sqlglot.optimizer.qualify import qualify
from sqlglot.optimizer.scope import Scope, build_scope

from .types import EVERYTHING, NOTHING, Demand, OutputColumn, TableKey, Unknown

_MAX_DEPTH = 200  # nested scopes followed before giving up (a generated query, not a real model)


def table_key(relation: str, dialect: str | None) -> TableKey:
    """The name parts of a relation as dbt renders it (``"db"."schema"."table"``), lowercased."""
    try:
        table = exp.to_table(relation, dialect=dialect)
    except SqlglotError as exc:
        raise Unknown(f"cannot read relation name {relation!r}") from exc
    return tuple(part.name.lower() for part in table.parts)


def parse(sql: str, dialect: str | None) -> exp.Query:
    """One query statement, or ``Unknown`` ("sqlglot cannot parse it: …")."""
    try:
        statements = [s for s in sqlglot.parse(sql, read=dialect) if s is not None]
    except SqlglotError as exc:
        where = ""
        errors = getattr(exc, "errors", None) or []
        if errors and isinstance(errors[0], dict) and errors[0].get("line"):
            where = f" at line {errors[0]['line']}, column {errors[0].get('col')}"
        raise Unknown(f"sqlglot cannot parse the compiled SQL{where}") from exc
    except RecursionError as exc:
        raise Unknown("the compiled SQL is nested too deeply for sqlglot") from exc
    if len(statements) != 1 or not isinstance(statements[0], exp.Query):
        raise Unknown(f"the compiled SQL is {len(statements)} statement(s), not one query")
    return statements[0]


# --------------------------------------------------------------------------------------
# What a query outputs
# --------------------------------------------------------------------------------------

def output_columns(sql: str, dialect: str | None,
                   schema: Mapping[TableKey, Sequence[tuple[str, str | None]]] = {}) -> tuple[OutputColumn, ...]:
    """The columns ``sql`` outputs, in order. ``schema``: the known columns (name, type) of the relations
    it reads, which expand its stars. ``Unknown`` when a star reads a relation of unknown columns."""
    tree = parse(sql, dialect)
    nested = _nested_schema(schema)
    try:
        qualified = qualify(tree, schema=nested or None, dialect=dialect, validate_qualify_columns=False,
                            identify=False)
        if any(_is_star(s) for s in qualified.selects):
            raise Unknown("it selects * from a relation whose columns are unknown")
        annotated = annotate_types(qualified, schema=nested or None, dialect=dialect)
    except SqlglotError as exc:
        raise Unknown(f"sqlglot cannot follow its columns ({str(exc).strip()[:120]})") from exc
    except RecursionError as exc:
        raise Unknown("the compiled SQL is nested too deeply for sqlglot") from exc
    found = []
    for select in annotated.selects:
        kind = select.type
        known = kind is not None and not kind.is_type(exp.DataType.Type.UNKNOWN)
        found.append(OutputColumn(select.alias_or_name.lower(), kind.sql(dialect) if known and kind else None,
                                  select.unalias().sql(dialect)))
    names = [c.name for c in found]
    if len(set(names)) != len(names) or "" in names:
        raise Unknown("its output has unnamed or duplicate columns")
    return tuple(found)


def _nested_schema(schema: Mapping[TableKey, Sequence[tuple[str, str | None]]]) -> dict[str, object]:
    """sqlglot's nested mapping {db: {schema: {table: {column: type}}}}; keys of one depth only."""
    if not schema:
        return {}
    depth = max(len(k) for k in schema)
    nested: dict[str, object] = {}
    for key, columns in schema.items():
        if len(key) != depth:
            continue
        level = nested
        for part in key[:-1]:
            level = level.setdefault(part, {})  # type: ignore[assignment]
        level[key[-1]] = {name: (data_type or "UNKNOWN") for name, data_type in columns}
    return nested


def _is_star(select: exp.Expr) -> bool:
    return isinstance(select, exp.Star) or (isinstance(select, exp.Column) and isinstance(select.this, exp.Star))


# --------------------------------------------------------------------------------------
# What a query reads
# --------------------------------------------------------------------------------------

def read_columns(sql: str, dialect: str | None) -> dict[TableKey, Demand]:
    """For every table ``sql`` reads, the columns it needs: those its output is computed from and those
    its filters, joins, groupings and windows use. A star passes the demand of the query around it
    through (``select *`` at the top reads everything). An unqualified column that several sources
    could hold counts as read from each of them."""
    tree = parse(sql, dialect)
    try:
        root = build_scope(tree)
    except SqlglotError as exc:
        raise Unknown(f"sqlglot cannot follow its scopes ({str(exc).strip()[:120]})") from exc
    if root is None:
        raise Unknown("the compiled SQL is not a query sqlglot can follow")
    found: dict[TableKey, Demand] = {}
    _demand(root, EVERYTHING, found, 0)
    return found


def _demand(scope: Scope, wanted: Demand, found: dict[TableKey, Demand], depth: int) -> None:  # noqa: C901 - one dispatch over sqlglot's scope shapes, each branch one SQL form
    if depth > _MAX_DEPTH:
        raise Unknown("the compiled SQL is nested too deeply to follow")
    expression = scope.expression
    if isinstance(expression, exp.SetOperation):
        _demand_set_operation(scope, wanted, found, depth)
        return
    if not isinstance(expression, exp.Select):
        raise Unknown(f"a {type(expression).__name__} scope that handoff cannot follow")

    selects = expression.selects
    explicit = [s for s in selects if not _is_star(s)]
    stars = [s for s in selects if _is_star(s)]
    if wanted.all or expression.args.get("distinct"):
        excluded = set() if expression.args.get("distinct") else wanted.names
        used = [s for s in explicit if s.alias_or_name.lower() not in excluded]
        through_star = EVERYTHING if expression.args.get("distinct") else wanted
    else:
        by_name = {s.alias_or_name.lower(): s for s in explicit}
        used = [by_name[n] for n in wanted.names if n in by_name]
        through_star = Demand(False, frozenset(n for n in wanted.names if n not in by_name))
    used_ids = {id(s) for s in used}
    skipped = {id(c) for s in explicit if id(s) not in used_ids for c in s.find_all(exp.Column)}
    aliases = {s.alias.lower() for s in explicit if s.alias}

    per_source: dict[str, Demand] = {}

    def add(source_name: str, demand: Demand) -> None:
        per_source[source_name] = per_source.get(source_name, NOTHING) | demand

    sources = scope.selected_sources
    for column in scope.columns:
        if id(column) in skipped or isinstance(column.this, exp.Star):
            continue
        name = column.name.lower()
        qualifier = column.table.lower() if column.table else ""
        if qualifier:
            owner = _owner(scope, qualifier)
            if owner is not None:
                owner_scope, source_name = owner
                if owner_scope is scope:
                    add(source_name, Demand(False, frozenset({name})))
                else:  # a correlated reference to an outer query's source
                    _demand_source(owner_scope, source_name, Demand(False, frozenset({name})), found, depth)
            continue
        candidates = [n for n in sources if _may_hold(sources[n][1], name)]
        if not candidates and name in aliases:
            continue  # GROUP BY / ORDER BY naming an output alias: its expression is counted already
        if not sources and scope.parent is not None:
            for outer_name in _outer_sources(scope):
                _demand_source(outer_name[0], outer_name[1], Demand(False, frozenset({name})), found, depth)
            continue
        for source_name in candidates or list(sources):
            add(source_name, Demand(False, frozenset({name})))

    # unqualified columns of HAVING / QUALIFY (sqlglot's scope leaves them out: they might name an
    # output alias) — read unless they do name one
    for column in _clause_columns(expression):
        name = column.name.lower()
        if name not in aliases:
            for source_name in [n for n in sources if _may_hold(sources[n][1], name)] or list(sources):
                add(source_name, Demand(False, frozenset({name})))
    # JOIN ... USING (k): k is read from the joined source and from every source before it that may
    # hold it; a NATURAL JOIN matches on every common column: both sides are read whole
    for join in expression.args.get("joins") or []:
        joined = join.this.alias_or_name.lower() if isinstance(join.this, exp.Expression) else ""
        if str(join.args.get("method") or "").upper() == "NATURAL":
            for source_name in sources:
                add(source_name, EVERYTHING)
            continue
        for identifier in join.args.get("using") or []:
            name = identifier.name.lower()
            for source_name in sources:
                if source_name == joined or _may_hold(sources[source_name][1], name):
                    add(source_name, Demand(False, frozenset({name})))

    for star in stars:
        node = star.this if isinstance(star, exp.Column) else star
        excepted = [c.name for c in (node.args.get("except_") or node.args.get("except") or [])
                    if isinstance(c, exp.Expression)]
        replaced = [r.alias for r in (node.args.get("replace") or []) if isinstance(r, exp.Alias) and r.alias]
        # `* EXCLUDE (x)` / `* REPLACE (… AS x)` fail when x is gone: they read x by name
        demand = through_star.without(excepted) | Demand(False, frozenset(n.lower() for n in excepted + replaced))
        if isinstance(star, exp.Column) and star.table:
            targets = [star.table.lower()]
        else:
            targets = [n for n in sources if demand.all or any(_may_hold(sources[n][1], c) for c in demand.names)]
        for source_name in targets:
            if source_name in sources:
                add(source_name, demand)

    for source_name, demand in per_source.items():
        _demand_source(scope, source_name, demand, found, depth)
    for subquery in scope.subquery_scopes:
        _demand(subquery, EVERYTHING, found, depth + 1)


def _clause_columns(select: exp.Select) -> list[exp.Column]:
    """The unqualified columns of ``select``'s HAVING and QUALIFY that belong to it (not to a
    subquery inside them)."""
    found: list[exp.Column] = []
    for key in ("having", "qualify"):
        clause = select.args.get(key)
        if isinstance(clause, exp.Expression):
            found += [c for c in clause.find_all(exp.Column)
                      if not c.table and not isinstance(c.this, exp.Star) and c.find_ancestor(exp.Select) is select]
    return found


def _demand_source(scope: Scope, source_name: str, demand: Demand, found: dict[TableKey, Demand],
                   depth: int) -> None:
    entry = scope.selected_sources.get(source_name)
    if entry is None:
        return
    source = entry[1]
    if isinstance(source, Scope):
        _demand(source, demand, found, depth + 1)
    elif isinstance(source, exp.Table) and source.name:
        key = tuple(part.name.lower() for part in source.parts)
        found[key] = found.get(key, NOTHING) | demand


def _demand_set_operation(scope: Scope, wanted: Demand, found: dict[TableKey, Demand], depth: int) -> None:
    """UNION / INTERSECT / EXCEPT: branches line up by position; the first branch names the columns."""
    branches = scope.set_operation_scopes
    if wanted.all or isinstance(scope.expression, (exp.Intersect, exp.Except)):
        for branch in branches:
            _demand(branch, EVERYTHING if not wanted.all else wanted, found, depth + 1)
        return
    names = _leftmost(scope.expression).selects
    positions = [i for i, s in enumerate(names) if s.alias_or_name.lower() in wanted.names]
    for branch in branches:
        first = _leftmost(branch.expression)
        if any(_is_star(s) for s in first.selects) or any(_is_star(s) for s in names):
            _demand(branch, EVERYTHING, found, depth + 1)
            continue
        mapped = frozenset(first.selects[i].alias_or_name.lower() for i in positions if i < len(first.selects))
        _demand(branch, Demand(False, mapped), found, depth + 1)


def _leftmost(expression: exp.Expr) -> exp.Select:
    while isinstance(expression, exp.SetOperation):
        expression = expression.left
    if isinstance(expression, exp.Subquery):
        expression = expression.unnest()
    if not isinstance(expression, exp.Select):
        raise Unknown("a set operation whose branches handoff cannot follow")
    return expression


def _may_hold(source: exp.Table | Scope, column: str) -> bool:
    """Whether a source may have ``column``: a table may; a subquery only if it outputs it (or a star)."""
    if isinstance(source, Scope) and isinstance(source.expression, exp.Select):
        selects = source.expression.selects
        return any(_is_star(s) for s in selects) or any(s.alias_or_name.lower() == column for s in selects)
    return True


def _owner(scope: Scope, qualifier: str) -> tuple[Scope, str] | None:
    current: Scope | None = scope
    while current is not None:
        if qualifier in current.selected_sources:
            return current, qualifier
        current = current.parent
    return None


def _outer_sources(scope: Scope) -> list[tuple[Scope, str]]:
    current = scope.parent
    while current is not None:
        if current.selected_sources:
            return [(current, name) for name in current.selected_sources]
        current = current.parent
    return []
