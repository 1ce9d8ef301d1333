select payment_id, order_id, amount_cents, method, 'subscription' as source_system
from {{ ref('raw_payments') }}
