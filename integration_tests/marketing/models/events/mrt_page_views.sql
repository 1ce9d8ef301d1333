-- Page views, built in daily batches of event time (dbt microbatch). handoff passes each run's
-- data interval as --event-time-start/--event-time-end, so a run (or a backfill of a past date)
-- rebuilds exactly its interval's batch. built_by_run records which run wrote a row.
{{ config(materialized='incremental', incremental_strategy='microbatch', event_time='viewed_at',
          batch_size='day', begin='2024-03-01', lookback=0) }}
{{ handoff_examples.inject_faults() }}
select
    view_id,
    page,
    viewed_at,
    '{{ var("handoff_run_id", "outside handoff") }}' as built_by_run
from {{ ref('raw_page_views') }}
