select o.order_id, o.customer_id, o.store_id, o.ordered_on, o.status
from {{ ref('int_orders__unioned') }} o
where o.source_system = 'pos'
