{#- A source table's effective meta: table keys win over the source's; inside handoff_upstream
    they win key by key, so a source can name the domain once and each table its model. -#}
{% macro handoff_merge_source_meta(source_meta, table_meta) -%}
  {%- set merged = {} -%}
  {%- do merged.update(source_meta) -%}
  {%- do merged.update(table_meta) -%}
  {%- set outer = source_meta.get('handoff_upstream') -%}
  {%- set inner = table_meta.get('handoff_upstream') -%}
  {%- if outer is mapping and inner is mapping -%}
    {%- set upstream = {} -%}
    {%- do upstream.update(outer) -%}
    {%- do upstream.update(inner) -%}
    {%- do merged.update({'handoff_upstream': upstream}) -%}
  {%- endif -%}
  {{ return(merged) }}
{%- endmacro %}
