"""SLA misses found by one check are told with ONE message per channel (handoff.notify.sla_watch +
events.sla_misses_found + messages.sla_miss_digests), posted through Airflow's Slack provider to a
Slack-compatible receiver on 127.0.0.1; the registry holds every miss (SQLite and PostgreSQL)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from handoff.notify import sla_watch
from handoff.notify.delivery import Delivery
from handoff.notify.messages import MAX_MISSES_LISTED, MAX_SECTION
from handoff.plan_model import Plan
from sqlalchemy import event, update

RUN = datetime(2026, 11, 24, 3, 0, tzinfo=UTC)


def _published_long_ago(registry) -> None:
    from handoff.registry.schema import publications

    with registry.engine.begin() as conn:
        conn.execute(update(publications).values(published_at=RUN - timedelta(days=30)))


def _channel(request: Any) -> str:
    return request.body.get("channel") or request.channel_path


def _bulk_plan(models: int) -> Plan:
    """A domain 'bulk' of ``models`` chained models, daily at 03:00 UTC, each promising
    available_within 1h (so one check finds them all past their deadline)."""
    tasks = [{"task_id": f"m{i:04d}", "kind": "dbt_model", "unique_id": f"model.bulk.m{i:04d}", "name": f"m{i:04d}",
              "tests": [], "relation": f"main.m{i:04d}", "access": "public", "owner": "team-bulk", "slack": "",
              "available_by": None, "available_within_s": 3600, "microbatch": False, "retries": 0,
              "retry_delay_s": 0, "timeout_s": None, "pool": None,
              "upstream": [f"m{i - 1:04d}"] if i else []} for i in range(models)]
    return Plan.from_json({"plan_version": 2, "handoff_version": "0.0.0", "notes": [],
            "domain": {"name": "bulk", "owner": "team-bulk", "slack": "#bulk-data", "description": ""},
            "dbt": {"project_name": "bulk", "dbt_version": "1.11.0", "manifest_sha256": ""},
            "pipelines": [{"name": "daily", "dag_id": "bulk__daily", "schedule": "0 3 * * *",
                           "start_date": "2026-01-01", "description": "", "timezone": "UTC", "tasks": tasks}]})


def test_several_misses_of_one_check_are_one_message_per_channel(registry, slack) -> None:
    _published_long_ago(registry)
    models = sla_watch.models_of(registry.sla_models(domain="marketplace"))
    assert len(models) >= 2  # mrt_orders (04:30) and mrt_items (04:00)
    last = max(m.deadline_of(RUN) for m in models)
    report = sla_watch.check(registry, None, Delivery("slack"), now=last + timedelta(seconds=1),
                             lookback=last - RUN, models=models)
    assert sorted(m["model"] for m in report.missed) == sorted(m.name for m in models)
    rows = registry.notifications(kind="sla_miss")
    channels = sorted(n.channel for n in rows)
    assert len(channels) == len(set(channels)) >= 3  # owner + finance + marketing, once each
    requests = slack.wait_for(len(rows), timeout=10)
    assert len(requests) == len(rows) == report.messages.sent
    owner = next(r.body["text"] for r in requests if _channel(r) == "#marketplace-data")
    assert owner.startswith(f"SLA missed: {len(models)} model runs of marketplace")
    for m in models:
        assert f"*{m.name}* (`marketplace__daily`, run of 2026-11-24 03:00 UTC)" in owner
    assert "read by finance" in owner and "Owner: " in owner
    assert {(miss.task_id, miss.logical_date) for miss in registry.sla_misses(dag_ids=["marketplace__daily"])} == {
        (m.task_id, RUN) for m in models}
    # the next wake, the sweep: the misses are known, nothing more is posted
    again = sla_watch.check(registry, None, Delivery("slack"), now=last + timedelta(minutes=5),
                            lookback=last - RUN + timedelta(minutes=5), models=models)
    assert (again.known, again.missed, again.messages.added) == (len(models), [], 0)
    assert len(slack.requests) == len(rows)


def test_a_domain_whose_models_all_miss_posts_one_capped_message(registry, slack) -> None:
    n = 1010  # more than the 1,000 misses a plain registry read returns: the next wake must know them all
    registry.publish([_bulk_plan(n)])
    _published_long_ago(registry)
    models = sla_watch.models_of(registry.sla_models(domain="bulk"))
    due = RUN + timedelta(hours=1)
    report = sla_watch.check(registry, None, Delivery("slack"), now=due + timedelta(seconds=1), models=models)
    assert (len(report.missed), report.messages.added, report.messages.sent) == (n, 1, 1)
    returned = report.as_dict(listed=sla_watch.LOGGED)  # the watch task's XCom: capped, counted
    assert (len(returned["missed"]), returned["missed_count"]) == (sla_watch.LOGGED, n)
    [request] = slack.wait_for(1, timeout=10)
    assert _channel(request) == "#bulk-data"
    text = request.body["text"]
    assert text.startswith(f"SLA missed: {n} model runs of bulk")
    listed = [line for line in text.splitlines() if line.startswith("• *bulk.m")]
    # as many as Slack's 3,000-character section holds (at most MAX_MISSES_LISTED), the rest counted
    assert 10 <= len(listed) <= MAX_MISSES_LISTED and listed[0].startswith("• *bulk.m0000*")
    assert f"and {n - len(listed)} more." in text and "`handoff sla bulk`" in text
    section = next(b for b in request.body["blocks"] if b["type"] == "section")["text"]["text"]
    assert len(section) <= MAX_SECTION and section.endswith("shows how reliable these promises have been.")
    assert len(registry.sla_misses(dag_ids=["bulk__daily"], limit=None)) == n
    [row] = registry.notifications(kind="sla_miss")
    assert (row.subject_task_id, row.subject_date, row.roles, row.status) == ("m0000", RUN, "owner", "sent")
    writes: list[str] = []

    def grab(conn: Any, cursor: Any, statement: str, *rest: Any) -> None:
        if statement.lstrip().upper().startswith(("INSERT", "UPDATE", "DELETE")):
            writes.append(statement)

    event.listen(registry.engine, "before_cursor_execute", grab)
    try:
        again = sla_watch.check(registry, None, Delivery("slack"), now=due + timedelta(minutes=10), models=models)
    finally:
        event.remove(registry.engine, "before_cursor_execute", grab)
    assert (again.known, again.missed, again.messages.added) == (n, [], 0)
    assert writes == []  # every miss was known from one read: nothing recorded again
    assert len(slack.requests) == 1
