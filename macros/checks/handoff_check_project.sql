{#- Every violation of the convention in one project, in a stable order: per node (sorted by
    unique_id) its schema issues (HO1xx), or, when it has none, the project rules HO201, HO202,
    HO203, HO208, HO209 and HO205; then HO206; then per source table its schema issues, or HO204; then HO207 over
    the cross-project refs of the nodes that passed. Pure: takes slim nodes/sources (handoff_own_nodes,
    handoff_own_sources), group owners and what each other package is (handoff_ref_packages), and
    returns {violations, nodes, upstreams, refs}. Identical meta blocks are judged once. -#}
{% macro handoff_check_project(nodes, sources, group_owners, root=none, ref_packages=none) -%}
  {%- set root = root if root is not none else handoff.handoff_meta_schema() -%}
  {%- set violations = [] -%}
  {%- set judged = {} -%}
  {%- set domains = {} -%}
  {%- set pipelines = {} -%}
  {%- set own = namespace(domain=none, upstreams=0) -%}
  {%- set nodes_by_id = {} -%}
  {%- set readers = [] -%}
  {%- set ref_packages = ref_packages if ref_packages is not none else {} -%}

  {%- for node in nodes -%}
    {%- do nodes_by_id.update({node['unique_id']: node}) -%}
    {%- set issues = handoff.handoff_meta_issues_cached('node', node['meta'], judged, root) -%}
    {%- for issue in issues -%}
      {%- do violations.append(handoff.handoff_violation(issue['code'], node, issue['path'], issue['message'])) -%}
    {%- endfor -%}
    {%- if issues -%}{%- continue -%}{%- endif -%}
    {%- set missing_domain = handoff.handoff_rule_missing_domain(node) -%}
    {%- do violations.extend(missing_domain) -%}
    {%- if missing_domain -%}{%- continue -%}{%- endif -%}
    {%- set domain = node['meta']['handoff_domain'] -%}
    {%- set muted = [] -%}
    {%- for kind, on in (domain.get('mute') or {}).items() -%}{%- if on is sameas true -%}{%- do muted.append(kind) -%}{%- endif -%}{%- endfor -%}
    {%- set key = '{name: ' ~ domain['name'] ~ ', owner: ' ~ domain['owner'] ~ ', slack: ' ~ domain['slack']
                  ~ ((', mute: ' ~ (muted | sort | join(' '))) if muted else '') ~ '}' -%}
    {%- if key not in domains -%}{%- do domains.update({key: []}) -%}{%- endif -%}
    {%- do domains[key].append(node['unique_id']) -%}
    {%- if own.domain is none -%}{%- set own.domain = domain['name'] -%}{%- endif -%}
    {%- set missing_pipeline = handoff.handoff_rule_missing_pipeline(node) -%}
    {%- do violations.extend(missing_pipeline) -%}
    {%- if missing_pipeline -%}{%- continue -%}{%- endif -%}
    {%- do violations.extend(handoff.handoff_rule_pipeline_schedule(node, pipelines)) -%}
    {%- do violations.extend(handoff.handoff_rule_sla_form(node)) -%}
    {%- do violations.extend(handoff.handoff_rule_pipeline_never_fires(node, pipelines)) -%}
    {%- do violations.extend(handoff.handoff_rule_pipeline_timezone(node, pipelines)) -%}
    {%- do violations.extend(handoff.handoff_rule_public_owner(node, group_owners)) -%}
    {%- do violations.extend(handoff.handoff_rule_access(node)) -%}
    {%- do readers.append(node) -%}
  {%- endfor -%}
  {%- do violations.extend(handoff.handoff_rule_one_domain(domains, nodes_by_id)) -%}

  {%- for source in sources -%}
    {%- set issues = handoff.handoff_meta_issues_cached('source', source['meta'], judged, root) -%}
    {%- for issue in issues -%}
      {%- do violations.append(handoff.handoff_violation(issue['code'], source, issue['path'], issue['message'])) -%}
    {%- endfor -%}
    {%- if issues or source['meta'].get('handoff_upstream') is none -%}{%- continue -%}{%- endif -%}
    {%- set own_domain = handoff.handoff_rule_source_own_domain(source, own.domain) -%}
    {%- do violations.extend(own_domain) -%}
    {%- if not own_domain -%}{%- set own.upstreams = own.upstreams + 1 -%}{%- endif -%}
  {%- endfor -%}
  {%- do violations.extend(handoff.handoff_rule_ref_waits(readers, ref_packages)) -%}
  {%- set refs = [] -%}
  {%- for node in nodes -%}
    {%- for ref in node.get('refs', []) if ref.get('package') and ref['package'] != project_name
          and ref_packages.get(ref['package']) == 'external' -%}
      {%- set shown = node['unique_id'] ~ ' ' ~ ref['package'] ~ '.' ~ ref['name'] ~ '.' ~ ref.get('version') -%}
      {%- if shown not in refs -%}{%- do refs.append(shown) -%}{%- endif -%}
    {%- endfor -%}
  {%- endfor -%}
  {{ return({'violations': violations, 'nodes': nodes | length, 'upstreams': own.upstreams, 'refs': refs | length}) }}
{%- endmacro %}
