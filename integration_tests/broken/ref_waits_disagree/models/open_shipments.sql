select * from {{ ref('shipping', 'shipments') }} where delivered_at is null
