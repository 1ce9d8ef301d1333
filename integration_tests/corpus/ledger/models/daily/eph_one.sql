{{ config(materialized='ephemeral') }}
select * from {{ ref('accounts') }}
