select store_id, store_name, country_code, 'callcenter' as source_system
from {{ ref('raw_stores') }}
