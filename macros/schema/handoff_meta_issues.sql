{#- The schema issues of one meta block: kind 'node' (a model's, seed's or snapshot's config.meta)
    or 'source' (a source table's meta merged over its source's). Sorted by (code, path). -#}
{% macro handoff_meta_issues(kind, meta, root=none) -%}
  {%- set root = root if root is not none else handoff.handoff_meta_schema() -%}
  {%- set entry_points = {'node': 'node_meta', 'source': 'source_meta'} -%}
  {%- if kind not in entry_points -%}
    {%- do exceptions.raise_compiler_error("handoff: unknown meta kind '" ~ kind ~ "' (expected node or source)") -%}
  {%- endif -%}
  {%- set issues = handoff.handoff_schema_issues(root['$defs'][entry_points[kind]], meta if meta is not none else {}, '', root) -%}
  {{ return(issues | sort(attribute='path') | sort(attribute='code')) }}
{%- endmacro %}
