select 'pos' as source_system, product_id, revenue_cents from {{ ref('int_pos__product_sales') }}
union all
select 'web' as source_system, product_id, revenue_cents from {{ ref('int_web__product_sales') }}
union all
select 'app' as source_system, product_id, revenue_cents from {{ ref('int_app__product_sales') }}
union all
select 'crm' as source_system, product_id, revenue_cents from {{ ref('int_crm__product_sales') }}
union all
select 'erp' as source_system, product_id, revenue_cents from {{ ref('int_erp__product_sales') }}
union all
select 'kiosk' as source_system, product_id, revenue_cents from {{ ref('int_kiosk__product_sales') }}
union all
select 'outlet' as source_system, product_id, revenue_cents from {{ ref('int_outlet__product_sales') }}
union all
select 'wholesale' as source_system, product_id, revenue_cents from {{ ref('int_wholesale__product_sales') }}
union all
select 'partner' as source_system, product_id, revenue_cents from {{ ref('int_partner__product_sales') }}
union all
select 'catalog' as source_system, product_id, revenue_cents from {{ ref('int_catalog__product_sales') }}
union all
select 'b2b' as source_system, product_id, revenue_cents from {{ ref('int_b2b__product_sales') }}
union all
select 'marketplace' as source_system, product_id, revenue_cents from {{ ref('int_marketplace__product_sales') }}
union all
select 'popup' as source_system, product_id, revenue_cents from {{ ref('int_popup__product_sales') }}
union all
select 'callcenter' as source_system, product_id, revenue_cents from {{ ref('int_callcenter__product_sales') }}
union all
select 'franchise' as source_system, product_id, revenue_cents from {{ ref('int_franchise__product_sales') }}
union all
select 'export' as source_system, product_id, revenue_cents from {{ ref('int_export__product_sales') }}
union all
select 'loyalty' as source_system, product_id, revenue_cents from {{ ref('int_loyalty__product_sales') }}
union all
select 'subscription' as source_system, product_id, revenue_cents from {{ ref('int_subscription__product_sales') }}
