{{ handoff_examples.inject_faults() }}
select
    order_id,
    item_id,
    quantity,
    ordered_at,
    status
from {{ ref('raw_orders') }}
