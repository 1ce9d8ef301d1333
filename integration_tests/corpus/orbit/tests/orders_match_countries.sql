-- three parents (orders, countries, my model): runs in the task of the last of them
select o.order_id from {{ ref('orders') }} o
join {{ ref('my model') }} m on m.customer_id = o.customer_id
left join {{ ref('countries') }} c on c.country_name = m.country_name
where c.country_code is null and m.country_name is not null
