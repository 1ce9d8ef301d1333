{{ handoff_examples.inject_faults() }}
select
    ticket_id,
    order_id,
    opened_at,
    topic
from {{ ref('raw_tickets') }}
