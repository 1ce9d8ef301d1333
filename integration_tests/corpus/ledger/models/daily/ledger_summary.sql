-- the end of a three-deep ephemeral chain, and orbit's models named with a dot and like their project
select (select count(*) from {{ ref('eph_three') }}) as accounts,
       (select count(*) from {{ source('orbit', 'ops_weekly') }}) as weeks,
       (select max(orders) from {{ source('orbit', 'orbit') }}) as orbit_orders,
       (select sum(target_orders) from {{ source('orbit', 'orbit_targets') }}) as targets
