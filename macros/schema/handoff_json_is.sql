{#- Whether a value is of a JSON-Schema type, as jsonschema decides it: booleans are not numbers,
    and a float without a fractional part (2.0) is an integer. -#}
{% macro handoff_json_is(value, type_name) -%}
  {%- if type_name == 'object' -%}{{ return(value is mapping) }}
  {%- elif type_name == 'array' -%}{{ return(value is sequence and value is not string and value is not mapping) }}
  {%- elif type_name == 'string' -%}{{ return(value is string) }}
  {%- elif type_name == 'boolean' -%}{{ return(value is boolean) }}
  {%- elif type_name == 'null' -%}{{ return(value is none) }}
  {%- elif type_name == 'integer' -%}{{ return(value is integer or (value is float and value % 1 == 0)) }}
  {%- elif type_name == 'number' -%}{{ return(value is number and value is not boolean) }}
  {%- else -%}
    {%- do exceptions.raise_compiler_error("handoff: the meta schema uses type '" ~ type_name ~ "', which the handoff macros do not know") -%}
  {%- endif -%}
{%- endmacro %}
