"""SLO history arithmetic (handoff.slo), checked against values computed by hand."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from handoff.sla import Sla
from handoff.sla_runs import SlaModel
from handoff.slo import domain_slos, edge_slo, model_slo, percentile, render, suggest

DAY0 = datetime(2026, 3, 1, tzinfo=UTC)
# completion of each daily 03:00 run, hours after the run; None: never succeeded
OFFSETS_H = [2.5, 2.75, 3.25, 2.0, 4.0, 2.5, 2.5, 3.0, 5.0, None]


BY_SIX = Sla("06:00")


def _orders(sla: Sla = BY_SIX) -> SlaModel:
    return SlaModel(domain="marketplace", dag_id="marketplace__daily", task_id="mrt_orders", model="mrt_orders",
                    schedule="0 3 * * *", timezone="UTC", start_date=f"{DAY0:%Y-%m-%d}", sla=sla)


def _done() -> dict[datetime, datetime]:
    runs = [DAY0 + timedelta(days=i, hours=3) for i in range(len(OFFSETS_H))]
    return {run: run + timedelta(hours=h) for run, h in zip(runs, OFFSETS_H, strict=True) if h is not None}


UNTIL = DAY0 + timedelta(days=9, hours=12)  # the 10th run is due (06:00) and never succeeded


def test_percentile_is_nearest_rank() -> None:
    assert percentile([5, 1, 3], 50) == 3
    assert percentile(list(range(1, 21)), 95) == 19  # rank ceil(19.0) = 19
    assert percentile(list(range(1, 22)), 95) == 20  # rank ceil(19.95) = 20
    assert percentile([7], 95) == 7
    with pytest.raises(ValueError):
        percentile([], 95)


def test_model_on_time_rate_median_p95_worst_miss_and_suggestion_by_hand() -> None:
    slo = model_slo(_orders(), _done(), DAY0, UNTIL)
    # on time (<= 3h after the run, i.e. by 06:00): 2.5 2.75 2.0 2.5 2.5 3.0 -> 6 of 10 due runs
    assert (slo.runs, slo.completed, slo.missing, slo.on_time) == (10, 9, 1, 6)
    assert slo.on_time_rate == pytest.approx(0.6)
    # sorted: 2.0 2.5 2.5 2.5 2.75 3.0 3.25 4.0 5.0 -> median 2.75h; p95 rank ceil(8.55) = 9 -> 5.0h
    assert slo.median_s == 2.75 * 3600
    assert slo.p95_s == 5 * 3600
    assert slo.worst_miss_s == 2 * 3600  # 5.0h against a 3h deadline
    assert slo.promise == "available_by 06:00 UTC"
    assert slo.suggested == "available_by 08:00"  # 03:00 + 5h


def test_a_run_not_yet_due_and_not_done_is_not_judged() -> None:
    before_deadline = DAY0 + timedelta(days=9, hours=5)  # the 10th run started, due at 06:00
    slo = model_slo(_orders(), _done(), DAY0, before_deadline)
    assert (slo.runs, slo.missing, slo.on_time) == (9, 0, 6)


def test_without_an_sla_only_completion_times_and_a_suggestion() -> None:
    slo = model_slo(_orders(Sla()), _done(), DAY0, UNTIL)
    assert (slo.promise, slo.on_time, slo.on_time_rate, slo.worst_miss_s) == (None, None, None, None)
    assert (slo.runs, slo.missing) == (9, 0)  # without a deadline nothing is ever due
    assert slo.suggested == "available_by 08:00"


def test_suggestion_forms_follow_the_schedule_and_timezone() -> None:
    hourly = SlaModel("web", "web__hourly", "sessions", "sessions", "0 * * * *", "UTC", "2026-03-01", Sla(None, 2700))
    assert suggest(hourly, 50 * 60, DAY0) == "available_within 1h"  # rounded up to the quarter hour
    assert suggest(hourly, 1, DAY0) == "available_within 15m"
    berlin = SlaModel("fin", "fin__daily", "rev", "rev", "0 5 * * *", "Europe/Berlin", "2026-03-01", Sla("07:30"))
    summer = datetime(2026, 7, 1, 3, 0, tzinfo=UTC)  # 05:00 CEST
    assert suggest(berlin, 2.2 * 3600, summer) == "available_by 07:15"  # wall clock, not UTC
    late = SlaModel("fin", "fin__daily", "rev", "rev", "0 22 * * *", "UTC", "2026-03-01", Sla(None, 3600))
    assert suggest(late, 3 * 3600, DAY0 + timedelta(hours=22)) == "available_within 3h"  # past midnight


def test_edge_ready_at_start_and_wait_by_hand() -> None:
    edge = edge_slo(_orders(), _done(), "finance", "finance__daily", "0 5 * * *", "UTC", DAY0, UNTIL)
    # finance starts at 05:00 = 2h after the upstream run: only 2.0 was there; 1 never arrived
    assert (edge.runs, edge.ready_at_start, edge.missing) == (10, 1, 1)
    assert edge.ready_rate == pytest.approx(0.1)
    # waits (h): 0.5 0.75 1.25 2.0 0.5 0.5 1.0 3.0 -> nearest rank ceil(7.6) = 8 -> 3.0h
    assert edge.wait_p95_s == 3 * 3600


def test_domain_summary_pools_runs_and_names_the_weakest_model() -> None:
    orders = model_slo(_orders(), _done(), DAY0, UNTIL)
    perfect = model_slo(_orders(Sla("09:00")), _done(), DAY0, UNTIL)  # 03:00 + 6h covers 5.0h
    [domain] = domain_slos([orders, perfect])
    assert perfect.on_time_rate == pytest.approx(0.9)  # the missing run still counts against it
    assert (domain.models, domain.with_sla, domain.runs) == (2, 2, 20)
    assert domain.on_time_rate == pytest.approx(15 / 20)
    assert domain.worst == "mrt_orders (60.0%)"


def test_render_names_every_column() -> None:
    from handoff.slo import SloReport

    orders = model_slo(_orders(), _done(), DAY0, UNTIL)
    text = render(SloReport(DAY0, UNTIL, [orders], domain_slos([orders]), []))
    assert "marketplace.mrt_orders" in text and "60.0%" in text and "2h45m" in text and "5h00m" in text
    assert "available_by 08:00" in text
