{{ config(materialized='ephemeral') }}
select * from {{ ref('eph_one') }} where orders >= 0
