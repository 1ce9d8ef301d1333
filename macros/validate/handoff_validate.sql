{#- Entry point: `dbt run-operation handoff_validate` (or handoff.handoff_validate).
    Checks every model, seed, snapshot and source table of the root project against the handoff
    convention, prints every violation on its own line and then fails once; prints a one-line
    summary when there is none. -#}
{% macro handoff_validate() -%}
  {%- if not execute -%}{{ return('') }}{%- endif -%}
  {%- set result = handoff.handoff_check_project(handoff.handoff_own_nodes(), handoff.handoff_own_sources(),
                                                   handoff.handoff_group_owners(), none, handoff.handoff_ref_packages()) -%}
  {%- do handoff.handoff_report(project_name, result) -%}
{%- endmacro %}
