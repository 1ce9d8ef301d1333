select * from {{ ref('stg_pos__payments') }}
union all
select * from {{ ref('stg_web__payments') }}
union all
select * from {{ ref('stg_app__payments') }}
union all
select * from {{ ref('stg_crm__payments') }}
union all
select * from {{ ref('stg_erp__payments') }}
union all
select * from {{ ref('stg_kiosk__payments') }}
union all
select * from {{ ref('stg_outlet__payments') }}
union all
select * from {{ ref('stg_wholesale__payments') }}
union all
select * from {{ ref('stg_partner__payments') }}
union all
select * from {{ ref('stg_catalog__payments') }}
union all
select * from {{ ref('stg_b2b__payments') }}
union all
select * from {{ ref('stg_marketplace__payments') }}
union all
select * from {{ ref('stg_popup__payments') }}
union all
select * from {{ ref('stg_callcenter__payments') }}
union all
select * from {{ ref('stg_franchise__payments') }}
union all
select * from {{ ref('stg_export__payments') }}
union all
select * from {{ ref('stg_loyalty__payments') }}
union all
select * from {{ ref('stg_subscription__payments') }}
