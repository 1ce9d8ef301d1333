{{ config(materialized='ephemeral') }}
-- unpinned: the latest version of shipping's shipments (v2), the one that has delivery_days
select
    shipment_id,
    order_id,
    carrier,
    delivery_days
from {{ ref('shipping', 'shipments') }}
where delivery_days is null or delivery_days > 2
