{{ handoff_examples.inject_faults() }}
select
    shipment_id,
    order_id,
    carrier,
    shipped_at,
    delivered_at
from {{ ref('stg_shipments') }}
