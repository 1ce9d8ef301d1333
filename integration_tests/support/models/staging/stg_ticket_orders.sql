{{ handoff_examples.inject_faults() }}
select
    t.ticket_id,
    t.topic,
    o.ordered_at,
    o.amount_cents
from {{ ref('stg_tickets') }} as t
join {{ source('marketplace', 'mrt_orders') }} as o using (order_id)
