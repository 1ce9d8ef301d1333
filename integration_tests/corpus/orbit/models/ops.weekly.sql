-- a dotted name: other domains name it as model 'ops.weekly'
select d.ordered_on, d.quantity, t.target_orders
from {{ source('retail', 'sales_daily') }} d
cross join (select sum(target_orders) as target_orders from {{ ref('orbit_targets') }}) t
