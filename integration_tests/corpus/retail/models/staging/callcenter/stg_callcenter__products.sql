select product_id, product_name, category, price_cents, 'callcenter' as source_system
from {{ ref('raw_products') }}
