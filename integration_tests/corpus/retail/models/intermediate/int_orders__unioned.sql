select * from {{ ref('stg_pos__orders') }}
union all
select * from {{ ref('stg_web__orders') }}
union all
select * from {{ ref('stg_app__orders') }}
union all
select * from {{ ref('stg_crm__orders') }}
union all
select * from {{ ref('stg_erp__orders') }}
union all
select * from {{ ref('stg_kiosk__orders') }}
union all
select * from {{ ref('stg_outlet__orders') }}
union all
select * from {{ ref('stg_wholesale__orders') }}
union all
select * from {{ ref('stg_partner__orders') }}
union all
select * from {{ ref('stg_catalog__orders') }}
union all
select * from {{ ref('stg_b2b__orders') }}
union all
select * from {{ ref('stg_marketplace__orders') }}
union all
select * from {{ ref('stg_popup__orders') }}
union all
select * from {{ ref('stg_callcenter__orders') }}
union all
select * from {{ ref('stg_franchise__orders') }}
union all
select * from {{ ref('stg_export__orders') }}
union all
select * from {{ ref('stg_loyalty__orders') }}
union all
select * from {{ ref('stg_subscription__orders') }}
