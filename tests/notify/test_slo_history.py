"""`handoff sla` (the SLO history) over a registry holding 30 simulated days of completions,
recorded through the path the success callbacks take (``events.model_completed``), on SQLite and
PostgreSQL; every number checked against values computed by hand."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import UTC, datetime, timedelta

import pytest
from handoff.commands.sla import history
from handoff.notify import events
from handoff.notify.delivery import Delivery

NOW = datetime(2026, 11, 30, 8, 0, tzinfo=UTC)
# mrt_orders (marketplace__daily, 03:00 UTC; available_by 04:30 = 90 min after the run): minutes
# from each of the last 30 runs to its success, newest first; None: it never succeeded.
ORDERS_MIN = [60] * 10 + [75] * 8 + [90] * 5 + [100, 120, 150, 210] + [80, 85] + [None]
CAMPAIGNS_MIN = 30  # marketing's mrt_campaign_performance (06:00, available_by 07:00): always on time


def _record(registry, dag_id: str, task_id: str, run: datetime, minutes: int) -> None:
    events.model_completed(registry, None, Delivery("off"), dag_id=dag_id, task_id=task_id,
                           run_id=f"scheduled__{run.isoformat()}", logical_date=run, run_after=run,
                           completed_at=run + timedelta(minutes=minutes))


def _simulate(registry, now: datetime) -> None:
    last = now.replace(hour=3, minute=0, second=0, microsecond=0)
    last = last if last + timedelta(minutes=90) <= now else last - timedelta(days=1)  # the latest due run
    for i, minutes in enumerate(ORDERS_MIN):
        if minutes is not None:
            _record(registry, "marketplace__daily", "mrt_orders", last - timedelta(days=i), minutes)
    _record(registry, "marketplace__daily", "mrt_orders", last - timedelta(days=1), 500)  # a duplicate later
    # callback of another try: the first success counts
    marketing = now.replace(hour=6, minute=0, second=0, microsecond=0)
    marketing = marketing if marketing + timedelta(hours=1) <= now else marketing - timedelta(days=1)
    for i in range(30):
        _record(registry, "marketing__daily", "mrt_campaign_performance", marketing - timedelta(days=i),
                CAMPAIGNS_MIN)


def _check_orders(report) -> None:
    orders = next(m for m in report.models if (m.domain, m.model) == ("marketplace", "mrt_orders"))
    assert orders.promise == "available_by 04:30 UTC"
    assert (orders.runs, orders.completed, orders.missing) == (30, 29, 1)
    assert orders.on_time == 25  # 10x60 8x75 5x90 (at the deadline is on time) 80 85
    assert orders.on_time_rate == pytest.approx(25 / 30)
    assert orders.median_s == 75 * 60  # the 15th of 29 sorted
    assert orders.p95_s == 150 * 60  # nearest rank ceil(0.95 * 29) = 28
    assert orders.worst_miss_s == 120 * 60  # 210 min against 90
    assert orders.suggested == "available_by 05:30"
    edge = next(e for e in report.edges if (e.upstream, e.consumer_dag_id) == ("marketplace.mrt_orders",
                                                                               "finance__daily"))
    # finance starts 2h after marketplace: 27 runs found it done, 150 and 210 made them wait 30 / 90 min
    assert (edge.runs, edge.ready_at_start, edge.missing) == (30, 27, 1)
    assert edge.wait_p95_s == 90 * 60
    [marketplace] = [d for d in report.domains if d.domain == "marketplace"]
    # mrt_items (available_by 04:00) has an SLA but no completion recorded: 30 runs missing
    items = next(m for m in report.models if m.model == "mrt_items")
    assert (items.runs, items.missing, items.on_time) == (30, 30, 0)
    assert marketplace.on_time_rate == pytest.approx(25 / 60)
    assert marketplace.worst == "mrt_items (0.0%)"


def test_history_over_30_simulated_days_by_hand(registry) -> None:
    published = registry.history_models(domain=None, model=None, since=NOW - timedelta(days=30))
    assert published  # the example plans carry SLAs
    _simulate(registry, NOW)
    # the SLO history counts runs from the pipeline's start, also before the first publication,
    # when they have a recorded success; without one, only from the first publication on
    from handoff.registry.schema import publications
    from sqlalchemy import update

    with registry.engine.begin() as conn:  # the domains were published 40 days ago
        conn.execute(update(publications).values(published_at=NOW - timedelta(days=40)))
    report = history(registry, domain=None, model=None, days=30, now=NOW)
    _check_orders(report)
    campaigns = next(m for m in report.models if m.model == "mrt_campaign_performance")
    assert (campaigns.runs, campaigns.on_time_rate, campaigns.p95_s) == (30, 1.0, 1800.0)
    assert campaigns.suggested == "available_by 06:30"
    one = history(registry, domain="marketplace", model="mrt_orders", days=30, now=NOW)
    assert [m.model for m in one.models] == ["mrt_orders"]
    assert [d.domain for d in one.domains] == ["marketplace"]
    week = history(registry, domain="marketplace", model="mrt_orders", days=7, now=NOW)
    # the 7 newest runs: 60 x7 -> all on time
    assert (week.models[0].runs, week.models[0].on_time) == (7, 7)


def test_unpublished_runs_without_success_are_not_misses(registry) -> None:
    report = history(registry, domain="marketplace", model="mrt_items", days=30)
    # published a moment ago: no run of the last 30 days was handoff's to see
    assert (report.models[0].runs, report.models[0].missing) == (0, 0)


@pytest.fixture
def sqlite_registry(tmp_path, example_plans):
    from handoff.registry import Registry

    url = f"sqlite:///{tmp_path}/registry.db"
    with Registry(url) as opened:
        opened.publish(example_plans)
        yield url, opened


def test_the_command_prints_the_history_as_text_and_json(sqlite_registry) -> None:
    url, registry = sqlite_registry
    _simulate(registry, datetime.now(UTC))
    done = subprocess.run([sys.executable, "-m", "handoff.cli", "sla", "marketplace", "--format", "json",
                           "--registry", url], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    document = json.loads(done.stdout)
    until = datetime.fromisoformat(document["until"])
    # the command's numbers are the ones the library computes for the same moment
    assert document == history(registry, domain="marketplace", model=None, days=30, now=until).as_dict()
    orders = next(m for m in document["models"] if m["model"] == "mrt_orders")
    assert orders["completed"] == 29 and orders["median_s"] == 75 * 60
    text = subprocess.run([sys.executable, "-m", "handoff.cli", "sla", "marketplace", "--days", "30",
                           "--registry", url], capture_output=True, text=True, timeout=120)
    assert text.returncode == 0, text.stderr
    print(text.stdout)  # what docs/notifications.md shows
    assert "marketplace.mrt_orders" in text.stdout and "available_by 04:30 UTC" in text.stdout
    assert "marketplace.mrt_orders -> finance__daily" in text.stdout
