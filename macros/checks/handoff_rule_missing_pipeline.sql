{#- HO202: a model, seed or snapshot without handoff_pipeline; ephemeral models never run as a
    task, so they are exempt. -#}
{% macro handoff_rule_missing_pipeline(node) -%}
  {%- if node['meta'].get('handoff_pipeline') is none and node['materialized'] != 'ephemeral' -%}
    {{ return([handoff.handoff_violation('HO202', node, 'handoff_pipeline',
         'no pipeline: set +meta: {handoff_pipeline: {name, schedule}} in dbt_project.yml'
         ~ ' for the project or this folder')]) }}
  {%- endif -%}
  {{ return([]) }}
{%- endmacro %}
