{#- handoff_meta_issues, remembered in `judged` by the meta's JSON: most nodes of a project share
    their meta (it comes from dbt_project.yml), so each distinct block is judged once. -#}
{% macro handoff_meta_issues_cached(kind, meta, judged, root) -%}
  {%- set key = tojson(meta, sort_keys=true) -%}
  {%- if key is none -%}{{ return(handoff.handoff_meta_issues(kind, meta, root)) }}{%- endif -%}
  {%- set key = kind ~ ':' ~ key -%}
  {%- if key not in judged -%}
    {%- do judged.update({key: handoff.handoff_meta_issues(kind, meta, root)}) -%}
  {%- endif -%}
  {{ return(judged[key]) }}
{%- endmacro %}
