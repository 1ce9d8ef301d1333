"""The SLA verdicts of one run (Registry.run_slas + sla_verdict, read by `handoff explain --at` and
the run-status page through explain_run.run_state) over a real registry (SQLite, PostgreSQL).

Every completion is recorded by the callbacks' recording path (events.model_completed) and every
miss by the SLA watch (sla_watch.check); nothing is inserted by hand."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta

from handoff.explain_run import run_state, run_state_text
from handoff.notify import events, sla_watch
from handoff.notify.delivery import Delivery
from sqlalchemy import update

RUN = datetime(2026, 11, 24, 3, 0, tzinfo=UTC)  # marketplace__daily's tick
ITEMS_DUE = RUN.replace(hour=4)  # mrt_items: available_by 04:00
ORDERS_DUE = RUN.replace(hour=4, minute=30)  # mrt_orders: available_by 04:30
DAG = "marketplace__daily"
END_OF_DAY = RUN.replace(hour=23, minute=59)


def _succeed(registry, task_id: str, at: datetime, run: datetime = RUN) -> None:
    events.model_completed(registry, None, Delivery("off"), dag_id=DAG, task_id=task_id,
                           run_id=f"scheduled__{run.isoformat()}", logical_date=run, run_after=run, completed_at=at)


def _verdicts(registry, at: datetime, now: datetime, model: str | None = None) -> dict[str, dict]:
    explained = registry.explain("marketplace", model) if model else registry.pipeline_waits(DAG)
    state = run_state(registry, explained, at, None, now=now)
    return {v["task_id"]: v for v in state["slas"]}


def test_a_runs_sla_verdicts_met_missed_pending_and_the_watchs_record(registry) -> None:
    # published now (after RUN): a run of RUN with no success was not handoff's to watch
    early = _verdicts(registry, END_OF_DAY, ORDERS_DUE + timedelta(hours=1))
    assert set(early) == {"mrt_items", "mrt_orders"}  # the DAG's models with an SLA, no other
    assert {v["verdict"] for v in early.values()} == {"not watched"}
    from handoff.registry.schema import publications

    with registry.engine.begin() as conn:
        conn.execute(update(publications).values(published_at=RUN - timedelta(days=30)))

    before = _verdicts(registry, END_OF_DAY, RUN + timedelta(minutes=30))  # no success, deadlines ahead
    assert [(v["verdict"], v["deadline"]) for v in before.values()] == [
        ("pending", ITEMS_DUE.isoformat()), ("pending", ORDERS_DUE.isoformat())]
    assert before["mrt_orders"]["why"] == "no success yet; due in 1h00m"

    _succeed(registry, "mrt_items", ITEMS_DUE - timedelta(minutes=20))
    _succeed(registry, "mrt_orders", ORDERS_DUE + timedelta(minutes=40))
    now = ORDERS_DUE + timedelta(hours=1)
    found = _verdicts(registry, END_OF_DAY, now)
    items, orders = found["mrt_items"], found["mrt_orders"]
    assert (items["verdict"], items["late_s"], items["recorded"]) == ("met", -1200.0, False)
    assert items["finished_at"] == (ITEMS_DUE - timedelta(minutes=20)).isoformat()
    assert items["sla"] == "available_by 04:00 UTC" and items["why"] == "finished 20m before the deadline"
    assert (orders["verdict"], orders["late_s"], orders["recorded"]) == ("missed", 2400.0, False)
    assert "has not recorded it" in orders["why"]

    # the SLA watch records the late run: the verdict is now the recorded one
    report = sla_watch.check(registry, None, Delivery("off"), now=now, lookback=timedelta(hours=3))
    assert (report.met, [m["model"] for m in report.missed]) == (1, ["marketplace.mrt_orders"])
    orders = _verdicts(registry, END_OF_DAY, now)["mrt_orders"]
    assert (orders["verdict"], orders["recorded"], orders["state_at_deadline"]) == ("missed", True, "late")
    assert orders["deadline"] == ORDERS_DUE.isoformat() and orders["detected_at"] is not None
    assert orders["why"].startswith("the SLA watch recorded the miss at ") and "finished 40m after" in orders["why"]

    # the next day's run: nothing succeeded; past its deadlines and not yet recorded, it is missed
    nxt = _verdicts(registry, END_OF_DAY + timedelta(days=1), ORDERS_DUE + timedelta(days=1, seconds=1))
    assert [(v["verdict"], v["recorded"], v["finished_at"]) for v in nxt.values()] == [
        ("missed", False, None), ("missed", False, None)]
    assert nxt["mrt_orders"]["logical_date"] == (RUN + timedelta(days=1)).isoformat()

    # one model: only its own verdict; a date before the pipeline's start has no run
    assert list(_verdicts(registry, END_OF_DAY, now, model="mrt_items")) == ["mrt_items"]
    assert _verdicts(registry, END_OF_DAY, now, model="mrt_items")["mrt_items"]["verdict"] == "met"
    assert {v["verdict"] for v in _verdicts(registry, datetime(2023, 6, 1, 12, tzinfo=UTC), now).values()} == {
        "no run"}
    # a DAG of models without an SLA: no verdicts
    hourly = run_state(registry, registry.pipeline_waits("marketing__hourly"), END_OF_DAY, None, now=now)
    assert hourly["slas"] == []


def test_handoff_explain_at_prints_the_verdict(registry) -> None:
    from handoff.registry.schema import publications

    with registry.engine.begin() as conn:
        conn.execute(update(publications).values(published_at=RUN - timedelta(days=30)))
    _succeed(registry, "mrt_orders", ORDERS_DUE + timedelta(minutes=40))
    sla_watch.check(registry, None, Delivery("off"), now=ORDERS_DUE + timedelta(hours=1), lookback=timedelta(hours=3))
    state = run_state(registry, registry.explain("marketplace", "mrt_orders"), END_OF_DAY, None)
    assert "mrt_orders (available_by 04:30 UTC): missed - due 2026-11-24T04:30:00+00:00" in run_state_text(state)
    done = subprocess.run([sys.executable, "-m", "handoff.cli", "explain", "marketplace.mrt_orders", "--at",
                           "2026-11-24", "--registry", registry.url], capture_output=True, text=True,
                          env={**os.environ, "HANDOFF_AIRFLOW_API_URL": ""}, check=False)
    assert done.returncode == 0, done.stderr
    assert "SLA (deadlines in UTC):" in done.stdout
    assert ("mrt_orders (available_by 04:30 UTC): missed - due 2026-11-24T04:30:00+00:00, finished "
            "2026-11-24T05:10:00+00:00") in done.stdout
    assert "the SLA watch recorded the miss at" in done.stdout and "(at the deadline: late)" in done.stdout
