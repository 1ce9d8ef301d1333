"""Re-runs of past dates: which downstream runs read the old data (report only), on both backends.

shop (daily 03:00) <- billing (daily 05:00) through billing's sensor wait__shop__orders. shop's run
of 2024-01-10 completes (scheduled), billing's 05:00 run reads it; then shop backfills that date
(a new run of the same logical date completes): billing's run read data the backfill replaced.
The completions and resolutions are recorded through the registry's own API, as the callbacks do.
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone

import pytest
from handoff.cli import main
from handoff.reader_runs import CURRENT, NO_RECORD, OLDER, read_verdict, reader_runs
from handoff.registry.store import Registry

DAY = datetime(2024, 1, 10, tzinfo=timezone.utc)
SHOP_RUN, BILLING_RUN = DAY.replace(hour=3), DAY.replace(hour=5)


@pytest.fixture
def registry(registry_url, plans):
    with Registry(registry_url) as registry:
        registry.publish([plans("shop"), plans("billing"), plans("growth")])
        yield registry


def test_a_backfill_of_a_past_date_names_the_runs_that_read_the_old_data(registry):
    scheduled = registry.record_completion("shop__daily", "orders", "scheduled__2024-01-10T03:00:00+00:00", SHOP_RUN,
                                           completed_at=SHOP_RUN + timedelta(minutes=50))
    registry.record_resolution("billing__daily", "scheduled__2024-01-10T05:00:00+00:00", "wait__shop__orders",
                               how="poke", try_number=1, completion_id=scheduled.id, run_logical_date=BILLING_RUN,
                               resolved_at=BILLING_RUN + timedelta(minutes=1))
    before = reader_runs(registry, "shop", "orders", DAY + timedelta(hours=12))
    assert before["run_logical_date"] == SHOP_RUN.isoformat() and before["older"] == 0
    [reader] = before["readers"]
    assert (reader["dag_id"], reader["run_logical_date"], reader["verdict"]) == (
        "billing__daily", BILLING_RUN.isoformat(), CURRENT)
    assert reader["models"] == ["invoices", "refunds"]

    backfill = registry.record_completion("shop__daily", "orders", "backfill__2024-01-10T03:00:00+00:00", SHOP_RUN,
                                          completed_at=datetime(2024, 2, 1, 9, tzinfo=timezone.utc))
    after = reader_runs(registry, "shop", "orders", DAY + timedelta(hours=12))
    assert [c["run_id"] for c in after["completions"]] == [scheduled.run_id, backfill.run_id]
    assert after["current"] == backfill.id and after["older"] == 1
    [reader] = after["readers"]
    assert reader["verdict"] == OLDER and reader["read_completion"]["run_id"] == scheduled.run_id

    # a day billing has not run (no resolution recorded): no record, nothing claimed
    registry.record_completion("shop__daily", "orders", "scheduled__2024-01-11T03:00:00+00:00",
                               SHOP_RUN + timedelta(days=1))
    [nothing] = reader_runs(registry, "shop", "orders", DAY + timedelta(days=1, hours=4))["readers"]
    assert nothing["verdict"] == NO_RECORD and nothing["run_id"] is None


def test_the_cli_shows_it_in_who_depends_on_and_explain(registry, capsys):
    done = registry.record_completion("shop__daily", "orders", "scheduled__x", SHOP_RUN,
                                      completed_at=SHOP_RUN + timedelta(minutes=40))
    registry.record_resolution("billing__daily", "scheduled__y", "wait__shop__orders", how="reconcile",
                               completion_id=done.id, run_logical_date=BILLING_RUN, try_number=1,
                               resolved_at=BILLING_RUN + timedelta(minutes=2))
    registry.record_completion("shop__daily", "orders", "scheduled__x", SHOP_RUN, try_number=2,
                               completed_at=SHOP_RUN + timedelta(days=3))  # cleared and re-run later
    url = registry.url
    assert main(["who-depends-on", "shop.orders", "--at", "2024-01-10", "--registry", url]) == 0
    out = capsys.readouterr().out
    assert "Runs of other DAGs that read shop.orders of 2024-01-10T03:00:00+00:00" in out
    assert f"billing__daily @ {BILLING_RUN.isoformat()} via wait__shop__orders: read older data" in out
    assert "run scheduled__x try 2: success" in out and "(standing)" in out
    assert "1 run(s) read data a later run of this date replaced" in out
    assert main(["who-depends-on", "shop.orders", "--at", "2024-01-10", "--registry", url, "--format", "json"]) == 0
    document = json.loads(capsys.readouterr().out)
    assert document["readers"]["older"] == 1 and document["count"] >= 2
    assert main(["explain", "shop.orders", "--at", "2024-01-10", "--registry", url]) == 0
    assert "billing__daily @ 2024-01-10T05:00:00+00:00 via wait__shop__orders: read older data" in \
        capsys.readouterr().out


@pytest.mark.parametrize(("used", "resolved_minutes", "expected"), [
    (2, 0, CURRENT), (1, 0, OLDER), (None, 30, CURRENT), (None, -30, OLDER)])
def test_read_verdict(used, resolved_minutes, expected):
    class C:
        def __init__(self, id_, state="success"):
            self.id, self.state, self.completed_at = id_, state, DAY
    tries = [C(1), C(2)]
    assert read_verdict(used, DAY + timedelta(minutes=resolved_minutes), tries, tries[-1]) == expected
    assert read_verdict(1, DAY, [C(1), C(2, "failed")], None) == OLDER  # the re-run failed: nothing stands
