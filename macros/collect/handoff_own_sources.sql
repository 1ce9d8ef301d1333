{#- The source tables of the root project, sorted by unique_id, as slim dicts: unique_id, name,
    source_name, file, meta. `meta` is the table's meta merged over its source's
    (handoff_merge_source_meta). -#}
{% macro handoff_own_sources(for_project=none) -%}
  {%- set for_project = for_project or project_name -%}
  {%- set sources = [] -%}
  {%- for source in graph.sources.values() if source.package_name == for_project -%}
    {#- dbt 1.11: a table's `meta` and `config.meta` both hold the source's meta merged one level
        deep under the table's own; `source_meta` holds the source's meta alone. -#}
    {%- set table_meta = {} -%}
    {%- set config = source.config if source.config is mapping else {} -%}
    {%- do table_meta.update(config.get('meta') or {}) -%}
    {%- do table_meta.update(source.get('meta') or {}) -%}
    {%- do sources.append({
          'unique_id': source.unique_id,
          'name': source.name,
          'source_name': source.source_name,
          'file': source.original_file_path or '',
          'meta': handoff.handoff_merge_source_meta(source.get('source_meta') or {}, table_meta),
        }) -%}
  {%- endfor -%}
  {{ return(sources | sort(attribute='unique_id')) }}
{%- endmacro %}
