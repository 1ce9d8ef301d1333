{{ config(materialized='ephemeral') }}
select * from {{ ref('int_orders__unioned') }}
