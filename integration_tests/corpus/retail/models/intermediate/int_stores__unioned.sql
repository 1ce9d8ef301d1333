select * from {{ ref('stg_pos__stores') }}
union all
select * from {{ ref('stg_web__stores') }}
union all
select * from {{ ref('stg_app__stores') }}
union all
select * from {{ ref('stg_crm__stores') }}
union all
select * from {{ ref('stg_erp__stores') }}
union all
select * from {{ ref('stg_kiosk__stores') }}
union all
select * from {{ ref('stg_outlet__stores') }}
union all
select * from {{ ref('stg_wholesale__stores') }}
union all
select * from {{ ref('stg_partner__stores') }}
union all
select * from {{ ref('stg_catalog__stores') }}
union all
select * from {{ ref('stg_b2b__stores') }}
union all
select * from {{ ref('stg_marketplace__stores') }}
union all
select * from {{ ref('stg_popup__stores') }}
union all
select * from {{ ref('stg_callcenter__stores') }}
union all
select * from {{ ref('stg_franchise__stores') }}
union all
select * from {{ ref('stg_export__stores') }}
union all
select * from {{ ref('stg_loyalty__stores') }}
union all
select * from {{ ref('stg_subscription__stores') }}
