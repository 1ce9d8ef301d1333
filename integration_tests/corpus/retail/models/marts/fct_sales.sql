select 'pos' as source_system, order_id, ordered_on, quantity, amount_cents from {{ ref('fct_pos__sales') }}
union all
select 'web' as source_system, order_id, ordered_on, quantity, amount_cents from {{ ref('fct_web__sales') }}
union all
select 'app' as source_system, order_id, ordered_on, quantity, amount_cents from {{ ref('fct_app__sales') }}
union all
select 'crm' as source_system, order_id, ordered_on, quantity, amount_cents from {{ ref('fct_crm__sales') }}
union all
select 'erp' as source_system, order_id, ordered_on, quantity, amount_cents from {{ ref('fct_erp__sales') }}
union all
select 'kiosk' as source_system, order_id, ordered_on, quantity, amount_cents from {{ ref('fct_kiosk__sales') }}
union all
select 'outlet' as source_system, order_id, ordered_on, quantity, amount_cents from {{ ref('fct_outlet__sales') }}
union all
select 'wholesale' as source_system, order_id, ordered_on, quantity, amount_cents from {{ ref('fct_wholesale__sales') }}
union all
select 'partner' as source_system, order_id, ordered_on, quantity, amount_cents from {{ ref('fct_partner__sales') }}
union all
select 'catalog' as source_system, order_id, ordered_on, quantity, amount_cents from {{ ref('fct_catalog__sales') }}
union all
select 'b2b' as source_system, order_id, ordered_on, quantity, amount_cents from {{ ref('fct_b2b__sales') }}
union all
select 'marketplace' as source_system, order_id, ordered_on, quantity, amount_cents from {{ ref('fct_marketplace__sales') }}
union all
select 'popup' as source_system, order_id, ordered_on, quantity, amount_cents from {{ ref('fct_popup__sales') }}
union all
select 'callcenter' as source_system, order_id, ordered_on, quantity, amount_cents from {{ ref('fct_callcenter__sales') }}
union all
select 'franchise' as source_system, order_id, ordered_on, quantity, amount_cents from {{ ref('fct_franchise__sales') }}
union all
select 'export' as source_system, order_id, ordered_on, quantity, amount_cents from {{ ref('fct_export__sales') }}
union all
select 'loyalty' as source_system, order_id, ordered_on, quantity, amount_cents from {{ ref('fct_loyalty__sales') }}
union all
select 'subscription' as source_system, order_id, ordered_on, quantity, amount_cents from {{ ref('fct_subscription__sales') }}
