select m.customer_id as account_id, m.customer_name, count(o.order_id) as orders
from {{ source('orbit', 'my_model') }} m
left join {{ source('orbit', 'orders') }} o on o.customer_id = m.customer_id
group by all
