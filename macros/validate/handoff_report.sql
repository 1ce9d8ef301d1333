{#- Print every violation, one line each ("<code> <unique_id> (<file>) meta.<key>: <message>", the
    format of the Python CLI), then raise once with the count; or print the OK summary. -#}
{% macro handoff_report(for_project, result) -%}
  {%- set violations = result['violations'] -%}
  {%- for v in violations -%}
    {%- set where = v['unique_id'] ~ (' (' ~ v['file'] ~ ')' if v['file'] else '') -%}
    {{ print(v['code'] ~ ' ' ~ where ~ (' meta.' ~ v['key'] ~ ':' if v['key'] else ':') ~ ' ' ~ v['message']) }}
  {%- endfor -%}
  {%- if violations -%}
    {%- set affected = violations | map(attribute='unique_id') | unique | list -%}
    {%- do exceptions.raise_compiler_error(
          'handoff: ' ~ for_project ~ ': ' ~ violations | length ~ ' violation(s) of the handoff convention in '
          ~ affected | length ~ ' node(s)/source(s), listed above; see docs/convention.md of the handoff package') -%}
  {%- endif -%}
  {{ print('handoff: ' ~ for_project ~ ': ' ~ result['nodes'] ~ ' nodes, ' ~ result['upstreams']
           ~ ' cross-domain sources, ' ~ (result['refs'] ~ ' cross-project refs, ' if result.get('refs') else '')
           ~ '0 violations') }}
{%- endmacro %}
