{{ handoff_examples.inject_faults() }}
select
    campaign_id,
    item_id,
    started_on,
    spend_cents
from {{ ref('raw_campaigns') }}
