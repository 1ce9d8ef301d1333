select store_id, store_name, country_code, 'popup' as source_system
from {{ ref('raw_stores') }}
