select * from {{ ref('stg_pos__products') }}
union all
select * from {{ ref('stg_web__products') }}
union all
select * from {{ ref('stg_app__products') }}
union all
select * from {{ ref('stg_crm__products') }}
union all
select * from {{ ref('stg_erp__products') }}
union all
select * from {{ ref('stg_kiosk__products') }}
union all
select * from {{ ref('stg_outlet__products') }}
union all
select * from {{ ref('stg_wholesale__products') }}
union all
select * from {{ ref('stg_partner__products') }}
union all
select * from {{ ref('stg_catalog__products') }}
union all
select * from {{ ref('stg_b2b__products') }}
union all
select * from {{ ref('stg_marketplace__products') }}
union all
select * from {{ ref('stg_popup__products') }}
union all
select * from {{ ref('stg_callcenter__products') }}
union all
select * from {{ ref('stg_franchise__products') }}
union all
select * from {{ ref('stg_export__products') }}
union all
select * from {{ ref('stg_loyalty__products') }}
union all
select * from {{ ref('stg_subscription__products') }}
