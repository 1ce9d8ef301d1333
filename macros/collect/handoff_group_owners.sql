{#- {group name: owner} for the project's dbt groups; the owner is the group owner's name, else
    its email. -#}
{% macro handoff_group_owners() -%}
  {%- set owners = {} -%}
  {%- for group in (graph.get('groups') or {}).values() -%}
    {%- set owner = group.get('owner') if group.get('owner') is mapping else {} -%}
    {%- do owners.update({group.name: owner.get('name') or owner.get('email')}) -%}
  {%- endfor -%}
  {{ return(owners) }}
{%- endmacro %}
