{#- One violation: a rule code, the node or source it is about, the key path inside its meta and a
    message that says what to do. -#}
{% macro handoff_violation(code, item, key, message) -%}
  {{ return({'code': code, 'unique_id': item['unique_id'], 'file': item['file'], 'key': key, 'message': message}) }}
{%- endmacro %}
