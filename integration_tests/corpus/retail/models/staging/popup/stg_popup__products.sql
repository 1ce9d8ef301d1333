select product_id, product_name, category, price_cents, 'popup' as source_system
from {{ ref('raw_products') }}
