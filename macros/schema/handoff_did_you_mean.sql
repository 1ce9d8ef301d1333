{#- " (did you mean 'x'?)" for the nearest allowed key within a few typos, else ''. -#}
{% macro handoff_did_you_mean(key, allowed) -%}
  {%- set best = namespace(name=none, distance=none) -%}
  {%- for candidate in allowed -%}
    {%- set distance = handoff.handoff_edit_distance(key, candidate) -%}
    {%- if best.distance is none or distance < best.distance -%}
      {%- set best.name = candidate -%}
      {%- set best.distance = distance -%}
    {%- endif -%}
  {%- endfor -%}
  {%- if best.name is not none and best.distance <= [1, (key | length) // 3] | max -%}
    {{ return(" (did you mean '" ~ best.name ~ "'?)") }}
  {%- endif -%}
  {{ return('') }}
{%- endmacro %}
