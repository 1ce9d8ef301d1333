select store_id, store_name, country_code, 'b2b' as source_system
from {{ ref('raw_stores') }}
