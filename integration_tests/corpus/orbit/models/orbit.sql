-- named like the project: `dbt build --select orbit` builds the whole project
select count(*) as orders, sum(weight) as weight from {{ ref('orders') }}
