{#- Every example model calls this first. It renders nothing; at run time it makes the model fail
    or run slowly when asked through vars, which never changes the parsed manifest:
      --vars '{handoff_example_fail: [int_orders]}'        the model fails (DuckDB error())
      --vars '{handoff_example_slow: {int_orders: 3}}'     the model sleeps 3 s first -#}
{% macro inject_faults() -%}
  {%- if execute -%}
    {%- set fail = var('handoff_example_fail', []) -%}
    {%- set fail = [fail] if fail is string else fail -%}
    {%- set slow = var('handoff_example_slow', {}) -%}
    {%- if model.name in slow -%}
      {%- do run_query('select sleep_ms(' ~ (slow[model.name] * 1000) | int ~ ')') -%}
    {%- endif -%}
    {%- if model.name in fail -%}
      {%- do run_query("select error('handoff example: injected failure in " ~ model.name ~ "')") -%}
    {%- endif -%}
  {%- endif -%}
{%- endmacro %}
