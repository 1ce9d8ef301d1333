select c.order_id, c.ordered_on, d.country_name
from {{ ref('int_orders__completed') }} c
left join {{ ref('dim_stores') }} d on d.store_id = c.store_id
