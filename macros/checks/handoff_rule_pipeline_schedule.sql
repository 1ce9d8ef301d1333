{#- HO203: nodes of one pipeline name disagree on its schedule, start_date, max_active_runs, execution or
    timezone. `seen` maps a pipeline
    name to the first node that declared it (nodes arrive sorted by unique_id); this macro adds to it. -#}
{% macro handoff_rule_pipeline_schedule(node, seen) -%}
  {%- set pipeline = node['meta'].get('handoff_pipeline') -%}
  {%- if pipeline is none or node['materialized'] == 'ephemeral' -%}{{ return([]) }}{%- endif -%}
  {%- set here = {'schedule': pipeline['schedule'], 'start_date': pipeline.get('start_date', '2024-01-01'),
                  'max_active_runs': pipeline.get('max_active_runs', 1),
                  'execution': pipeline.get('execution', 'batched'),
                  'timezone': pipeline.get('timezone', 'UTC'),
                  'unique_id': node['unique_id']} -%}
  {%- if pipeline['name'] not in seen -%}
    {%- do seen.update({pipeline['name']: here}) -%}
    {{ return([]) }}
  {%- endif -%}
  {%- set first = seen[pipeline['name']] -%}
  {%- if first['schedule'] == here['schedule'] and first['start_date'] == here['start_date']
        and first['max_active_runs'] == here['max_active_runs']
        and first['execution'] == here['execution']
        and first['timezone'] == here['timezone'] -%}{{ return([]) }}{%- endif -%}
  {{ return([handoff.handoff_violation('HO203', node, 'handoff_pipeline',
       "pipeline '" ~ pipeline['name'] ~ "' has schedule '" ~ here['schedule'] ~ "' (start " ~ here['start_date']
       ~ ", max_active_runs " ~ here['max_active_runs'] ~ ", execution " ~ here['execution'] ~ ", timezone "
       ~ here['timezone'] ~ ") here but '" ~ first['schedule'] ~ "' (start " ~ first['start_date']
       ~ ", max_active_runs " ~ first['max_active_runs'] ~ ", execution " ~ first['execution'] ~ ", timezone "
       ~ first['timezone'] ~ ") on " ~ first['unique_id']
       ~ '; give the pipeline one schedule, or name the folder\'s pipeline differently')]) }}
{%- endmacro %}
