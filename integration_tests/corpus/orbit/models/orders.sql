-- named like the installed package's model orbit_kit.orders
select order_id, customer_id, ordered_on, orbit_double(1) as weight
from {{ source('retail', 'fct_orders') }}
