select store_id, store_name, country_code, 'web' as source_system
from {{ ref('raw_stores') }}
