-- a pinned version is another upstream (shipping.shipments_v1): its own wait is no disagreement
select * from {{ ref('shipping', 'shipments', v=1) }}
