{{ handoff_examples.inject_faults() }}
-- pinned: version 1 of shipping's shipments, whatever its latest version
select
    p.carrier,
    count(t.ticket_id) as complaints,
    max(p.avg_delivery_days) as avg_delivery_days
from {{ ref('shipping', 'carrier_performance') }} as p
left join {{ ref('shipping', 'shipments', v=1) }} as s on s.carrier = p.carrier
left join {{ ref('stg_tickets') }} as t on t.order_id = s.order_id
group by p.carrier
