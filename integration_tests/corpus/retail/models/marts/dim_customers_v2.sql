select c.customer_id, c.customer_name, c.country_code, k.country_name
from {{ ref('stg_pos__customers') }} c
left join {{ ref('country_codes') }} k using (country_code)
