select c.customer_id, c.customer_name, count(o.order_id) as order_count
from {{ ref('stg_app__customers') }} c
left join {{ ref('int_app__orders_enriched') }} o on o.customer_id = c.customer_id
group by all
