select store_id, store_name, country_code, 'outlet' as source_system
from {{ ref('raw_stores') }}
