select store_id, store_name, country_code, 'marketplace' as source_system
from {{ ref('raw_stores') }}
