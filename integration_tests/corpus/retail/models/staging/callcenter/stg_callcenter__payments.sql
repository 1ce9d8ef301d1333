select payment_id, order_id, amount_cents, method, 'callcenter' as source_system
from {{ ref('raw_payments') }}
