{{ handoff_examples.inject_faults() }}
select
    carrier,
    count(*) as shipments,
    count(delivered_at) as delivered,
    avg(delivery_days) as avg_delivery_days
from {{ ref('shipments', v=2) }}
group by carrier
