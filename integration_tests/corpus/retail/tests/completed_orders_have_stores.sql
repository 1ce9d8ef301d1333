select c.order_id from {{ ref('int_orders__completed') }} c
left join {{ ref('dim_stores') }} s on s.store_id = c.store_id
where s.store_id is null
