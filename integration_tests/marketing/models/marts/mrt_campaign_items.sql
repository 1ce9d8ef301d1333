{{ handoff_examples.inject_faults() }}
select
    campaigns.campaign_id,
    campaigns.started_on,
    items.title as item_title,
    items.category as item_category,
    campaigns.spend_cents
from {{ ref('stg_campaigns') }} as campaigns
join {{ source('marketplace', 'mrt_items') }} as items using (item_id)
