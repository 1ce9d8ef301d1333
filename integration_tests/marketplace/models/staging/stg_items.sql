{{ handoff_examples.inject_faults() }}
select
    item_id,
    title,
    category,
    price_cents,
    listed_on
from {{ ref('raw_items') }}
