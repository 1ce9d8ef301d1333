select payment_id, order_id, amount_cents, method, 'crm' as source_system
from {{ ref('raw_payments') }}
