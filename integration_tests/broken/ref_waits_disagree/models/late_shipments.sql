select * from {{ ref('shipping', 'shipments') }} where delivery_days > 2
