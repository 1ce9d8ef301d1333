{{ handoff_examples.inject_faults() }}
select
    item_id,
    title,
    category,
    price_cents
from {{ ref('stg_items') }}
