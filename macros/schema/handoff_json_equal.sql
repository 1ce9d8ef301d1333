{#- JSON equality as jsonschema's enum uses it: true is not 1. -#}
{% macro handoff_json_equal(a, b) -%}
  {%- if a is boolean or b is boolean -%}
    {{ return(a is boolean and b is boolean and a == b) }}
  {%- endif -%}
  {{ return(a == b) }}
{%- endmacro %}
