{{ handoff_examples.inject_faults() }}
select
    orders.order_id,
    orders.item_id,
    orders.quantity,
    orders.ordered_at,
    orders.status,
    cast(orders.quantity * items.price_cents as bigint) as amount_cents
from {{ ref('stg_orders') }} as orders
join {{ ref('stg_items') }} as items using (item_id)
