{#- HO211: a pipeline schedule that never fires: no month its month field names has a day its
    day-of-month field names (`0 0 30 2 *`). Reported once, on the first node (by unique_id) of the
    pipeline (`seen`: handoff_rule_pipeline_schedule's map). The same rule as
    handoff.convention.never_fires. -#}
{% macro handoff_rule_pipeline_never_fires(node, seen) -%}
  {%- set pipeline = node['meta'].get('handoff_pipeline') -%}
  {%- if pipeline is none or node['materialized'] == 'ephemeral' -%}{{ return([]) }}{%- endif -%}
  {%- if seen[pipeline['name']]['unique_id'] != node['unique_id'] -%}{{ return([]) }}{%- endif -%}
  {%- set schedule = pipeline['schedule'] -%}
  {%- set fields = schedule.split() -%}
  {%- if fields | length != 5 -%}{{ return([]) }}{%- endif -%}
  {%- set month_names = {'JAN': 1, 'FEB': 2, 'MAR': 3, 'APR': 4, 'MAY': 5, 'JUN': 6, 'JUL': 7, 'AUG': 8,
                         'SEP': 9, 'OCT': 10, 'NOV': 11, 'DEC': 12} -%}
  {%- set month_days = [31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31] -%}
  {%- set days = handoff.handoff_cron_expand(fields[2], 1, 31, {}) -%}
  {%- set months = handoff.handoff_cron_expand(fields[3], 1, 12, month_names) -%}
  {%- if not days or not months -%}{{ return([]) }}{%- endif -%}
  {%- set first_day = days | min -%}
  {%- for month in months if first_day <= month_days[month - 1] -%}{{ return([]) }}{%- endfor -%}
  {{ return([handoff.handoff_violation('HO211', node, 'handoff_pipeline.schedule',
       "schedule '" ~ schedule ~ "' never fires: no month it names has the day of month it names "
       ~ '(February has at most 29 days; April, June, September and November 30): fix the day or month field')]) }}
{%- endmacro %}

{#- The numbers one cron field names (items `*`, `a`, `a-b`, each with an optional `/step`; `names`
    maps month names to numbers), as a list. -#}
{% macro handoff_cron_expand(field, low, high, names) -%}
  {%- set found = [] -%}
  {%- for item in field.split(',') -%}
    {%- set parts = item.split('/') -%}
    {%- set base = parts[0] -%}
    {%- set step = (parts[1] | int) if parts | length > 1 else 1 -%}
    {%- if base == '*' -%}
      {%- set first = low -%}{%- set last = high -%}
    {%- else -%}
      {%- set ends = base.split('-') -%}
      {%- set first = names.get(ends[0], 0) or (ends[0] | int) -%}
      {%- if ends | length > 1 -%}
        {%- set last = names.get(ends[1], 0) or (ends[1] | int) -%}
      {%- elif parts | length > 1 -%}
        {%- set last = high -%}
      {%- else -%}
        {%- set last = first -%}
      {%- endif -%}
    {%- endif -%}
    {%- for n in range(first, last + 1, step) -%}{%- do found.append(n) -%}{%- endfor -%}
  {%- endfor -%}
  {{ return(found) }}
{%- endmacro %}
