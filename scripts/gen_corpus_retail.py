"""Writes integration_tests/corpus/retail: a 200+-model dbt project (domain `retail`), deterministic.

    python scripts/gen_corpus_retail.py            # rewrite the project's generated files
    python scripts/gen_corpus_retail.py --check    # exit 1 if the committed project differs

The shape is a real retailer's: raw exports (seeds) of 18 source systems -> staging views
(`models/staging/<system>/`) -> intermediate models (some ephemeral, an ephemeral chain) -> marts
(facts, dimensions, a versioned public dimension, a public mart with a dotted name). It carries
every pattern handoff must handle (docs/plan.md): reused custom test names, relationships tests
pointing downstream, multi-parent singular tests, unit tests (one model opting in), a model named
like the project, a model named like a model of the installed package `retail_kit`, a YAML
snapshot and public seeds. Hand-written files (dbt_project.yml, packages.yml, the package) are
not generated.
"""

# ruff: noqa: S608 - this script writes dbt SQL files from its own constants; no input reaches them
from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1] / "integration_tests" / "corpus" / "retail"
SYSTEMS = ("pos", "web", "app", "crm", "erp", "kiosk", "outlet", "wholesale", "partner", "catalog",
           "b2b", "marketplace", "popup", "callcenter", "franchise", "export", "loyalty", "subscription")
ENTITIES = {  # seed -> columns selected in staging
    "customers": "customer_id, customer_name, country_code, signed_up_on",
    "products": "product_id, product_name, category, price_cents",
    "orders": "order_id, customer_id, store_id, ordered_on, status",
    "order_items": "order_item_id, order_id, product_id, quantity",
    "stores": "store_id, store_name, country_code",
    "payments": "payment_id, order_id, amount_cents, method",
}
EPHEMERAL_SYSTEMS = set(SYSTEMS[::3])  # int_<system>__customer_orders is ephemeral for every third system
UNIT_TESTED = ("pos", "web")  # systems whose int_<system>__orders_enriched has a unit test


def seeds() -> dict[str, str]:
    rows = {
        "raw_customers.csv": ["customer_id,customer_name,country_code,signed_up_on"]
        + [f"{i},Customer {i},{['DE', 'FR', 'NL', 'US'][i % 4]},2024-0{1 + i % 9}-1{i % 10}" for i in range(1, 13)],
        "raw_products.csv": ["product_id,product_name,category,price_cents"]
        + [f"{i},Product {i},{['tools', 'garden', 'kitchen'][i % 3]},{100 * i + 99}" for i in range(1, 10)],
        "raw_orders.csv": ["order_id,customer_id,store_id,ordered_on,status"]
        + [f"{i},{1 + i % 12},{1 + i % 4},2024-02-{10 + i % 18},{['placed', 'shipped', 'completed'][i % 3]}"
           for i in range(1, 21)],
        "raw_order_items.csv": ["order_item_id,order_id,product_id,quantity"]
        + [f"{i},{1 + i % 20},{1 + i % 9},{1 + i % 4}" for i in range(1, 41)],
        "raw_stores.csv": ["store_id,store_name,country_code"]
        + [f"{i},Store {i},{['DE', 'FR', 'NL', 'US'][i % 4]}" for i in range(1, 5)],
        "raw_payments.csv": ["payment_id,order_id,amount_cents,method"]
        + [f"{i},{i},{500 + 37 * i},{['card', 'cash', 'invoice'][i % 3]}" for i in range(1, 21)],
        "country_codes.csv": ["country_code,country_name", "DE,Germany", "FR,France", "NL,Netherlands",
                              "US,United States"],
    }
    files = {f"seeds/{name}": "\n".join(lines) + "\n" for name, lines in rows.items()}
    files["seeds/_seeds.yml"] = """\
# country_codes is read by other domains. dbt 1.11 lets a seed be public only through config.
seeds:
  - name: country_codes
    description: ISO country codes and names, maintained by hand.
    config:
      access: public
    columns:
      - name: country_code
        data_tests: [unique, not_null]
  - name: raw_orders
    config:
      column_types: {ordered_on: date}
  - name: raw_customers
    config:
      column_types: {signed_up_on: date}
"""
    return files


def staging() -> dict[str, str]:
    files = {}
    for system in SYSTEMS:
        tests = []
        for entity, columns in ENTITIES.items():
            name = f"stg_{system}__{entity}"
            files[f"models/staging/{system}/{name}.sql"] = (
                f"select {columns}, '{system}' as source_system\nfrom {{{{ ref('raw_{entity}') }}}}\n")
            key = columns.split(",")[0]
            block = f"""  - name: {name}
    columns:
      - name: {key}
        data_tests:
          - unique:
              name: staging_key_unique
          - not_null:
              name: staging_key_not_null"""
            if entity == "orders":
                # a relationships test pointing downstream: int_<system>__orders_enriched reads these orders
                block += f"""
          - relationships:
              arguments: {{to: ref('int_{system}__orders_enriched'), field: order_id}}"""
            tests.append(block)
        files[f"models/staging/{system}/_{system}__models.yml"] = (
            "# staging_key_unique / staging_key_not_null: one custom test name, reused on every model\n"
            "models:\n" + "\n".join(tests) + "\n")
    return files


def intermediate() -> dict[str, str]:
    files = {}
    docs = []
    for entity in ENTITIES:
        union = "\nunion all\n".join(f"select * from {{{{ ref('stg_{s}__{entity}') }}}}" for s in SYSTEMS)
        files[f"models/intermediate/int_{entity}__unioned.sql"] = union + "\n"
    for system in SYSTEMS:
        files[f"models/intermediate/{system}/int_{system}__orders_enriched.sql"] = f"""\
select o.order_id, o.customer_id, o.store_id, o.ordered_on, o.status,
       coalesce(sum(i.quantity), 0) as quantity
from {{{{ ref('stg_{system}__orders') }}}} o
left join {{{{ ref('stg_{system}__order_items') }}}} i on i.order_id = o.order_id
group by all
"""
        config = "{{ config(materialized='ephemeral') }}\n" if system in EPHEMERAL_SYSTEMS else ""
        files[f"models/intermediate/{system}/int_{system}__customer_orders.sql"] = f"""{config}\
select c.customer_id, c.customer_name, count(o.order_id) as order_count
from {{{{ ref('stg_{system}__customers') }}}} c
left join {{{{ ref('int_{system}__orders_enriched') }}}} o on o.customer_id = c.customer_id
group by all
"""
        files[f"models/intermediate/{system}/int_{system}__product_sales.sql"] = f"""\
select p.product_id, p.category, coalesce(sum(i.quantity * p.price_cents), 0) as revenue_cents
from {{{{ ref('stg_{system}__products') }}}} p
left join {{{{ ref('stg_{system}__order_items') }}}} i on i.product_id = p.product_id
group by all
"""
        docs.append(f"""  - name: int_{system}__orders_enriched
    columns:
      - name: order_id
        data_tests:
          - unique:
              name: enriched_key_unique""")
    files["models/intermediate/_intermediate.yml"] = "models:\n" + "\n".join(docs) + "\n" + _unit_tests()
    files["models/intermediate/int_orders__eph_base.sql"] = """\
{{ config(materialized='ephemeral') }}
select * from {{ ref('int_orders__unioned') }}
"""
    files["models/intermediate/int_orders__eph_recent.sql"] = """\
{{ config(materialized='ephemeral') }}
select * from {{ ref('int_orders__eph_base') }} where ordered_on >= date '2024-01-01'
"""
    files["models/intermediate/int_orders__completed.sql"] = """\
select order_id, customer_id, store_id, ordered_on
from {{ ref('int_orders__eph_recent') }}
where status = 'completed'
"""
    return files


def _unit_tests() -> str:
    blocks = []
    for system in UNIT_TESTED:
        blocks.append(f"""  - name: ut_{system}_orders_enriched_sums_quantities
    model: int_{system}__orders_enriched
    given:
      - input: ref('stg_{system}__orders')
        rows: [{{order_id: 1, customer_id: 1, store_id: 1, ordered_on: 2024-02-01, status: placed}}]
      - input: ref('stg_{system}__order_items')
        rows: [{{order_id: 1, quantity: 2}}, {{order_id: 1, quantity: 3}}]
    expect:
      rows: [{{order_id: 1, quantity: 5}}]""")
    blocks.append("""  - name: ut_fct_orders_keeps_pos_only
    model: fct_orders
    given:
      - input: ref('int_orders__unioned')
        rows:
          - {order_id: 1, customer_id: 1, store_id: 1, ordered_on: 2024-02-01, status: placed, source_system: pos}
          - {order_id: 2, customer_id: 1, store_id: 1, ordered_on: 2024-02-01, status: placed, source_system: web}
    expect:
      rows: [{order_id: 1, customer_id: 1, store_id: 1, ordered_on: 2024-02-01, status: placed}]""")
    return "unit_tests:\n" + "\n".join(blocks) + "\n"


def marts() -> dict[str, str]:
    files = {}
    for system in SYSTEMS:
        files[f"models/marts/{system}/fct_{system}__sales.sql"] = f"""\
select e.order_id, e.ordered_on, e.quantity, p.amount_cents
from {{{{ ref('int_{system}__orders_enriched') }}}} e
left join {{{{ ref('stg_{system}__payments') }}}} p on p.order_id = e.order_id
"""
        files[f"models/marts/{system}/fct_{system}__customer_value.sql"] = f"""\
select customer_id, customer_name, order_count, order_count * 10 as value_points
from {{{{ ref('int_{system}__customer_orders') }}}}
"""
    unioned_sales = "\nunion all\n".join(
        f"select '{s}' as source_system, order_id, ordered_on, quantity, amount_cents "
        f"from {{{{ ref('fct_{s}__sales') }}}}" for s in SYSTEMS)
    files["models/marts/fct_sales.sql"] = unioned_sales + "\n"
    files["models/marts/fct_orders.sql"] = """\
select o.order_id, o.customer_id, o.store_id, o.ordered_on, o.status
from {{ ref('int_orders__unioned') }} o
where o.source_system = 'pos'
"""
    files["models/marts/fct_order_items.sql"] = """\
select order_item_id, order_id, product_id, quantity
from {{ ref('int_order_items__unioned') }}
where source_system = 'pos'
"""
    files["models/marts/dim_customers_v1.sql"] = """\
select customer_id, customer_name from {{ ref('stg_pos__customers') }}
"""
    files["models/marts/dim_customers_v2.sql"] = """\
select c.customer_id, c.customer_name, c.country_code, k.country_name
from {{ ref('stg_pos__customers') }} c
left join {{ ref('country_codes') }} k using (country_code)
"""
    files["models/marts/dim_products.sql"] = (
        "select product_id, product_name, category from {{ ref('stg_pos__products') }}\n")
    files["models/marts/dim_stores.sql"] = """\
select s.store_id, s.store_name, k.country_name
from {{ ref('stg_pos__stores') }} s left join {{ ref('country_codes') }} k using (country_code)
"""
    files["models/marts/dim_dates.sql"] = """\
-- the installed package retail_kit has a model named dim_dates too
select cast(range as date) as date_day from range(date '2024-01-01', date '2024-03-01', interval 1 day)
"""
    files["models/marts/sales.daily.sql"] = """\
-- a dotted model name: other domains read it as model 'sales.daily'
select ordered_on, sum(quantity) as quantity, sum(amount_cents) as amount_cents
from {{ ref('fct_sales') }} group by ordered_on
"""
    files["models/marts/retail.sql"] = """\
-- named like the project: `dbt build --select retail` would build the whole project
select count(*) as orders, (select count(*) from {{ ref('dim_customers') }}) as customers
from {{ ref('fct_orders') }}
"""
    files["models/marts/mrt_product_revenue.sql"] = "\nunion all\n".join(
        f"select '{s}' as source_system, product_id, revenue_cents from {{{{ ref('int_{s}__product_sales') }}}}"
        for s in SYSTEMS) + "\n"
    files["models/marts/mrt_customer_value.sql"] = "\nunion all\n".join(
        f"select '{s}' as source_system, customer_id, value_points from {{{{ ref('fct_{s}__customer_value') }}}}"
        for s in SYSTEMS[:6]) + "\n"
    files["models/marts/mrt_completed_orders.sql"] = """\
select c.order_id, c.ordered_on, d.country_name
from {{ ref('int_orders__completed') }} c
left join {{ ref('dim_stores') }} d on d.store_id = c.store_id
"""
    files["models/marts/_marts.yml"] = """\
models:
  - name: dim_customers
    description: One row per customer. v2 adds the country.
    access: public
    latest_version: 2
    config:
      meta:
        handoff: {available_by: "04:00"}
    columns:
      - name: customer_id
        data_tests:
          - unique:
              name: mart_key_unique
          - not_null
    versions:
      - v: 1
        columns:
          - include: all
            exclude: [country_code, country_name]
      - v: 2
  - name: fct_orders
    access: public
    config:
      meta:
        handoff: {unit_tests: true}   # this model's unit tests also run in its production task
    columns:
      - name: order_id
        data_tests:
          - unique:
              name: mart_key_unique
      - name: customer_id
        data_tests:
          - relationships:
              arguments: {to: ref('dim_customers'), field: customer_id}
  - name: fct_order_items
    columns:
      - name: order_item_id
        data_tests:
          - unique:
              name: mart_key_unique
      - name: order_id
        data_tests:
          - relationships:
              arguments: {to: ref('fct_orders'), field: order_id}
  - name: dim_products
    columns:
      - name: product_id
        data_tests:
          - unique:
              name: mart_key_unique
  - name: sales.daily
    access: public
    columns:
      - name: ordered_on
        data_tests: [unique]
  - name: retail
    access: public
  - name: dim_stores
    columns:
      - name: store_id
        data_tests:
          - unique:
              name: mart_key_unique
"""
    return files


def snapshots_and_tests() -> dict[str, str]:
    return {
        "snapshots/customers_history.yml": """\
snapshots:
  - name: customers_history
    description: Every change of a customer's country (a YAML snapshot, dbt 1.9+).
    relation: ref('stg_pos__customers')
    config:
      unique_key: customer_id
      strategy: check
      check_cols: [country_code]
""",
        "tests/sales_match_orders.sql": """\
-- three parents: fct_sales, fct_orders and sales.daily (the last of them in the DAG runs it)
select o.order_id
from {{ ref('fct_orders') }} o
left join {{ ref('fct_sales') }} s on s.order_id = o.order_id and s.source_system = 'pos'
where s.order_id is null and exists (select 1 from {{ ref('sales.daily') }})
""",
        "tests/completed_orders_have_stores.sql": """\
select c.order_id from {{ ref('int_orders__completed') }} c
left join {{ ref('dim_stores') }} s on s.store_id = c.store_id
where s.store_id is null
""",
    }


def files() -> dict[str, str]:
    found: dict[str, str] = {}
    for part in (seeds(), staging(), intermediate(), marts(), snapshots_and_tests()):
        found.update(part)
    return found


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="fail if the committed project differs")
    args = parser.parse_args(argv)
    wanted = files()
    generated_dirs = ("seeds", "models", "snapshots", "tests")
    existing = {str(p.relative_to(ROOT)) for d in generated_dirs for p in (ROOT / d).rglob("*") if p.is_file()}
    stale = sorted(existing - set(wanted))
    changed = sorted(path for path, text in wanted.items()
                     if not (ROOT / path).is_file() or (ROOT / path).read_text("utf-8") != text)
    if args.check:
        for path in stale + changed:
            print(f"differs: {path}", file=sys.stderr)
        return 1 if stale or changed else 0
    for path in stale:
        (ROOT / path).unlink()
    for path in changed:
        (ROOT / path).parent.mkdir(parents=True, exist_ok=True)
        (ROOT / path).write_text(wanted[path], "utf-8")
    models = sum(1 for p in wanted if p.startswith("models/") and p.endswith(".sql"))
    print(f"retail: {models} model files, {len(changed)} written, {len(stale)} removed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
