select o.order_id, c.country_name from {{ ref('orders') }} o
join {{ ref('my model') }} c on c.customer_id = o.customer_id
