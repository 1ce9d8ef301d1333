-- Views per day, an incremental model that filters its input by the run's data interval itself
-- (handoff's dbt vars) and replaces exactly the days it rebuilt (delete+insert on view_day).
{{ config(materialized='incremental', incremental_strategy='delete+insert', unique_key='view_day') }}
{{ handoff_examples.inject_faults() }}
select
    cast(viewed_at as date) as view_day,
    count(*) as views,
    '{{ var("handoff_run_id", "outside handoff") }}' as built_by_run
from {{ ref('raw_page_views') }}
where viewed_at >= '{{ var("handoff_data_interval_start", "1970-01-01T00:00:00+00:00") }}'
  and viewed_at < '{{ var("handoff_data_interval_end", "9999-01-01T00:00:00+00:00") }}'
group by 1
