select * from {{ ref('stg_pos__customers') }}
union all
select * from {{ ref('stg_web__customers') }}
union all
select * from {{ ref('stg_app__customers') }}
union all
select * from {{ ref('stg_crm__customers') }}
union all
select * from {{ ref('stg_erp__customers') }}
union all
select * from {{ ref('stg_kiosk__customers') }}
union all
select * from {{ ref('stg_outlet__customers') }}
union all
select * from {{ ref('stg_wholesale__customers') }}
union all
select * from {{ ref('stg_partner__customers') }}
union all
select * from {{ ref('stg_catalog__customers') }}
union all
select * from {{ ref('stg_b2b__customers') }}
union all
select * from {{ ref('stg_marketplace__customers') }}
union all
select * from {{ ref('stg_popup__customers') }}
union all
select * from {{ ref('stg_callcenter__customers') }}
union all
select * from {{ ref('stg_franchise__customers') }}
union all
select * from {{ ref('stg_export__customers') }}
union all
select * from {{ ref('stg_loyalty__customers') }}
union all
select * from {{ ref('stg_subscription__customers') }}
