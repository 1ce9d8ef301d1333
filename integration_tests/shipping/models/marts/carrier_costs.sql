{{ handoff_examples.inject_faults() }}
select
    carrier,
    sum(cost_cents) as cost_cents
from {{ ref('stg_shipments') }}
group by carrier
