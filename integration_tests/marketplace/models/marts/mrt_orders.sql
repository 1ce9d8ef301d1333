{{ handoff_examples.inject_faults() }}
select
    order_id,
    item_id,
    quantity,
    ordered_at,
    amount_cents
from {{ ref('int_orders') }}
where status = 'completed'
