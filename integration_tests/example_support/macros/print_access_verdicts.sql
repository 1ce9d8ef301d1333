{#- Prints, per node, the violations the HO210 rule macro finds. dbt 1.11 refuses an access outside
    public/protected/private when it parses (seeds included), so only an edited manifest reaches the
    rule: the test calls it directly, and compares with the Python resolver on the same values. -#}
{% macro print_access_verdicts(nodes) -%}
  {%- for node in nodes -%}
    {%- set found = handoff.handoff_rule_access(node) -%}
    {{ print(tojson({'case': loop.index0, 'codes': found | map(attribute='code') | list})) }}
  {%- endfor -%}
{%- endmacro %}
