-- a name with a space (project flag require_resource_names_without_spaces: false)
select customer_id, customer_name, country_name from {{ source('retail', 'dim_customers') }}
