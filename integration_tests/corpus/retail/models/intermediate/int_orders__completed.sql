select order_id, customer_id, store_id, ordered_on
from {{ ref('int_orders__eph_recent') }}
where status = 'completed'
