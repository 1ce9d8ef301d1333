select payment_id, order_id, amount_cents, method, 'b2b' as source_system
from {{ ref('raw_payments') }}
