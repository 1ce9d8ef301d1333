{#- HO205: a public model without an effective owner (handoff.owner, else its dbt group's owner,
    else handoff_domain.owner). While handoff_domain.owner is required (HO104) this cannot fire on a
    node that passed the schema checks; it guards the chain should that ever change. -#}
{% macro handoff_rule_public_owner(node, group_owners) -%}
  {%- if node['access'] != 'public' -%}{{ return([]) }}{%- endif -%}
  {%- set own = node['meta'].get('handoff') or {} -%}
  {%- set domain = node['meta'].get('handoff_domain') or {} -%}
  {%- set owner = own.get('owner') or group_owners.get(node['group']) or domain.get('owner') -%}
  {%- if not owner -%}
    {{ return([handoff.handoff_violation('HO205', node, 'handoff.owner',
         'public model without an owner: set meta.handoff.owner, an owner on its dbt group, or handoff_domain.owner')]) }}
  {%- endif -%}
  {{ return([]) }}
{%- endmacro %}
