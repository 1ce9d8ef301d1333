-- normalises to the same task id as `my model`: that one gets a suffix (docs/plan.md)
select customer_id, customer_name from {{ source('retail', 'dim_customers_v1') }}
