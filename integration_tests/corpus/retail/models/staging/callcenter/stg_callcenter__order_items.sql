select order_item_id, order_id, product_id, quantity, 'callcenter' as source_system
from {{ ref('raw_order_items') }}
