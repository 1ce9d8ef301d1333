select * from {{ ref('chain_a') }} where country_name is not null
