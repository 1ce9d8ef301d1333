{# Project hooks. on-run-start creates a DuckDB macro the models call (like a UDF); on-run-end
   records which schemas the run built. handoff runs them once per DAG run (docs/plan.md, hooks). #}
{% macro orbit_create_functions() %}
  create schema if not exists {{ target.schema }};
  create or replace macro orbit_double(x) as x * 2;
  create table if not exists {{ target.schema }}.orbit_hook_log (hook varchar, schemas varchar, ran_at timestamp);
  insert into {{ target.schema }}.orbit_hook_log values ('on-run-start', null, now());
{% endmacro %}

{% macro orbit_record_run(schemas) %}
  insert into {{ target.schema }}.orbit_hook_log values ('on-run-end', '{{ schemas | sort | join(",") }}', now());
{% endmacro %}
