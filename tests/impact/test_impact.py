"""`handoff impact` on real manifests: the marketplace domain edited per case, parsed by dbt, compared
with the deployed one, consumers read from a registry holding the published mesh.

Each case's markdown is kept in tests/impact/golden/<case>.md; HANDOFF_UPDATE_GOLDEN=1 rewrites them.
"""

from __future__ import annotations

import difflib
import json
import os
import re
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from handoff.cli import main
from handoff.impact import CLASSES
from impact_mesh import Edit, Rename, Replace, Write, build

GOLDEN = Path(__file__).resolve().parent / "golden"
DOCS = Path(__file__).resolve().parents[2] / "docs" / "impact.md"
MARTS = "models/marts/_marts.yml"

QUANTITY_DOC = """      - name: quantity
        data_type: integer
        description: Units ordered.
"""
MRT_ITEMS_ACCESS = """  - name: mrt_items
    description: The item catalogue; read by marketing. Does not wait for orders.
    access: public
"""
MRT_ORDERS_REFACTORED = """{{ handoff_examples.inject_faults() }}
-- Refactored: completed orders first, then the columns (same columns, same types).
with completed as (
    select * from {{ ref('int_orders') }}
    where status = 'completed'
)

select order_id, item_id, quantity, ordered_at, amount_cents
from completed
"""
MRT_SELLERS = """{{ handoff_examples.inject_faults() }}
select distinct item_id, 'seller-' || cast(item_id % 3 as varchar) as seller_id
from {{ ref('stg_items') }}
"""
MRT_SELLERS_DOC = """
  - name: mrt_sellers
    description: Who sells each item (new).
    access: public
    config:
      contract: {enforced: true}
    columns:
      - name: item_id
        data_type: integer
      - name: seller_id
        data_type: varchar
"""
VERSIONS_DOC = """    access: public
    latest_version: 1
    versions:
      - v: 1
      - v: 2
        columns:
          - include: all
            exclude: [quantity]
    config:
      contract: {enforced: true}
      meta:
        handoff:
          available_by: "04:30"      # complete by 04:30 UTC on the run's day
"""
ORDERS_HEAD = """    access: public
    config:
      contract: {enforced: true}
      meta:
        handoff:
          available_by: "04:30"      # complete by 04:30 UTC on the run's day
"""
ITEMS_CONFIG = """      contract: {enforced: true}
      meta:
        handoff:
          available_by: "04:00"
"""
ORDERS_CONFIG = """    config:
      contract: {enforced: true}
      meta:
        handoff:
          available_by: "04:30"""
VERSIONED: tuple[Edit, ...] = (
    Replace(MARTS, ORDERS_HEAD, VERSIONS_DOC),
    Rename("models/marts/mrt_orders.sql", "models/marts/mrt_orders_v1.sql"),
    Write("models/marts/mrt_orders_v2.sql", """{{ handoff_examples.inject_faults() }}
select order_id, item_id, ordered_at, amount_cents
from {{ ref('int_orders') }}
where status = 'completed'
"""),
)
SINGLE_VERSION: tuple[Edit, ...] = (
    Replace(MARTS, ORDERS_HEAD, VERSIONS_DOC.replace(
        "      - v: 2\n        columns:\n          - include: all\n            exclude: [quantity]\n", "")),
    Rename("models/marts/mrt_orders.sql", "models/marts/mrt_orders_v1.sql"),
)


@dataclass(frozen=True)
class Case:
    edits: tuple[Edit, ...]
    kinds: dict[str, set[str]]  # model label -> change classes, for every changed node
    breaking: set[str]  # labels of the models reported breaking
    teams: dict[str, tuple[set[str], bool]]  # Slack -> (owners, hit by a breaking change)
    exit_breaking: int
    exit_any: int
    summary: str  # a regular expression the summary line must match
    base_case: str | None = None  # compare with this case's head instead of the deployed manifest
    registry: bool = True
    publish_base: bool = False  # the registry holds base_case's marketplace instead of the deployed one
    not_in_markdown: tuple[str, ...] = field(default=())
    in_markdown: tuple[str, ...] = field(default=())
    finance_edits: tuple[Edit, ...] = ()  # the registry holds this edit of finance (with publish_base)
    catalog: bool = False  # build base and head in DuckDB and pass their catalog.json
    extra_args: tuple[str, ...] = ()


BOTH_TEAMS = {"#finance-data": ({"team-finance"}, True), "#marketing-data": ({"growth-analytics"}, True)}

CASES: dict[str, Case] = {
    "dropped_column": Case(
        edits=(Replace("models/marts/mrt_orders.sql", "    quantity,\n", ""), Replace(MARTS, QUANTITY_DOC, "")),
        # no consumer reads quantity (finance reads order_id, ordered_at, amount_cents): not breaking
        kinds={"mrt_orders": {"column_removed", "sql_changed"}},
        breaking=set(),
        teams={"#finance-data": ({"team-finance"}, False), "#marketing-data": ({"growth-analytics"}, False)},
        exit_breaking=0, exit_any=1,
        summary=r"^\*\*No breaking changes; 2 changes reach 2 teams: #finance-data, #marketing-data\*\*$",
        in_markdown=("column `quantity` removed (columns from contract); no consumer reads it",),
    ),
    "renamed_model": Case(
        edits=(Rename("models/marts/mrt_items.sql", "models/marts/mrt_catalogue.sql"),
               Replace(MARTS, "  - name: mrt_items\n", "  - name: mrt_catalogue\n"),
               Replace(MARTS, "ref('mrt_items')", "ref('mrt_catalogue')")),
        kinds={"mrt_items → mrt_catalogue": {"renamed"}},
        breaking={"mrt_items → mrt_catalogue"},
        teams={"#marketing-data": ({"team-marketing", "growth-analytics"}, True)},
        exit_breaking=1, exit_any=1,
        summary=r"^\*\*1 breaking change affects 1 team: #marketing-data\*\*$",
        # finance waits for mrt_orders, whose test also waits for mrt_items: scheduling, not reading
        not_in_markdown=("#finance-data",),
    ),
    "changed_type": Case(
        edits=(Replace(MARTS, "data_type: bigint", "data_type: double"),
               Replace("models/marts/mrt_orders.sql", "    amount_cents\nfrom",
                       "    cast(amount_cents as double) as amount_cents\nfrom")),
        kinds={"mrt_orders": {"column_type_changed", "sql_changed"}},
        breaking={"mrt_orders"},
        teams=BOTH_TEAMS,
        exit_breaking=1, exit_any=1,
        summary=r"^\*\*1 breaking change affects 2 teams",
    ),
    "made_private": Case(
        edits=(Replace(MARTS, MRT_ITEMS_ACCESS, MRT_ITEMS_ACCESS.replace("public", "private\n    group: catalogue")),
               Replace(MARTS, "models:\n", "groups:\n  - name: catalogue\n    owner: {name: team-catalogue}\n\n"
                                           "models:\n"),
               # dbt forbids references to a private model from outside its group, tests included
               Replace(MARTS, "          - relationships:\n              arguments: {to: ref('mrt_items'), "
                              "field: item_id}\n", "")),
        kinds={"mrt_items": {"access_narrowed"}},
        breaking={"mrt_items"},
        teams={"#marketing-data": ({"team-marketing", "growth-analytics"}, True)},
        exit_breaking=1, exit_any=1,
        summary=r"^\*\*1 breaking change affects 1 team: #marketing-data\*\*$",
    ),
    "sql_refactor": Case(
        edits=(Write("models/marts/mrt_orders.sql", MRT_ORDERS_REFACTORED),
               Replace("models/staging/stg_orders.sql", "select\n", "select -- every status\n"),
               # a later SLA that every consumer's own SLA still follows: not breaking
               Replace(MARTS, 'available_by: "04:30"', 'available_by: "05:00"')),
        kinds={"mrt_orders": {"sql_changed", "available_by_later"}, "stg_orders": {"sql_changed"}},
        breaking=set(),
        teams={"#finance-data": ({"team-finance"}, False), "#marketing-data": ({"growth-analytics"}, False)},
        exit_breaking=0, exit_any=1,
        summary=r"^\*\*No breaking changes; 2 changes reach 2 teams: #finance-data, #marketing-data\*\*$",
    ),
    "added_model": Case(
        edits=(Write("models/marts/mrt_sellers.sql", MRT_SELLERS),
               Replace(MARTS, "\n  - name: mrt_items\n", MRT_SELLERS_DOC + "\n  - name: mrt_items\n")),
        kinds={"mrt_sellers": {"added"}},
        breaking=set(),
        teams={},
        exit_breaking=0, exit_any=0,
        summary=r"^handoff impact \(marketplace\): no cross-domain impact — 1 changed node, "
                r"none is used by another domain$",
    ),
    "versioned": Case(
        edits=VERSIONED,
        kinds={"mrt_orders": {"version_removed"}, "mrt_orders v1": {"version_added"},
               "mrt_orders v2": {"version_added"}},
        breaking={"mrt_orders"},
        teams=BOTH_TEAMS,
        exit_breaking=1, exit_any=1,
        summary=r"^\*\*1 breaking change affects 2 teams",
    ),
    # Many classes at once: contract dropped, SLA later, relation moved; config, columns and internal nodes.
    "governance": Case(
        edits=(
            # mrt_items: alias, contract dropped, SLA past marketing's 07:00
            Replace(MARTS, "owner: team-catalogue     # overrides the domain's owner for this model only\n",
                    "owner: team-catalogue\n      alias: items\n"),
            Replace(MARTS, ITEMS_CONFIG, ITEMS_CONFIG.replace("true", "false").replace("04:00", "07:30")),
            # mrt_orders: incremental, one more column
            Replace(MARTS, ORDERS_CONFIG, ORDERS_CONFIG.replace(
                "    config:\n", "    config:\n      materialized: incremental\n      on_schema_change: fail\n")),
            Replace(MARTS, "list price, in euro cents.\n",
                    "list price, in euro cents.\n      - name: status\n        data_type: varchar\n"),
            Replace("models/marts/mrt_orders.sql", "    amount_cents\nfrom", "    amount_cents,\n    status\nfrom"),
            # internal: a seed's data, a snapshot's config
            Replace("seeds/raw_items.csv", "Walnut desk", "Oak desk"),
            Replace("snapshots/snp_items.yml", "check_cols: [price_cents, title]", "check_cols: [price_cents]"),
        ),
        kinds={"mrt_items": {"contract_removed", "relation_changed", "available_by_later"},
               "mrt_orders": {"column_added", "sql_changed", "config_changed"},
               "raw_items": {"sql_changed"}, "snp_items": {"config_changed", "sql_changed"}},
        breaking={"mrt_items"},
        teams={"#marketing-data": ({"team-marketing", "growth-analytics"}, True),
               "#finance-data": ({"team-finance"}, False)},
        exit_breaking=1, exit_any=1,
        summary=r"^\*\*3 breaking changes affect 1 team: #marketing-data \(non-breaking changes also reach "
                r"#finance-data\)\*\*$",
    ),
    # Base: mrt_orders with one version (v1), which finance's sensor names as plain "mrt_orders".
    "single_version": Case(
        edits=SINGLE_VERSION, kinds={"mrt_orders": {"version_removed"}, "mrt_orders v1": {"version_added"}},
        breaking={"mrt_orders"}, teams=BOTH_TEAMS, exit_breaking=1, exit_any=1,
        summary=r"^\*\*1 breaking change affects 2 teams",
    ),
    # ... then a second version, latest_version staying 1: the plain name still means v1, as the
    # consumers' unpinned ref() does (docs/plan.md, versions): nothing breaks.
    "second_version": Case(
        edits=VERSIONED,
        kinds={"mrt_orders v2": {"version_added"}},
        breaking=set(), teams={}, exit_breaking=0, exit_any=0,
        summary=r"^handoff impact \(marketplace\): no cross-domain impact",
        base_case="single_version", publish_base=True,
    ),
    # Governance of a versioned model, without a registry: the base is the "versioned" case's head.
    "version_bump": Case(
        edits=VERSIONED + (
            Replace(MARTS, "    latest_version: 1\n", "    latest_version: 2\n"),
            Replace(MARTS, "      - v: 1\n", "      - v: 1\n        deprecation_date: 2030-01-01\n"),
        ),
        kinds={"mrt_orders v1": {"deprecation_changed", "latest_version_changed"}},
        breaking={"mrt_orders v1"},
        teams={},
        exit_breaking=1, exit_any=1,
        summary=r"^\*\*1 breaking change in 1 changed public model; consumers not checked \(run with --registry\)\*\*$",
        base_case="versioned", registry=False,
    ),
}

# Columns without YAML: mrt_orders without contract or documented columns (the base of the cases below).
UNCONTRACTED: tuple[Edit, ...] = (
    Replace(MARTS, ORDERS_CONFIG, ORDERS_CONFIG.replace("      contract: {enforced: true}\n", "")),
    Replace(MARTS, """    columns:
      - name: order_id
        data_type: integer
        description: The order.
        data_tests: [unique, not_null]
      - name: item_id
        data_type: integer
        description: The ordered item.
        data_tests:
          - not_null
          - relationships:
              arguments: {to: ref('mrt_items'), field: item_id}
      - name: quantity
        data_type: integer
        description: Units ordered.
      - name: ordered_at
        data_type: date
        description: Day of the order (UTC).
      - name: amount_cents
        data_type: bigint
        description: quantity x list price, in euro cents.
""", ""),
)
ORDERS_SQL = "models/marts/mrt_orders.sql"
FINANCE_BOTH = {"#finance-data": ({"team-finance"}, True), "#marketing-data": ({"growth-analytics"}, True)}
FINANCE_SAFE = {"#finance-data": ({"team-finance"}, False), "#marketing-data": ({"growth-analytics"}, False)}
STG_FINANCE = "models/staging/stg_marketplace_orders.sql"

CASES.update({
    "uncontracted": Case(
        edits=UNCONTRACTED, kinds={"mrt_orders": {"contract_removed", "column_undocumented"}},
        breaking={"mrt_orders"}, teams=FINANCE_BOTH, exit_breaking=1, exit_any=1,
        summary=r"^\*\*1 breaking change affects 2 teams"),
    # An undocumented column that finance reads, dropped: breaking, naming the reader and the column.
    "undocumented_drop_read": Case(
        edits=(*UNCONTRACTED, Replace(ORDERS_SQL, "    ordered_at,\n    amount_cents\n", "    ordered_at\n")),
        kinds={"mrt_orders": {"column_removed", "sql_changed"}}, breaking={"mrt_orders"}, teams=FINANCE_BOTH,
        exit_breaking=1, exit_any=1, base_case="uncontracted", publish_base=True,
        summary=r"^\*\*1 breaking change affects 2 teams: #finance-data, #marketing-data\*\*$",
        in_markdown=("column `amount_cents` removed (columns from sql); read by "
                     "finance.stg_marketplace_orders reads `amount_cents`",)),
    # The same drop of a column no consumer reads: not breaking, and why.
    "undocumented_drop_unread": Case(
        edits=(*UNCONTRACTED, Replace(ORDERS_SQL, "    quantity,\n", "")),
        kinds={"mrt_orders": {"column_removed", "sql_changed"}}, breaking=set(), teams=FINANCE_SAFE,
        exit_breaking=0, exit_any=1, base_case="uncontracted", publish_base=True,
        summary=r"^\*\*No breaking changes; 2 changes reach 2 teams",
        in_markdown=("no consumer reads it (finance.stg_marketplace_orders reads amount_cents, order_id, "
                     "ordered_at)",)),
    # The case: `as balance` -> `as total` where another domain reads the old name.
    "column_renamed": Case(
        edits=(*UNCONTRACTED, Replace(ORDERS_SQL, "    amount_cents\n", "    amount_cents as amount_total\n")),
        kinds={"mrt_orders": {"column_renamed", "sql_changed"}}, breaking={"mrt_orders"}, teams=FINANCE_BOTH,
        exit_breaking=1, exit_any=1, base_case="uncontracted", publish_base=True,
        summary=r"^\*\*1 breaking change affects 2 teams",
        in_markdown=("column `amount_cents` likely renamed to `amount_total`: same expression "
                     "`int_orders.amount_cents`",)),
    # A consumer reading `select *` reads every column: dropping quantity breaks it.
    "select_star_consumer": Case(
        edits=(*UNCONTRACTED, Replace(ORDERS_SQL, "    quantity,\n", "")),
        kinds={"mrt_orders": {"column_removed", "sql_changed"}}, breaking={"mrt_orders"}, teams=FINANCE_BOTH,
        exit_breaking=1, exit_any=1, base_case="uncontracted", publish_base=True,
        finance_edits=(Replace(STG_FINANCE, "select\n    order_id,\n    ordered_at,\n    amount_cents\nfrom",
                               "select *\nfrom"),
                       Replace("models/marts/mrt_revenue.sql", "select\n", "select -- every order\n")),
        summary=r"^\*\*1 breaking change affects 2 teams",
        in_markdown=("read by finance.stg_marketplace_orders reads `quantity`",)),
    # A Jinja loop writes the columns: the compiled SQL is what counts (quantity dropped, unread).
    "jinja_columns": Case(
        edits=(*UNCONTRACTED, Write(ORDERS_SQL, """{{ handoff_examples.inject_faults() }}
{%- set kept = ['order_id', 'item_id', 'ordered_at', 'amount_cents'] %}
select
{%- for column in kept %}
    {{ column }}{{ ',' if not loop.last }}
{%- endfor %}
from {{ ref('int_orders') }}
where status = 'completed'
""")),
        kinds={"mrt_orders": {"column_removed", "sql_changed"}}, breaking=set(), teams=FINANCE_SAFE,
        exit_breaking=0, exit_any=1, base_case="uncontracted", publish_base=True,
        summary=r"^\*\*No breaking changes", in_markdown=("column `quantity` removed",)),
    # SQL sqlglot cannot parse: columns unknown, said in the summary; --fail-on breaking fails by default.
    "unparsable": Case(
        edits=(*UNCONTRACTED, Replace(ORDERS_SQL, "where status = 'completed'",
                                      "where status = 'completed' and ((")),
        kinds={"mrt_orders": {"columns_unknown"}}, breaking=set(), teams={
            "#finance-data": ({"team-finance"}, False), "#marketing-data": ({"growth-analytics"}, False)},
        exit_breaking=1, exit_any=1, base_case="uncontracted", publish_base=True,
        summary=r"^\*\*1 change may break 2 teams: columns unknown \(#finance-data, #marketing-data\)\*\*$",
        in_markdown=("sqlglot cannot parse the compiled SQL",)),
    # A type change seen only in the warehouse (catalog.json): finance reads amount_cents.
    "catalog_type_change": Case(
        edits=(*UNCONTRACTED, Replace(ORDERS_SQL, "    amount_cents\nfrom",
                                      "    cast(amount_cents as double) as amount_cents\nfrom")),
        kinds={"mrt_orders": {"column_type_changed", "sql_changed"}}, breaking={"mrt_orders"},
        teams=FINANCE_BOTH, exit_breaking=1, exit_any=1, base_case="uncontracted", publish_base=True,
        catalog=True, summary=r"^\*\*1 breaking change affects 2 teams",
        in_markdown=("type changed: `amount_cents` BIGINT → DOUBLE (columns from catalog)",)),
    # A column computed differently whose type nothing can compare (no catalog, no contract, sqlglot
    # cannot infer strftime's): may break the consumers that read it (finance reads ordered_at).
    "expression_changed_untyped": Case(
        edits=(*UNCONTRACTED, Replace(ORDERS_SQL, "    ordered_at,\n",
                                      "    strftime(ordered_at, '%Y-%m-%d') as ordered_at,\n")),
        kinds={"mrt_orders": {"column_expression_changed", "sql_changed"}}, breaking=set(), teams=FINANCE_SAFE,
        exit_breaking=1, exit_any=1, base_case="uncontracted", publish_base=True,
        summary=r"may break",
        in_markdown=("expression changed, type unknown: `ordered_at`",)),
    # A rename that also edits the SQL: same columns and inputs -> likely rename, not removed + added.
    "renamed_with_edit": Case(
        edits=(Write("models/marts/mrt_catalogue.sql", """{{ handoff_examples.inject_faults() }}
-- the catalogue, renamed from mrt_items (and reformatted)
select item_id, title, category, price_cents
from {{ ref('stg_items') }}
"""), Rename("models/marts/mrt_items.sql", "models/marts/mrt_items.sql.bak"),
               Replace(MARTS, "  - name: mrt_items\n", "  - name: mrt_catalogue\n"),
               Replace(MARTS, "ref('mrt_items')", "ref('mrt_catalogue')")),
        kinds={"mrt_items → mrt_catalogue": {"renamed", "sql_changed"}},
        breaking={"mrt_items → mrt_catalogue"},
        teams={"#marketing-data": ({"team-marketing", "growth-analytics"}, True)},
        exit_breaking=1, exit_any=1, summary=r"^\*\*1 breaking change affects 1 team: #marketing-data\*\*$",
        in_markdown=("likely rename of `mrt_items` → `mrt_catalogue`: same 4 columns",)),
})

_heads: dict[str, Path] = {}


def head_manifest(name: str, deployed, catalog: bool = False) -> Path:
    label = f"{name}+catalog" if catalog else name
    if label not in _heads:
        _heads[label] = build("marketplace", deployed.root / "heads" / label, CASES[name].edits, catalog=catalog)
    return _heads[label]


def publish_with(deployed, marketplace: Path, name: str, capsys, finance_edits: tuple[Edit, ...] = ()) -> str:
    """A registry holding this marketplace manifest's plan and the deployed finance (or an edit of it) and
    marketing."""
    plans = deployed.root / "plans" / name
    assert main(["compile", str(marketplace), "-o", f"{plans}/"]) == 0
    others = [str(deployed.root / "plans" / f"{d}.plan.json") for d in ("finance", "marketing")]
    if finance_edits:
        finance = build("finance", deployed.root / "finance" / name, finance_edits)
        assert main(["compile", str(finance), "-o", f"{plans}/"]) == 0
        others[0] = str(plans / "finance.plan.json")
    registry = f"sqlite:///{deployed.root / (name + '.db')}"
    assert main(["publish", "--registry", registry, str(plans / "marketplace.plan.json"), *others]) == 0
    assert main(["check", "--registry", registry, *others]) == 0  # finance's plain "mrt_orders" resolves
    capsys.readouterr()
    return registry


def run(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(["impact", *argv])
    out, err = capsys.readouterr()
    return code, out, err


def check_golden(name: str, text: str) -> None:
    path = GOLDEN / f"{name}.md"
    if os.environ.get("HANDOFF_UPDATE_GOLDEN") == "1":
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, "utf-8")
        return
    if not path.exists():
        pytest.fail(f"no golden file {path}; create it with HANDOFF_UPDATE_GOLDEN=1")
    expected = path.read_text("utf-8")
    if text != expected:
        diff = "".join(difflib.unified_diff(expected.splitlines(True), text.splitlines(True),
                                            f"golden/{name}.md", "rendered"))
        pytest.fail(f"markdown differs from golden/{name}.md (HANDOFF_UPDATE_GOLDEN=1 rewrites it):\n{diff}")


@pytest.mark.parametrize("name", list(CASES))
def test_case(name, deployed, capsys):
    case = CASES[name]
    base = (head_manifest(case.base_case, deployed, case.catalog) if case.base_case
            else deployed.manifests["marketplace"])
    head = head_manifest(name, deployed, case.catalog)
    argv = ["--base", str(base), "--head", str(head), *case.extra_args]
    if case.catalog:
        argv += ["--base-catalog", str(base.with_name("catalog.json")),
                 "--head-catalog", str(head.with_name("catalog.json"))]
    if case.publish_base:
        argv += ["--registry", publish_with(deployed, base, name, capsys, case.finance_edits)]
    elif case.registry:
        argv += ["--registry", deployed.registry]

    code, markdown, err = run(capsys, *argv)
    assert (code, err) == (0, "")
    code, text, err = run(capsys, *argv, "--format", "json")
    assert (code, err) == (0, "")
    report = json.loads(text)

    # classification
    kinds = {_label(m): {c["kind"] for c in m["changes"]} for m in report["models"]}
    assert kinds == case.kinds
    assert {_label(m) for m in report["models"] if m["breaking"]} == case.breaking
    assert report["breaking_changes"] == sum(1 for m in report["models"] for c in m["changes"] if c["breaking"])
    # affected teams
    teams = {t["slack"]: (set(t["owners"]), t["breaking"]) for t in report["teams"]}
    assert teams == case.teams
    for model in report["models"]:
        if case.registry:
            assert model["consumers"] is not None
            assert all(c["domain"] != "marketplace" for c in model["consumers"])
        else:
            assert model["consumers"] is None
    # markdown: summary first, every affected team named, deterministic
    first = markdown.splitlines()[0]
    assert re.search(case.summary, first), first
    assert first.strip("*") == report["summary"]
    for slack in case.teams:
        assert slack in first
    for text_ in case.not_in_markdown:
        assert text_ not in markdown
    for text_ in case.in_markdown:
        assert text_ in markdown, (text_, markdown)
    if not case.teams and not case.breaking:
        assert markdown.count("\n") == 1  # one line, nothing else
    assert str(deployed.root) not in markdown and str(deployed.root) not in text
    check_golden(name, markdown)

    # exit codes
    assert run(capsys, *argv, "--fail-on", "breaking")[0] == case.exit_breaking
    assert run(capsys, *argv, "--fail-on", "any")[0] == case.exit_any
    assert run(capsys, *argv, "--fail-on", "never")[0] == 0
    if report["may_break_changes"]:  # "columns unknown" counts as breaking unless told otherwise
        assert run(capsys, *argv, "--fail-on", "breaking", "--unknown-columns", "non-breaking")[0] == 0


def _label(model: dict) -> str:
    name = model["name"]
    if model["known_as"] not in (None, name):
        name = f"{model['known_as']} → {name}"
    return name if model["version"] is None else f"{name} v{model['version']}"


def test_consumers_direct_and_transitive(deployed, capsys):
    """mrt_orders: finance reads it (depth 1); marketing reads finance.mrt_revenue (depth 2)."""
    code, text, _ = run(capsys, "--base", str(deployed.manifests["marketplace"]),
                        "--head", str(head_manifest("dropped_column", deployed)),
                        "--registry", deployed.registry, "--format", "json")
    (orders,) = [m for m in json.loads(text)["models"] if m["name"] == "mrt_orders"]
    found = {(c["domain"], c["task_id"]): (c["depth"], c["direct"], tuple(c["via"])) for c in orders["consumers"]}
    assert found == {
        ("finance", "stg_marketplace_orders"): (1, True, ("marketplace.mrt_orders",)),
        ("finance", "mrt_revenue"): (1, False, ("marketplace.mrt_orders",)),
        ("marketing", "mrt_campaign_performance"): (2, False, ("marketplace.mrt_orders", "finance.mrt_revenue")),
    }


# mrt_orders and mrt_items both versioned (v1, v2; latest 1), then both move their latest version to 2
TWO_VERSIONED: tuple[Edit, ...] = (
    *VERSIONED,
    Replace(MARTS, MRT_ITEMS_ACCESS, MRT_ITEMS_ACCESS + "    latest_version: 1  # items\n"
                                                       "    versions:\n      - v: 1\n      - v: 2\n"),
    Rename("models/marts/mrt_items.sql", "models/marts/mrt_items_v1.sql"),
    Write("models/marts/mrt_items_v2.sql", """{{ handoff_examples.inject_faults() }}
select item_id, title, category, price_cents
from {{ ref('stg_items') }}
"""),
)


def test_two_models_move_their_latest_version(deployed, capsys):
    """One change per model whose latest version moved, for every such model (the classifier once
    crashed on the second one: mypy --strict found it reusing the loop's lookup table)."""
    base = build("marketplace", deployed.root / "heads" / "two_versioned", TWO_VERSIONED)
    head = build("marketplace", deployed.root / "heads" / "two_bumped", (
        *TWO_VERSIONED, Replace(MARTS, "    latest_version: 1\n", "    latest_version: 2\n"),
        Replace(MARTS, "    latest_version: 1  # items\n", "    latest_version: 2  # items\n")))
    code, text, err = run(capsys, "--base", str(base), "--head", str(head), "--format", "json")
    assert (code, err) == (0, "")
    models = json.loads(text)["models"]
    assert {_label(m): {c["kind"] for c in m["changes"]} for m in models} == {
        "mrt_items v1": {"latest_version_changed"}, "mrt_orders v1": {"latest_version_changed"}}
    (orders,) = [m for m in models if m["name"] == "mrt_orders"]
    (change,) = orders["changes"]
    assert change["breaking"] and "drops `quantity`" in change["detail"]  # v2 excludes quantity
    (items,) = [m for m in models if m["name"] == "mrt_items"]
    assert not items["breaking"] and "keeps every column of v1" in items["changes"][0]["detail"]


def test_without_registry_new_public_model_reaches_nobody(deployed, capsys, monkeypatch):
    monkeypatch.delenv("HANDOFF_REGISTRY_URL", raising=False)
    code, out, err = run(capsys, "--base", str(deployed.manifests["marketplace"]),
                         "--head", str(head_manifest("added_model", deployed)), "--fail-on", "any")
    assert (code, err) == (0, "")
    assert out == ("handoff impact (marketplace): no cross-domain impact — 1 changed node, "
                   "none was visible to other domains\n")


def test_default_local_registry_is_used_when_it_exists(deployed, capsys):
    """Like every handoff command: no --registry, no $HANDOFF_REGISTRY_URL -> ./.handoff/registry.db."""
    argv = ["--base", str(deployed.manifests["marketplace"]), "--head", str(head_manifest("dropped_column", deployed))]
    assert run(capsys, *argv)[1].startswith("**1 breaking change in 1 changed public model; consumers not checked")
    assert main(["publish", str(deployed.root / "plans")]) == 0  # the default URL: ./.handoff/registry.db
    capsys.readouterr()
    assert run(capsys, *argv)[1] == (GOLDEN / "dropped_column.md").read_text("utf-8")


def test_output_file_and_env_registry(deployed, capsys, tmp_path, monkeypatch):
    out = tmp_path / "impact.md"
    monkeypatch.setenv("HANDOFF_REGISTRY_URL", deployed.registry)
    code, stdout, _ = run(capsys, "--base", str(deployed.manifests["marketplace"]),
                          "--head", str(head_manifest("dropped_column", deployed)), "-o", str(out),
                          "--fail-on", "any")
    assert (code, stdout) == (1, "")
    assert out.read_text("utf-8") == (GOLDEN / "dropped_column.md").read_text("utf-8")


# --------------------------------------------------------------------------------------
# Errors: one line, exit 2, nothing written
# --------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def renamed_domain(deployed) -> Path:
    """marketplace's project under another handoff domain name."""
    return build("marketplace", deployed.root / "heads" / "renamed_domain", (
        Replace("dbt_project.yml", "handoff_domain: {name: marketplace,", "handoff_domain: {name: bazaar,"),))


def _error_cases(deployed, renamed_domain, tmp_path) -> dict[str, tuple[list[str], str]]:
    market, finance = str(deployed.manifests["marketplace"]), str(deployed.manifests["finance"])
    malformed = tmp_path / "malformed.json"
    malformed.write_text('{"metadata": {"dbt_schema_version": ', "utf-8")
    copy = tmp_path / "copy.json"
    copy.write_bytes(Path(market).read_bytes())
    not_sqlite = tmp_path / "notes.txt"
    not_sqlite.write_text("not a database\n" * 100, "utf-8")
    empty_sqlite = tmp_path / "empty.db"
    import sqlite3
    sqlite3.connect(empty_sqlite).execute("create table t (x)").connection.close()
    other_registry = f"sqlite:///{tmp_path / 'other.db'}"
    assert main(["publish", "--registry", other_registry, str(deployed.root / "plans" / "finance.plan.json")]) == 0
    head = str(head_manifest("dropped_column", deployed))
    return {
        "different projects": (["--base", finance, "--head", market], "different dbt projects"),
        "different domains": (["--base", market, "--head", str(renamed_domain)], "different domains"),
        "missing file": (["--base", str(tmp_path / "nope.json"), "--head", market], "file not found"),
        "malformed": (["--base", market, "--head", str(malformed)], "not valid JSON"),
        "same file twice": (["--base", market, "--head", market],
                            "no changes: base and head are the same manifest"),
        "identical copy": (["--base", market, "--head", str(copy)],
                           "no changes: base and head are the same manifest"),
        "registry folder missing": (["--base", market, "--head", head, "--registry",
                                     f"sqlite:///{tmp_path / 'nowhere' / 'registry.db'}"], "does not exist"),
        "registry file missing": (["--base", market, "--head", head, "--registry",
                                   f"sqlite:///{tmp_path / 'registry.db'}"], "no registry at"),
        "registry not sqlite": (["--base", market, "--head", head, "--registry", f"sqlite:///{not_sqlite}"],
                                "cannot open registry"),
        "registry not handoff": (["--base", market, "--head", head, "--registry", f"sqlite:///{empty_sqlite}"],
                                 "is not a handoff registry"),
        "registry bad scheme": (["--base", market, "--head", head, "--registry", "mysql://h/db"],
                                "not supported"),
        "domain not published": (["--base", market, "--head", head, "--registry", other_registry],
                                 "domain 'marketplace' is not published"),
    }


def test_errors_are_one_line_exit_2_nothing_written(deployed, renamed_domain, tmp_path, capsys):
    cases = _error_cases(deployed, renamed_domain, tmp_path)
    capsys.readouterr()
    for name, (argv, message) in cases.items():
        out = tmp_path / "report.md"
        code, stdout, stderr = run(capsys, *argv, "-o", str(out))
        assert code == 2, (name, stdout, stderr)
        assert stdout == "", name
        assert not out.exists(), name
        assert stderr.count("\n") == 1 and stderr.startswith("handoff: error: "), (name, stderr)
        assert message in stderr, (name, stderr)
        # standard output stays empty too
        code, stdout, stderr = run(capsys, *argv)
        assert (code, stdout) == (2, ""), name
    assert not (tmp_path / "registry.db").exists()  # a missing registry is never created


def test_docs_list_every_class():
    """docs/impact.md's class table is handoff.impact.CLASSES."""
    section = DOCS.read_text("utf-8").split("## Change classes", 1)[1].split("\n## ", 1)[0]
    rows = re.findall(r"^\| `([a-z_]+)` \| ([^|]+) \|", section, re.M)
    assert [kind for kind, _ in rows] == [c.kind for c in CLASSES]
    for (kind, verdict), cls in zip(rows, CLASSES, strict=True):
        expected = "may break" if cls.uncertain else "yes" if cls.breaking else "no"
        assert verdict.strip().startswith(expected) or kind == "latest_version_changed", kind


def test_docs_examples_are_the_golden_files():
    """Every example in docs/impact.md (after a `<!-- golden: NAME -->` line) is golden/NAME.md."""
    examples = re.findall(r"<!-- golden: (\w+) -->\n````markdown\n(.*?)````\n", DOCS.read_text("utf-8"), re.S)
    assert len(examples) >= 4
    for name, text in examples:
        assert text == (GOLDEN / f"{name}.md").read_text("utf-8"), f"docs/impact.md example {name} is stale"


def test_map_embeds_the_domains_the_change_reaches(deployed, capsys):
    """--map (the UI's hook): a Mermaid sub-map of marketplace and the domains its change reaches."""
    code, text, _ = run(capsys, "--base", str(deployed.manifests["marketplace"]),
                        "--head", str(head_manifest("dropped_column", deployed)),
                        "--registry", deployed.registry, "--map")
    assert code == 0
    chart = text.split("### Domains reached\n\n```mermaid\n", 1)[1].split("```", 1)[0]
    assert chart.startswith("flowchart LR\n")
    assert {line.split('["')[1].split("<br/>")[0] for line in chart.splitlines() if '["' in line} == {
        "marketplace", "finance", "marketing"}
    assert '-->|"mrt_orders"|' in chart and "class " in chart and "changed" in chart
    code, _, err = run(capsys, "--base", str(deployed.manifests["marketplace"]),
                       "--head", str(head_manifest("dropped_column", deployed)), "--map")
    assert code == 2 and "--map needs the registry" in err


def test_a_catalog_of_another_dbt_invocation_is_refused(deployed, capsys, tmp_path):
    """A catalog passed with a manifest that another dbt invocation wrote (the base's catalog given as
    the head's: its columns would override the head's SQL and hide a drop) is one line naming the
    catalog, exit 2, nothing written; the catalog written with the manifest is accepted."""
    base = head_manifest("uncontracted", deployed, True)
    head = head_manifest("catalog_type_change", deployed, True)
    out = tmp_path / "report.md"
    argv = ["--base", str(base), "--head", str(head), "--registry", deployed.registry, "-o", str(out)]
    code, stdout, err = run(capsys, *argv, "--base-catalog", str(head.with_name("catalog.json")),
                            "--head-catalog", str(base.with_name("catalog.json")))
    assert (code, stdout) == (2, "")
    # the first of the two mismatches: the head's catalog passed with the base manifest
    assert err.count("\n") == 1 and str(head.with_name("catalog.json")) in err, err
    assert "not of that manifest" in err and "--base-catalog" in err, err
    assert not out.exists()
    code, _, err = run(capsys, *argv, "--base-catalog", str(base.with_name("catalog.json")),
                       "--head-catalog", str(head.with_name("catalog.json")))
    assert (code, err) == (0, "") and out.is_file()
