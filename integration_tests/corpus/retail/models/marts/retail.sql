-- named like the project: `dbt build --select retail` would build the whole project
select count(*) as orders, (select count(*) from {{ ref('dim_customers') }}) as customers
from {{ ref('fct_orders') }}
