{#- Runs a project's on-run-start / on-run-end hooks, once, outside any model's build.

    handoff's DAGs run a domain's hooks once per DAG run (an Airflow setup task before the dbt
    tasks, a teardown task after them) instead of once per task: every task is its own dbt
    invocation, and dbt runs the hooks at each one (docs/plan.md, "Project hooks").
    `hook_ids` are the hooks' unique ids, in the order dbt runs them (the plan lists them so).
    The hook text is rendered as dbt renders it, with `schemas` and `database_schemas` of the DAG's
    nodes; `results` is empty (a DAG run's results are its Airflow task states).
    Called by the worker as `dbt run-operation handoff.handoff_run_hooks --args {...}`. -#}
{% macro handoff_run_hooks(hook_ids, schemas=[], database_schemas=[]) %}
  {%- set context_prefix = '{%- set schemas = ' ~ tojson(schemas) ~ ' -%}'
        ~ '{%- set database_schemas = ' ~ tojson(database_schemas) ~ ' -%}{%- set results = [] -%}' -%}
  {%- for hook_id in hook_ids -%}
    {%- set hook = graph.nodes.get(hook_id) -%}
    {%- if hook is none or hook.resource_type != 'operation' -%}
      {%- do exceptions.raise_compiler_error('handoff_run_hooks: no project hook ' ~ hook_id
          ~ ' in this project (the deployed dbt project does not match the plan: redeploy both)') -%}
    {%- endif -%}
    {%- set sql = render(context_prefix ~ hook.raw_code) -%}
    {%- if sql | trim -%}
      {%- do run_query(sql) -%}
    {%- endif -%}
    {{- log('handoff: ran ' ~ hook_id, info=true) -}}
  {%- endfor -%}
{% endmacro %}
