select customer_id, customer_name, country_code, signed_up_on, 'app' as source_system
from {{ ref('raw_customers') }}
