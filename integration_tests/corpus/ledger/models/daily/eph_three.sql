{{ config(materialized='ephemeral') }}
select e.*, f.eur_rate from {{ ref('eph_two') }} e cross join {{ ref('ledger_fx') }} f where f.currency = 'EUR'
