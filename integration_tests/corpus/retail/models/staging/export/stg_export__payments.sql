select payment_id, order_id, amount_cents, method, 'export' as source_system
from {{ ref('raw_payments') }}
