{{ config(materialized='ephemeral') }}
select * from {{ ref('int_orders__eph_base') }} where ordered_on >= date '2024-01-01'
