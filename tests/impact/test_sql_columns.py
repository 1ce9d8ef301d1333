"""handoff.columns.sql: what compiled SQL reads and outputs (sqlglot, DuckDB dialect), one shape per case."""

from __future__ import annotations

import pytest
from handoff.columns.sql import Unknown, output_columns, read_columns

O = ("x", "m", "o")
P = ("x", "m", "p")
READS = {
    "qualified": ('select o.id, o.amt from "x"."m"."o" as o', {O: "amt, id"}),
    "cte_star_then_pick": ('with s as (select * from "x"."m"."o"), r as (select id, amt as a from s where st = 1) '
                           "select * from r", {O: "amt, id, st"}),
    "join": ('select o.id, sum(o.amt) as s from "x"."m"."o" o join "x"."m"."p" p on p.id = o.pid where p.flag '
             "group by o.id", {O: "amt, id, pid", P: "flag, id"}),
    "alias": ('select amt as total from "x"."m"."o"', {O: "amt"}),
    # a top-level `* exclude (x)` reads every column, x by name too: the query fails when x is gone
    "star_exclude": ('select * exclude (balance) from "x"."m"."o"', {O: "*"}),
    "star_exclude_inside": ('select id from (select * exclude (balance) from "x"."m"."o") s', {O: "balance, id"}),
    "star_replace_inside": ('select id from (select * replace (amt * 2 as amt) from "x"."m"."o") s',
                            {O: "amt, id"}),
    "join_using": ('select p.flag, o.amt from "x"."m"."o" o join "x"."m"."p" p using (id, pid)',
                   {O: "amt, id, pid", P: "flag, id, pid"}),
    "natural_join": ('select p.flag from "x"."m"."o" o natural join "x"."m"."p" p', {O: "*", P: "*"}),
    "having": ('select grp, sum(amt) as total from "x"."m"."o" group by grp having max(ts) > 1 and total > 0',
               {O: "amt, grp, ts"}),
    "qualify": ('select id from "x"."m"."o" qualify row_number() over (partition by grp order by ts desc) = 1',
                {O: "grp, id, ts"}),
    "union": ('select a, b from "x"."m"."o" union all select c, d from "x"."m"."p"', {O: "a, b", P: "c, d"}),
    "window": ('select id, row_number() over (partition by grp order by ts) as rn from "x"."m"."o"',
               {O: "grp, id, ts"}),
    "top_star": ('select * from "x"."m"."o"', {O: "*"}),
}


@pytest.mark.parametrize("name", list(READS))
def test_read_columns(name: str) -> None:
    sql, expected = READS[name]
    found = {key: demand.describe() for key, demand in read_columns(sql, "duckdb").items()}
    assert found == expected


def test_unparsable_sql_is_unknown_with_a_position() -> None:
    with pytest.raises(Unknown, match=r"sqlglot cannot parse the compiled SQL at line 1"):
        read_columns('select a from "x"."m"."o" where ((', "duckdb")


def test_output_columns_expand_stars_through_known_columns() -> None:
    sql = 'with c as (select * from "x"."m"."o") select id, cast(amt as double) as amount from c'
    found = output_columns(sql, "duckdb", {O: [("id", "INTEGER"), ("amt", "BIGINT")]})
    assert [(c.name, c.data_type) for c in found] == [("id", "INT"), ("amount", "DOUBLE")]
    with pytest.raises(Unknown, match="selects \\* from a relation whose columns are unknown"):
        output_columns('select * from "x"."m"."o"', "duckdb")
