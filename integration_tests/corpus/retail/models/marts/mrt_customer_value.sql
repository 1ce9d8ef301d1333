select 'pos' as source_system, customer_id, value_points from {{ ref('fct_pos__customer_value') }}
union all
select 'web' as source_system, customer_id, value_points from {{ ref('fct_web__customer_value') }}
union all
select 'app' as source_system, customer_id, value_points from {{ ref('fct_app__customer_value') }}
union all
select 'crm' as source_system, customer_id, value_points from {{ ref('fct_crm__customer_value') }}
union all
select 'erp' as source_system, customer_id, value_points from {{ ref('fct_erp__customer_value') }}
union all
select 'kiosk' as source_system, customer_id, value_points from {{ ref('fct_kiosk__customer_value') }}
