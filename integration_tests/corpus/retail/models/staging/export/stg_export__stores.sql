select store_id, store_name, country_code, 'export' as source_system
from {{ ref('raw_stores') }}
