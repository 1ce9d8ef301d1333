{# Project hooks. on-run-start creates a DuckDB macro the models call (like a UDF); on-run-end
   records which schemas the run built. handoff runs them once per DAG run (docs/plan.md, hooks), with
   the run's data interval in the same dbt vars as the models (docs/plan.md). #}
{% macro orbit_create_functions() %}
  create schema if not exists {{ target.schema }};
  create or replace macro orbit_double(x) as x * 2;
  create table if not exists {{ target.schema }}.orbit_hook_log (hook varchar, schemas varchar, ran_at timestamp,
    interval_start varchar, interval_end varchar);
  insert into {{ target.schema }}.orbit_hook_log values ('on-run-start', null, now(),
    '{{ var("handoff_data_interval_start", "none") }}', '{{ var("handoff_data_interval_end", "none") }}');
{% endmacro %}

{% macro orbit_record_run(schemas) %}
  insert into {{ target.schema }}.orbit_hook_log values ('on-run-end', '{{ schemas | sort | join(",") }}', now(),
    '{{ var("handoff_data_interval_start", "none") }}', '{{ var("handoff_data_interval_end", "none") }}');
{% endmacro %}
