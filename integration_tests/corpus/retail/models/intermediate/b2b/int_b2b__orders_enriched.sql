select o.order_id, o.customer_id, o.store_id, o.ordered_on, o.status,
       coalesce(sum(i.quantity), 0) as quantity
from {{ ref('stg_b2b__orders') }} o
left join {{ ref('stg_b2b__order_items') }} i on i.order_id = o.order_id
group by all
