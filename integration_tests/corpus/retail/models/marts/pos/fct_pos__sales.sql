select e.order_id, e.ordered_on, e.quantity, p.amount_cents
from {{ ref('int_pos__orders_enriched') }} e
left join {{ ref('stg_pos__payments') }} p on p.order_id = e.order_id
