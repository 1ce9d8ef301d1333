{{ config(enabled=false) }}
-- disabled: dbt builds nothing for it, handoff schedules nothing
select 1 as id
