{#- The JSON type name of a value, for messages. -#}
{% macro handoff_json_type(value) -%}
  {%- for type_name in ['null', 'boolean', 'integer', 'number', 'string', 'object', 'array'] if handoff.handoff_json_is(value, type_name) -%}
    {{ return(type_name) }}
  {%- endfor -%}
  {{ return('unknown') }}
{%- endmacro %}
