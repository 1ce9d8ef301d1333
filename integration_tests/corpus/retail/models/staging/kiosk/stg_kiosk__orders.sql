select order_id, customer_id, store_id, ordered_on, status, 'kiosk' as source_system
from {{ ref('raw_orders') }}
