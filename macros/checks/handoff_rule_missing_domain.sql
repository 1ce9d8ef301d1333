{#- HO201: a model, seed or snapshot without handoff_domain. -#}
{% macro handoff_rule_missing_domain(node) -%}
  {%- if node['meta'].get('handoff_domain') is none -%}
    {{ return([handoff.handoff_violation('HO201', node, 'handoff_domain',
         'no domain: set +meta: {handoff_domain: {name, owner, slack}} for the project in dbt_project.yml'
         ~ ' (under models:, seeds: and snapshots:)')]) }}
  {%- endif -%}
  {{ return([]) }}
{%- endmacro %}
