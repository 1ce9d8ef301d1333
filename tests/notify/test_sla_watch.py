"""SLA-miss detection (handoff.notify.sla_watch.check) over a real registry (SQLite, PostgreSQL),
posting through Airflow's Slack provider to a Slack-compatible receiver on 127.0.0.1. Without an
Airflow API the registry alone judges (the real-stack e2e covers the API path)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from handoff.notify import events, sla_watch
from handoff.notify.delivery import Delivery
from sqlalchemy import update

RUN = datetime(2026, 11, 24, 3, 0, tzinfo=UTC)  # marketplace__daily's tick; mrt_orders: available_by 04:30
DEADLINE = RUN.replace(hour=4, minute=30)


def _orders(registry):
    return [m for m in sla_watch.models_of(registry.sla_models(domain="marketplace")) if m.task_id == "mrt_orders"]


def _published_long_ago(registry) -> None:
    from handoff.registry.schema import publications

    with registry.engine.begin() as conn:
        conn.execute(update(publications).values(published_at=RUN - timedelta(days=30)))


def _succeed(registry, at: datetime, run: datetime = RUN):
    return events.model_completed(registry, None, Delivery("slack"), dag_id="marketplace__daily",
                                  task_id="mrt_orders", run_id=f"scheduled__{run.isoformat()}", logical_date=run,
                                  run_after=run, completed_at=at)


def test_a_run_past_its_deadline_is_one_miss_one_message_per_channel(registry, slack) -> None:
    _published_long_ago(registry)
    early = sla_watch.check(registry, None, Delivery("slack"), now=DEADLINE - timedelta(seconds=1),
                            models=_orders(registry))
    assert (early.checked, early.missed) == (0, [])  # not due yet
    report = sla_watch.check(registry, None, Delivery("slack"), now=DEADLINE + timedelta(seconds=2),
                             models=_orders(registry))
    assert (report.checked, report.met, len(report.missed), report.api_calls) == (1, 0, 1, 0)
    assert report.missed[0]["state"] == "no success recorded"
    requests = slack.wait_for(3, timeout=10)
    texts = {r.body.get("channel") or r.channel_path: r.body["text"] for r in requests}
    assert set(texts) == {"#marketing-data", "#marketplace-data", "T0TEST/B0FINANCE/finance"}
    owner = texts["#marketplace-data"]
    assert owner.startswith("SLA missed: marketplace.mrt_orders")
    assert "available_by 04:30 UTC, due 2026-11-24 04:30 UTC" in owner and "Read by finance, marketing" in owner
    assert "*Waiting in finance*" in texts["T0TEST/B0FINANCE/finance"]
    [miss] = registry.sla_misses(dag_ids=["marketplace__daily"])
    assert (miss.task_id, miss.logical_date, miss.deadline, miss.completed_at) == ("mrt_orders", RUN, DEADLINE, None)
    # the watch wakes again, the sweep checks too: nothing more
    for minutes in (1, 30, 90):
        again = sla_watch.check(registry, None, Delivery("slack"), now=DEADLINE + timedelta(minutes=minutes),
                                models=_orders(registry))
        assert (again.known, again.missed, again.messages.added) == (1, [], 0)
    # the late success is recorded on the miss
    _succeed(registry, DEADLINE + timedelta(minutes=40))
    [miss] = registry.sla_misses(dag_ids=["marketplace__daily"])
    assert miss.completed_at == DEADLINE + timedelta(minutes=40)
    assert len(slack.requests) == 3
    assert len(registry.notifications(kind="sla_miss")) == 3


def test_a_success_by_the_deadline_is_met_and_one_after_it_before_the_check_is_a_late_miss(registry, slack) -> None:
    _published_long_ago(registry)
    _succeed(registry, DEADLINE)  # at the deadline: on time
    met = sla_watch.check(registry, None, Delivery("slack"), now=DEADLINE + timedelta(seconds=2),
                          models=_orders(registry))
    assert (met.met, met.missed) == (1, [])
    nxt = RUN + timedelta(days=1)
    _succeed(registry, DEADLINE + timedelta(days=1, minutes=5), run=nxt)  # the watch woke late
    late = sla_watch.check(registry, None, Delivery("dry-run"), now=DEADLINE + timedelta(days=1, minutes=10),
                           models=_orders(registry))
    assert [m["state"] for m in late.missed] == ["late"] and late.messages.dry_run == 3
    [miss] = registry.sla_misses(dag_ids=["marketplace__daily"])
    assert (miss.logical_date, miss.completed_at) == (nxt, DEADLINE + timedelta(days=1, minutes=5))
    assert "it completed late, at 2026-11-25 04:35 UTC" in registry.notifications(kind="sla_miss")[0].text
    assert slack.requests == []  # dry run: logged, not posted


def test_runs_before_the_first_publication_are_not_misses(registry, slack) -> None:
    report = sla_watch.check(registry, None, Delivery("slack"), now=DEADLINE + timedelta(seconds=2),
                             models=_orders(registry))  # published now, the run was days ago
    assert (report.checked, report.missed) == (1, [])
    assert registry.sla_misses() == []


def test_the_watch_wakes_at_the_next_deadline(registry) -> None:
    wake = sla_watch.wake_at(registry, RUN)
    assert wake is not None and RUN < wake <= RUN + timedelta(days=1)
    assert sla_watch.wake_at(registry, wake) > wake


def test_a_domain_that_muted_sla_misses_gets_its_row_but_no_post(registry, slack, example_plans) -> None:
    from dataclasses import replace

    marketing = next(p for p in example_plans if p.domain.name == "marketing")
    # handoff_domain: {mute: {sla_miss: true}}
    registry.publish([replace(marketing, domain=replace(marketing.domain, mute=("sla_miss",)))])
    _published_long_ago(registry)
    report = sla_watch.check(registry, None, Delivery("slack"), now=DEADLINE + timedelta(seconds=2),
                             models=_orders(registry))
    assert (len(report.missed), report.messages.added, report.messages.muted, report.messages.sent) == (1, 3, 1, 2)
    rows = {n.channel: n.status for n in registry.notifications(kind="sla_miss")}
    assert rows == {"#marketing-data": "muted", "#marketplace-data": "sent", "#finance-data": "sent"}
    assert sorted(r.body.get("channel") or r.channel_path for r in slack.wait_for(2, timeout=10)) == [
        "#marketplace-data", "T0TEST/B0FINANCE/finance"]


def test_one_published_sla_beyond_400_days_is_skipped_with_one_line_and_never_stops_the_others(
        registry, caplog) -> None:
    """A row an older handoff published with a huge available_within (3000000d: past datetime's
    range) once stopped the watch, `handoff sla`, explain --at and check for every domain."""
    import logging

    from handoff.commands.sla import history
    from handoff.registry.checks import check_mesh
    from handoff.registry.schema import tasks
    from handoff.sla_verdict import judge_run

    _published_long_ago(registry)
    rows = registry.sla_models()
    bad = next(r for r in rows if r["task_id"] != "mrt_orders")
    # SQLite stores what the reviewer published; PostgreSQL's INTEGER column tops out at 2**31 - 1 s (68 y)
    huge = 3_000_000 * 86400 if registry.engine.dialect.name == "sqlite" else 2**31 - 1
    with registry.engine.begin() as conn:
        conn.execute(update(tasks).where(tasks.c.dag_id == bad["dag_id"], tasks.c.task_id == bad["task_id"])
                     .values(available_by=None, available_within_s=huge))
    name = f"{bad['domain']}.{bad['task_id']}"
    caplog.set_level(logging.WARNING)
    models = sla_watch.models_of(registry.sla_models())
    assert name not in {m.name for m in models} and len(models) == len(rows) - 1
    assert sla_watch.wake_at(registry, RUN) is not None
    report = sla_watch.check(registry, None, Delivery("dry-run"), now=DEADLINE + timedelta(seconds=2))
    assert "marketplace.mrt_orders" in {m["model"] for m in report.missed}  # the others are still judged
    assert history(registry, domain=None, model=None, days=30, now=DEADLINE).models
    assert judge_run(registry.run_slas(bad["dag_id"], RUN), RUN, DEADLINE) is not None
    check_mesh(registry.mesh())  # the mesh reader drops that SLA only
    skipped = [r.getMessage() for r in caplog.records if name in r.getMessage()]
    assert skipped and all("not a whole number of seconds in 1..34560000 (400d)" in s for s in skipped)
