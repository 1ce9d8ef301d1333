"""Telling people (issue #15, docs/notifications.md).

* ``messages`` (pure): who hears what — the channels of a blocked, resumed or SLA-miss event, each
  message as Slack Block Kit blocks with a plain-text fallback;
* ``delivery`` (effects): posting through Airflow's Slack provider (an incoming-webhook
  connection), or logging instead (dry run);
* ``events`` (effects): what the callbacks and the sweep call — read the registry, put the
  messages in its outbox (one per subject and channel), post the ones this call added;
* ``sla_watch`` (effects over a pure core): which model runs passed their SLA deadline.

Nothing here imports Airflow at module level; delivery imports the Slack provider when it posts.
"""
