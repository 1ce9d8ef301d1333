{#- HO206: the project's nodes declare different handoff_domain values. `domains` maps a domain's
    "{name, owner, slack}" to the ids of the nodes declaring it; every domain but the first (sorted)
    gets one violation, on its first node. -#}
{% macro handoff_rule_one_domain(domains, nodes_by_id) -%}
  {%- set keys = domains.keys() | list | sort -%}
  {%- if keys | length < 2 -%}{{ return([]) }}{%- endif -%}
  {%- set described = [] -%}
  {%- for key in keys -%}
    {%- do described.append(key ~ ' on ' ~ domains[key] | length ~ ' node(s), e.g. ' ~ domains[key][0]) -%}
  {%- endfor -%}
  {%- set violations = [] -%}
  {%- for key in keys[1:] -%}
    {%- do violations.append(handoff.handoff_violation('HO206', nodes_by_id[domains[key][0]], 'handoff_domain',
          'one project is one domain, but it declares several: ' ~ described | join('; ')
          ~ '; set handoff_domain once, at project level')) -%}
  {%- endfor -%}
  {{ return(violations) }}
{%- endmacro %}
