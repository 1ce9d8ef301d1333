{{ handoff_examples.inject_faults() }}
select
    page,
    date_trunc('hour', viewed_at) as hour,
    count(*) as views
from {{ ref('stg_web_events') }}
group by all
