-- the end of an ephemeral chain: orders + my model -> chain_a -> chain_b -> here
select country_name, count(*) as orders from {{ ref('chain_b') }} group by country_name
