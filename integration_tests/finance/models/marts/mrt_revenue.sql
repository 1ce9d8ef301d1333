{{ handoff_examples.inject_faults() }}
select
    orders.ordered_at as revenue_date,
    sum(orders.amount_cents) as revenue_eur_cents,
    cast(round(sum(orders.amount_cents) / max(usd.eur_per_unit)) as bigint) as revenue_usd_cents
from {{ ref('stg_marketplace_orders') }} as orders
left join {{ ref('stg_fx_rates') }} as usd
    on usd.currency = 'USD' and usd.rate_date = orders.ordered_at
group by orders.ordered_at
