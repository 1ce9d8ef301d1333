"""handoff.notify.events over a real registry (SQLite, PostgreSQL), posting through Airflow's Slack
provider to a Slack-compatible receiver on 127.0.0.1: who hears what, once."""

from __future__ import annotations

import logging
import threading
from datetime import datetime, timezone

import pytest
from handoff.notify import events
from handoff.notify.delivery import Delivery, connection_id_for

RUN = datetime(2026, 11, 24, 3, 0, tzinfo=timezone.utc)  # marketplace__daily's tick
FIN_RUN = datetime(2026, 11, 24, 5, 0, tzinfo=timezone.utc)


def _fail(registry, delivery, task_id="mrt_orders", tries=3):
    return events.model_failed(registry, delivery, dag_id="marketplace__daily", task_id=task_id,
                               run_id="scheduled__2026-11-24T03:00:00+00:00", logical_date=RUN, tries=tries)


def _channels(requests):
    return sorted(r.body.get("channel") or r.channel_path for r in requests)


def test_connection_ids_follow_the_channel():
    assert connection_id_for("#finance-data") == "handoff_slack_finance_data"
    assert connection_id_for("#Ops.Alerts_2") == "handoff_slack_ops_alerts_2"


def test_a_failure_tells_each_consuming_channel_and_the_owner_once(registry, slack):
    report = _fail(registry, Delivery("slack"))
    assert (report.added, report.sent, report.failed) == (3, 3, 0)
    requests = slack.wait_for(3, timeout=60)
    # finance's own webhook (its connection) carries no channel; the shared one names it
    assert _channels(requests) == ["#marketing-data", "#marketplace-data", "T0TEST/B0FINANCE/finance"]
    finance = next(r for r in requests if r.channel_path == "T0TEST/B0FINANCE/finance")
    assert "channel" not in finance.body
    assert "`mrt_revenue`, `stg_marketplace_orders`" in finance.body["text"]
    assert finance.body["blocks"][0]["type"] == "header"
    # the duplicate callback, a retry storm: nothing more
    for _ in range(5):
        assert _fail(registry, Delivery("slack")).added == 0
    assert len(slack.requests) == 3
    rows = registry.notifications(kind="blocked")
    assert sorted(n.channel for n in rows) == ["#finance-data", "#marketing-data", "#marketplace-data"]
    assert {n.status for n in rows} == {"sent"} and all(n.attempts == 1 and n.sent_at for n in rows)


def test_racing_callbacks_post_each_message_once(registry, slack):
    barrier = threading.Barrier(6)
    reports = []

    def racer():
        barrier.wait()
        reports.append(_fail(registry, Delivery("slack")))

    threads = [threading.Thread(target=racer) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sum(r.added for r in reports) == 3 and sum(r.sent for r in reports) == 3
    assert len(slack.requests) == 3


def test_a_post_that_fails_is_left_pending_and_the_sweep_posts_it(registry, slack, caplog):
    slack.fail_next(1, 500)
    report = _fail(registry, Delivery("slack"))
    assert report.added == 3 and report.sent == 2 and report.failed == 1
    assert "T0TEST" not in " ".join(report.errors) and "Status Code: 500" in " ".join(report.errors)
    [pending] = registry.notifications(status="pending")
    assert pending.attempts == 1 and "500" in (pending.last_error or "")
    assert "B0SHARED" not in (pending.last_error or "") and "B0FINANCE" not in (pending.last_error or "")
    retried = events.retry_pending(registry, Delivery("slack"))
    assert retried.sent == 1
    assert {n.status for n in registry.notifications()} == {"sent"}
    assert len(slack.accepted()) == 3
    assert events.retry_pending(registry, Delivery("slack")).sent == 0  # nothing left


def test_no_connection_leaves_messages_pending_with_what_to_define(registry, monkeypatch):
    monkeypatch.delenv("AIRFLOW_CONN_HANDOFF_SLACK", raising=False)
    report = _fail(registry, Delivery("slack"))
    assert report.sent == 0 and report.failed == 3
    assert all("handoff_slack" in e and "docs/notifications.md" in e for e in report.errors)


def test_dry_run_logs_instead_of_posting_and_off_records_nothing(registry, slack, caplog):
    with caplog.at_level(logging.INFO, logger="handoff.notify.delivery"):
        report = _fail(registry, Delivery("dry-run"))
    assert report.dry_run == 3 and not slack.requests
    assert {n.status for n in registry.notifications()} == {"dry_run"}
    assert "would post to #finance-data: Blocked: marketplace.mrt_orders failed after 3 tries" in caplog.text
    other = events.model_failed(registry, Delivery("off"), dag_id="finance__daily", task_id="mrt_revenue",
                                run_id="r", logical_date=FIN_RUN)
    assert other.added == 0 and len(registry.notifications()) == 3


def test_a_failing_ancestor_is_reported_and_resumed_by_the_model_others_read(registry, slack):
    report = _fail(registry, Delivery("slack"), task_id="stg_orders")
    assert report.sent == 3
    assert all("marketplace.stg_orders" in r.body["text"] for r in slack.requests)
    # the sweep later sees mrt_orders upstream_failed: channels already told about the run hear nothing
    # and the model nobody waits on directly says nothing when it succeeds
    quiet = events.model_succeeded(registry, Delivery("slack"), dag_id="marketplace__daily", task_id="stg_items",
                                   run_id="r", logical_date=RUN)
    assert quiet.added == 0
    resumed = events.model_succeeded(registry, Delivery("slack"), dag_id="marketplace__daily", task_id="mrt_orders",
                                     run_id="r", logical_date=RUN,
                                     released=[("finance__daily", "scheduled__2026-11-24T05:00:00+00:00",
                                                "wait__marketplace__mrt_orders")])
    assert resumed.sent == 3
    texts = {r.body.get("channel") or r.channel_path: r.body["text"] for r in slack.requests[3:]}
    assert "(it had blocked `stg_orders`)" in texts["#marketplace-data"]
    assert "Released by handoff: `finance__daily`" in texts["T0TEST/B0FINANCE/finance"]
    again = events.model_succeeded(registry, Delivery("slack"), dag_id="marketplace__daily", task_id="mrt_orders",
                                   run_id="r", logical_date=RUN)
    assert again.added == 0 and len(slack.requests) == 6


def test_a_sensor_giving_up_tells_each_channel_once_per_upstream_run(registry, slack):
    first = events.sensor_gave_up(registry, Delivery("slack"), dag_id="finance__daily",
                                  sensor_task_id="wait__marketplace__mrt_orders", run_logical_date=FIN_RUN,
                                  waited_s=21600)
    assert first.sent == 3
    assert "is late: finance's sensor wait__marketplace__mrt_orders gave up waiting on it after 6h" in \
        slack.requests[0].body["text"]
    # a second sensor (or run) giving up on the same upstream run, and the upstream then failing: silence
    assert events.sensor_gave_up(registry, Delivery("slack"), dag_id="finance__daily",
                                 sensor_task_id="wait__marketplace__mrt_orders", run_logical_date=FIN_RUN).added == 0
    assert len(slack.requests) == 3
    assert [n.subject_date for n in registry.notifications()] == [RUN] * 3


@pytest.mark.parametrize("task_id", ["mrt_fx_rates", "no_such_model"])
def test_a_model_nobody_reads_or_an_unknown_task_says_nothing(registry, slack, task_id):
    report = events.model_failed(registry, Delivery("slack"), dag_id="finance__daily", task_id=task_id,
                                 run_id="r", logical_date=FIN_RUN)
    assert report.added == 0 and not slack.requests
