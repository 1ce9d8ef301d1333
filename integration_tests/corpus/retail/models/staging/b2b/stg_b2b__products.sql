select product_id, product_name, category, price_cents, 'b2b' as source_system
from {{ ref('raw_products') }}
