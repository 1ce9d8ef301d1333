{#- HO207: the readers of one cross-project ref disagree on how its sensor waits. A ref
    ref('project', 'name'[, v=N]) into an 'external' package (handoff_ref_packages) is one upstream,
    keyed project.name (project.name_vN when pinned), with one sensor for all its readers; the
    reader's wait is its handoff_refs.upstreams entry for that key (else for project.name), else
    handoff_refs.wait, completed by the defaults. The first reader by unique_id sets it; every reader
    that differs is a violation. `readers` are the nodes that passed every other node rule, sorted. -#}
{% macro handoff_rule_ref_waits(readers, ref_packages) -%}
  {%- set units = {'s': 1, 'm': 60, 'h': 3600, 'd': 86400} -%}
  {%- set first = {} -%}
  {%- set violations = [] -%}
  {%- for node in readers -%}
    {%- set done = [] -%}
    {%- for ref in node.get('refs', []) if ref.get('package') and ref['package'] != project_name
          and ref_packages.get(ref['package']) == 'external' -%}
      {%- set key = ref['name'] if ref.get('version') is none else ref['name'] ~ '_v' ~ ref['version'] -%}
      {%- set upstream = ref['package'] ~ '.' ~ key -%}
      {%- if upstream in done -%}{%- continue -%}{%- endif -%}
      {%- do done.append(upstream) -%}
      {%- set refs_meta = node['meta'].get('handoff_refs') or {} -%}
      {%- set upstreams = refs_meta.get('upstreams') or {} -%}
      {%- set specific = upstreams.get(upstream) or upstreams.get(ref['package'] ~ '.' ~ ref['name']) -%}
      {%- set wait = specific['wait'] if (specific is mapping and 'wait' in specific) else (refs_meta.get('wait') or {}) -%}
      {%- set timeout = wait.get('timeout', '6h') -%}
      {%- set poke = wait.get('poke_interval', '5m') -%}
      {%- set here = {'timeout': (timeout[:-1] | int) * units[timeout[-1]], 'poke': (poke[:-1] | int) * units[poke[-1]],
                      'mode': wait.get('mode', 'deferrable'), 'shown': 'timeout ' ~ timeout ~ ', poke_interval ' ~ poke
                      ~ ', mode ' ~ wait.get('mode', 'deferrable'), 'unique_id': node['unique_id']} -%}
      {%- if upstream not in first -%}
        {%- do first.update({upstream: here}) -%}
        {%- continue -%}
      {%- endif -%}
      {%- set seen = first[upstream] -%}
      {%- if seen['timeout'] != here['timeout'] or seen['poke'] != here['poke'] or seen['mode'] != here['mode'] -%}
        {%- set shown_ref = "ref('" ~ ref['package'] ~ "', '" ~ ref['name'] ~ "'"
                            ~ (', v=' ~ ref['version'] if ref.get('version') is not none else '') ~ ')' -%}
        {%- do violations.append(handoff.handoff_violation('HO207', node, 'handoff_refs',
              'the readers of ' ~ shown_ref ~ ' share one sensor but wait differently: ' ~ here['shown'] ~ ' here, '
              ~ seen['shown'] ~ ' on ' ~ seen['unique_id'] ~ '; set handoff_refs once, at project level'
              ~ ' (or give this upstream one entry under handoff_refs.upstreams)')) -%}
      {%- endif -%}
    {%- endfor -%}
  {%- endfor -%}
  {{ return(violations) }}
{%- endmacro %}
