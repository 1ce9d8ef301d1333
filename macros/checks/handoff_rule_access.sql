{#- HO210: an access level handoff's plans cannot hold. dbt 1.11 refuses such values when it
    parses (seeds included); an edited or foreign manifest can hold any (`friends`, `[public]`). -#}
{% macro handoff_rule_access(node) -%}
  {%- set access = node['access'] -%}
  {%- if access is none or (access is string and access in ['public', 'protected', 'private']) -%}{{ return([]) }}{%- endif -%}
  {{ return([handoff.handoff_violation('HO210', node, 'access',
       'access is not one of public, protected, private: set `access:` (for a seed, `config: access:`) in its '
       ~ 'YAML to one of them')]) }}
{%- endmacro %}
