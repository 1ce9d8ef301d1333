{#- HO204: a source whose handoff_upstream.domain is the project's own domain. -#}
{% macro handoff_rule_source_own_domain(source, own_domain) -%}
  {%- set declared = source['meta'].get('handoff_upstream') -%}
  {%- if declared is none or own_domain is none or declared['domain'] != own_domain -%}{{ return([]) }}{%- endif -%}
  {{ return([handoff.handoff_violation('HO204', source, 'handoff_upstream.domain',
       "source points at its own domain '" ~ own_domain ~ "': use ref('" ~ declared.get('model', source['name'])
       ~ "') instead of a source")]) }}
{%- endmacro %}
