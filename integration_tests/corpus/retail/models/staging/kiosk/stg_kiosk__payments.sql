select payment_id, order_id, amount_cents, method, 'kiosk' as source_system
from {{ ref('raw_payments') }}
