{#- handoff_meta_issues, remembered in `judged`. Most of a project's meta comes from dbt_project.yml
    and repeats on every node, so a meta object is judged one top-level key at a time, and each
    distinct {key: value} once. (Sound because the entry schemas' root keywords - type, properties,
    patternProperties, additionalProperties - judge each key on its own; with a root `required` or
    `enum` the whole block is judged instead.) -#}
{% macro handoff_meta_issues_cached(kind, meta, judged, root) -%}
  {%- set entry = root['$defs'][{'node': 'node_meta', 'source': 'source_meta'}[kind]] -%}
  {%- set parts = [] -%}
  {%- if meta is mapping and 'required' not in entry and 'enum' not in entry -%}
    {%- for key, value in meta.items() -%}{%- do parts.append({key: value}) -%}{%- endfor -%}
  {%- else -%}
    {%- do parts.append(meta) -%}
  {%- endif -%}
  {%- set issues = [] -%}
  {%- for part in parts -%}
    {%- set cache_key = tojson(part, sort_keys=true) -%}
    {%- if cache_key is none -%}
      {%- do issues.extend(handoff.handoff_meta_issues(kind, part, root)) -%}
    {%- else -%}
      {%- set cache_key = kind ~ ':' ~ cache_key -%}
      {%- if cache_key not in judged -%}
        {%- do judged.update({cache_key: handoff.handoff_meta_issues(kind, part, root)}) -%}
      {%- endif -%}
      {%- do issues.extend(judged[cache_key]) -%}
    {%- endif -%}
  {%- endfor -%}
  {{ return(issues | sort(attribute='path') | sort(attribute='code')) }}
{%- endmacro %}
