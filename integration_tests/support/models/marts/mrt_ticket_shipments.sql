{{ handoff_examples.inject_faults() }}
select
    t.ticket_id,
    t.topic,
    s.shipment_id,
    s.carrier,
    s.delivery_days
from {{ ref('stg_tickets') }} as t
join {{ ref('int_late_shipments') }} as s using (order_id)
