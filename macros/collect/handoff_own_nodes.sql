{#- The models, seeds and snapshots of the root project (not of installed packages), sorted by
    unique_id, as slim dicts: unique_id, resource_type, name, file, meta (config.meta),
    materialized, access, group, refs (dbt's list of {name, package, version}). -#}
{% macro handoff_own_nodes(for_project=none) -%}
  {%- set for_project = for_project or project_name -%}
  {%- set nodes = [] -%}
  {%- for node in graph.nodes.values()
        if node.package_name == for_project and node.resource_type in ['model', 'seed', 'snapshot'] -%}
    {%- set config = node.config if node.config is mapping else {} -%}
    {%- set meta = config.get('meta') -%}
    {%- do nodes.append({
          'unique_id': node.unique_id,
          'resource_type': node.resource_type,
          'name': node.name,
          'file': node.original_file_path or '',
          'meta': meta if meta is not none else (node.get('meta') or {}),
          'materialized': config.get('materialized'),
          'access': node.get('access') or config.get('access'),
          'group': node.get('group') or config.get('group'),
          'refs': node.get('refs') or [],
        }) -%}
  {%- endfor -%}
  {{ return(nodes | sort(attribute='unique_id')) }}
{%- endmacro %}
