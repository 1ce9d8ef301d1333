{#- Prints, per case, the violations the HO205 rule macro finds for a hand-made node. HO205 cannot
    fire on a real project while handoff_domain.owner is required, so the test calls the rule directly. -#}
{% macro print_public_owner_verdicts(cases) -%}
  {%- for case in cases -%}
    {%- set found = handoff.handoff_rule_public_owner(case['node'], case.get('group_owners', {})) -%}
    {{ print(tojson({'case': loop.index0, 'codes': found | map(attribute='code') | list})) }}
  {%- endfor -%}
{%- endmacro %}
