select store_id, store_name, country_code, 'partner' as source_system
from {{ ref('raw_stores') }}
