{#- Levenshtein distance between two short strings (insertions, deletions, substitutions). -#}
{% macro handoff_edit_distance(a, b) -%}
  {%- set previous = namespace(row=range((b | length) + 1) | list) -%}
  {%- for i in range(1, (a | length) + 1) -%}
    {%- set row = [i] -%}
    {%- for j in range(1, (b | length) + 1) -%}
      {%- set cost = 0 if a[i - 1] == b[j - 1] else 1 -%}
      {%- do row.append([previous.row[j] + 1, row[j - 1] + 1, previous.row[j - 1] + cost] | min) -%}
    {%- endfor -%}
    {%- set previous.row = row -%}
  {%- endfor -%}
  {{ return(previous.row[-1]) }}
{%- endmacro %}
