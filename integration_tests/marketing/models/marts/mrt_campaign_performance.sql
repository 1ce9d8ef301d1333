{{ handoff_examples.inject_faults() }}
select
    campaigns.campaign_id,
    campaigns.started_on,
    campaigns.spend_cents,
    revenue.revenue_eur_cents as revenue_on_start_day_eur_cents
from {{ ref('mrt_campaign_items') }} as campaigns
left join {{ source('finance', 'revenue') }} as revenue
    on revenue.revenue_date = campaigns.started_on
