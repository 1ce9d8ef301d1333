select customer_id, customer_name, order_count, order_count * 10 as value_points
from {{ ref('int_subscription__customer_orders') }}
