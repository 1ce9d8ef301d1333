select order_item_id, order_id, product_id, quantity
from {{ ref('int_order_items__unioned') }}
where source_system = 'pos'
