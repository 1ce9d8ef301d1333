{{ handoff_examples.inject_faults() }}
select
    currency,
    rate_date,
    eur_per_unit
from {{ ref('raw_fx_rates') }}
