select 1 as order_id, 'from the package' as origin
