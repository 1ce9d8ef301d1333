{#- HO208: an SLA that is ambiguous for the node's pipeline schedule (handoff.sla.sla_form_problem
    is the Python twin, same words): both available_by and available_within; available_by on a
    schedule that fires more than once a day (its cron minute and hour fields are not each one
    number); available_by not later than the schedule's time of day. -#}
{% macro handoff_rule_sla_form(node) -%}
  {%- set own = node['meta'].get('handoff') or {} -%}
  {%- set pipeline = node['meta'].get('handoff_pipeline') -%}
  {%- set available_by = own.get('available_by') -%}
  {%- if pipeline is none or node['materialized'] == 'ephemeral' -%}{{ return([]) }}{%- endif -%}
  {%- if available_by is not none and own.get('available_within') is not none -%}
    {{ return([handoff.handoff_violation('HO208', node, 'handoff.available_by',
         'both available_by and available_within are set: keep one (available_by: a time of day, '
         ~ 'for pipelines that run at most once a day; available_within: a duration after each run starts)')]) }}
  {%- endif -%}
  {%- if available_by is none -%}{{ return([]) }}{%- endif -%}
  {%- set schedule = pipeline['schedule'] -%}
  {%- set presets = {'@hourly': '0 * * * *', '@daily': '0 0 * * *', '@weekly': '0 0 * * 0',
                     '@monthly': '0 0 1 * *', '@quarterly': '0 0 1 */3 *', '@yearly': '0 0 1 1 *',
                     '@annually': '0 0 1 1 *'} -%}
  {%- set fields = presets.get(schedule, schedule).split() -%}
  {%- set once_a_day = fields | length == 5 and modules.re.fullmatch('[0-9]{1,2}', fields[0])
                       and modules.re.fullmatch('[0-9]{1,2}', fields[1]) -%}
  {%- if not once_a_day -%}
    {{ return([handoff.handoff_violation('HO208', node, 'handoff.available_by',
         "available_by '" ~ available_by ~ "' is a time of day, but the pipeline runs more than once a day ('"
         ~ schedule ~ "'): use available_within, e.g. 45m for 'each run's data is complete 45 minutes "
         ~ "after the run starts'")]) }}
  {%- endif -%}
  {%- set start = fields[1] | int * 60 + fields[0] | int -%}
  {%- set runs_at = '%02d:%02d' % (fields[1] | int, fields[0] | int) -%}
  {%- set due = available_by[:2] | int * 60 + available_by[3:] | int -%}
  {%- if due > start -%}{{ return([]) }}{%- endif -%}
  {%- set gap = (due - start) % 1440 or 1440 -%}
  {%- set within = (gap // 60) ~ 'h' if gap % 60 == 0 else gap ~ 'm' -%}
  {{ return([handoff.handoff_violation('HO208', node, 'handoff.available_by',
       "available_by '" ~ available_by ~ "' is not after the pipeline's start at " ~ runs_at ~ " ('" ~ schedule
       ~ "'): it would fall before the run starts on the run's day; write a later time, or available_within: "
       ~ within ~ ' for a deadline on the following day')]) }}
{%- endmacro %}
