-- three parents: fct_sales, fct_orders and sales.daily (the last of them in the DAG runs it)
select o.order_id
from {{ ref('fct_orders') }} o
left join {{ ref('fct_sales') }} s on s.order_id = o.order_id and s.source_system = 'pos'
where s.order_id is null and exists (select 1 from {{ ref('sales.daily') }})
