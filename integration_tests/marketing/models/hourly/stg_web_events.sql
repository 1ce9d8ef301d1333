{{ handoff_examples.inject_faults() }}
-- Generated page views: the hourly pipeline needs no seed and no other pipeline.
select
    range as event_id,
    'page-' || (range % 4) as page,
    timestamp '2024-02-01 00:00:00' + to_minutes(cast(range * 7 as bigint)) as viewed_at
from range(40)
