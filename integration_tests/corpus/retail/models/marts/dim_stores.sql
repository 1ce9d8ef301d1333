select s.store_id, s.store_name, k.country_name
from {{ ref('stg_pos__stores') }} s left join {{ ref('country_codes') }} k using (country_code)
