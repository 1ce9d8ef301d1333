{#- Judge a list of meta examples in one run-operation (the macro/Python parity test uses it):
      dbt run-operation handoff_judge_examples --args '{examples: [{kind: node, meta: {...}}, ...]}'
    `examples` may also be a JSON string, which keeps JSON's types exactly (YAML reads 1e3 as a string).
    Prints one JSON line per example: {"handoff_judged": <index>, "issues": [[code, path], ...], sorted,
    "messages": [[code, path, message], ...]}. -#}
{% macro handoff_judge_examples(examples) -%}
  {%- set examples = fromjson(examples) if examples is string else examples -%}
  {%- if examples is none or examples is string or examples is mapping -%}
    {%- do exceptions.raise_compiler_error("handoff_judge_examples: pass examples as a list of {kind, meta}") -%}
  {%- endif -%}
  {%- set root = handoff.handoff_meta_schema() -%}
  {%- set judged = {} -%}
  {%- for example in examples -%}
    {%- set pairs = [] -%}
    {%- set messages = [] -%}
    {#- the same path handoff_validate takes, cache included -#}
    {%- for issue in handoff.handoff_meta_issues_cached(example['kind'], example['meta'], judged, root) -%}
      {%- set pair = [issue['code'], issue['path']] -%}
      {%- if pair not in pairs -%}{%- do pairs.append(pair) -%}{%- endif -%}
      {%- do messages.append([issue['code'], issue['path'], issue['message']]) -%}
    {%- endfor -%}
    {{ print(tojson({'handoff_judged': loop.index0, 'issues': pairs, 'messages': messages})) }}
  {%- endfor -%}
{%- endmacro %}
