select * from {{ ref('stg_pos__order_items') }}
union all
select * from {{ ref('stg_web__order_items') }}
union all
select * from {{ ref('stg_app__order_items') }}
union all
select * from {{ ref('stg_crm__order_items') }}
union all
select * from {{ ref('stg_erp__order_items') }}
union all
select * from {{ ref('stg_kiosk__order_items') }}
union all
select * from {{ ref('stg_outlet__order_items') }}
union all
select * from {{ ref('stg_wholesale__order_items') }}
union all
select * from {{ ref('stg_partner__order_items') }}
union all
select * from {{ ref('stg_catalog__order_items') }}
union all
select * from {{ ref('stg_b2b__order_items') }}
union all
select * from {{ ref('stg_marketplace__order_items') }}
union all
select * from {{ ref('stg_popup__order_items') }}
union all
select * from {{ ref('stg_callcenter__order_items') }}
union all
select * from {{ ref('stg_franchise__order_items') }}
union all
select * from {{ ref('stg_export__order_items') }}
union all
select * from {{ ref('stg_loyalty__order_items') }}
union all
select * from {{ ref('stg_subscription__order_items') }}
