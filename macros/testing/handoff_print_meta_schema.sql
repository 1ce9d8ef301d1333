{#- Prints the schema the macros enforce, as one JSON line (the drift test compares it with
    schemas/meta.schema.json): dbt run-operation handoff_print_meta_schema -#}
{% macro handoff_print_meta_schema() -%}
  {{ print(tojson(handoff.handoff_meta_schema(), sort_keys=true)) }}
{%- endmacro %}
