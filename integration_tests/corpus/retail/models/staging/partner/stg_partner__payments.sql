select payment_id, order_id, amount_cents, method, 'partner' as source_system
from {{ ref('raw_payments') }}
