select * from {{ source('sales_marts', 'orders_mart') }}
