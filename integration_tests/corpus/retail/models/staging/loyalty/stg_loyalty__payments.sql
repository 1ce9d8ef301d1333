select payment_id, order_id, amount_cents, method, 'loyalty' as source_system
from {{ ref('raw_payments') }}
