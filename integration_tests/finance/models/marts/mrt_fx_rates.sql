{{ handoff_examples.inject_faults() }}
select
    currency,
    max(rate_date) as latest_rate_date,
    arg_max(eur_per_unit, rate_date) as latest_eur_per_unit
from {{ ref('stg_fx_rates') }}
group by currency
