select e.order_id, e.ordered_on, e.quantity, p.amount_cents
from {{ ref('int_wholesale__orders_enriched') }} e
left join {{ ref('stg_wholesale__payments') }} p on p.order_id = e.order_id
