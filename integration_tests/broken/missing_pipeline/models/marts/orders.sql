select * from {{ ref('eph_orders') }}
