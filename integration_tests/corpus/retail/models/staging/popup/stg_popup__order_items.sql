select order_item_id, order_id, product_id, quantity, 'popup' as source_system
from {{ ref('raw_order_items') }}
