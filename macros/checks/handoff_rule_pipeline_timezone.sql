{#- HO209: a pipeline timezone the timezone database does not know (it matched the schema's
    Area/Location pattern). Reported once, on the first node (by unique_id) of the pipeline: `seen`
    is the map handoff_rule_pipeline_schedule fills. dbt's pytz and Python's tzdata both carry the
    IANA database. -#}
{% macro handoff_rule_pipeline_timezone(node, seen) -%}
  {%- set pipeline = node['meta'].get('handoff_pipeline') -%}
  {%- if pipeline is none or node['materialized'] == 'ephemeral' -%}{{ return([]) }}{%- endif -%}
  {%- if seen[pipeline['name']]['unique_id'] != node['unique_id'] -%}{{ return([]) }}{%- endif -%}
  {%- set name = pipeline.get('timezone', 'UTC') -%}
  {%- if name == 'UTC' or name in modules.pytz.all_timezones_set -%}{{ return([]) }}{%- endif -%}
  {{ return([handoff.handoff_violation('HO209', node, 'handoff_pipeline.timezone',
       "timezone '" ~ name ~ "' is not in the timezone database: write an IANA name such as "
       ~ 'Europe/Berlin, America/New_York or UTC')]) }}
{%- endmacro %}
