{#- What each package other than the root project is, for cross-project refs (docs/mesh.md):
    'external' when every node of it has no file (another dbt project, injected by dbt-loom or dbt
    Cloud: dbt's own is_external_node), 'installed' when every node has one (a package in
    packages.yml), 'mixed' otherwise. The Python twin is handoff.cross_project.find_refs. -#}
{% macro handoff_ref_packages(for_project=none) -%}
  {%- set for_project = for_project or project_name -%}
  {%- set kinds = {} -%}
  {%- for node in graph.nodes.values() if node.package_name != for_project -%}
    {%- set kind = 'external' if not node.get('original_file_path') and not node.get('path') else 'installed' -%}
    {%- set seen = kinds.get(node.package_name) -%}
    {%- do kinds.update({node.package_name: kind if seen is none or seen == kind else 'mixed'}) -%}
  {%- endfor -%}
  {{ return(kinds) }}
{%- endmacro %}
