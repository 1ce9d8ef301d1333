{{ handoff_examples.inject_faults() }}
select
    shipment_id,
    order_id,
    carrier,
    shipped_at,
    delivered_at,
    cast(delivered_at - shipped_at as integer) as delivery_days
from {{ ref('stg_shipments') }}
