{#- The schema a local JSON pointer such as '#/$defs/task_knobs/retries' names. -#}
{% macro handoff_schema_resolve(root, ref) -%}
  {%- if not ref.startswith('#/') -%}
    {%- do exceptions.raise_compiler_error("handoff: the meta schema refers to '" ~ ref ~ "'; only local '#/...' references are supported") -%}
  {%- endif -%}
  {%- set target = namespace(schema=root) -%}
  {%- for part in ref[2:].split('/') -%}
    {%- set part = part.replace('~1', '/').replace('~0', '~') -%}
    {%- if target.schema is not mapping or part not in target.schema -%}
      {%- do exceptions.raise_compiler_error("handoff: the meta schema reference '" ~ ref ~ "' points at nothing") -%}
    {%- endif -%}
    {%- set target.schema = target.schema[part] -%}
  {%- endfor -%}
  {{ return(target.schema) }}
{%- endmacro %}
