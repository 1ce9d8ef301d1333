-- ref('balances') without a version: dbt builds against the latest version (v2); the hourly DAG
-- waits on the daily DAG's balances_v2 task
select account_id, balance, version_built from {{ ref('balances') }}
