{{ handoff_examples.inject_faults() }}
select
    order_id,
    ordered_at,
    amount_cents
from {{ source('marketplace', 'mrt_orders') }}
