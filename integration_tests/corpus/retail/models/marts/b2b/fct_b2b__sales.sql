select e.order_id, e.ordered_on, e.quantity, p.amount_cents
from {{ ref('int_b2b__orders_enriched') }} e
left join {{ ref('stg_b2b__payments') }} p on p.order_id = e.order_id
