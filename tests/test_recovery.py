"""Reconciliation logic against a real registry (SQLite) and a stateful in-memory Airflow API.

The real Airflow REST API is exercised end to end in tests/airflow/test_recovery_e2e.py; here
the API is a small stateful stand-in (same 409 semantics as Airflow's PATCH) so that every
branch — idempotence, alignment, which sensors are touched — is checked in milliseconds.
"""

from __future__ import annotations

from datetime import datetime, timezone

import pytest

from handoff.manifest import load_manifest
from handoff.plan import compile_manifest
from handoff.recovery import handle_completion, reconcile_completion, run_state

UTC = timezone.utc
SENSOR = "wait__marketplace__mrt_orders"


class FakeAirflow:
    """DAG runs and task-instance states, answering like Airflow's API v2 does."""

    def __init__(self) -> None:
        self.runs: dict[str, list[dict]] = {}
        self.states: dict[tuple[str, str, str], str | None] = {}
        self.patches: list[tuple[str, str, str, str]] = []

    def add_run(self, dag_id: str, logical: datetime, states: dict[str, str | None]) -> str:
        run_id = f"scheduled__{logical.isoformat()}"
        self.runs.setdefault(dag_id, []).append({"dag_run_id": run_id, "logical_date": logical.isoformat(),
                                                 "run_after": logical.isoformat()})
        for task, state in states.items():
            self.states[(dag_id, run_id, task)] = state
        return run_id

    def list_dag_runs(self, dag_id, *, logical_date_gte=None, logical_date_lte=None, states=()):
        return [r for r in self.runs.get(dag_id, [])
                if (logical_date_gte is None or datetime.fromisoformat(r["logical_date"]) >= logical_date_gte)
                and (logical_date_lte is None or datetime.fromisoformat(r["logical_date"]) <= logical_date_lte)]

    def get_task_instance(self, dag_id, run_id, task_id):
        return {"state": self.states[(dag_id, run_id, task_id)]}

    def set_task_state(self, dag_id, run_id, task_id, state="success", *, note=None):
        if self.states[(dag_id, run_id, task_id)] == state:
            return False  # Airflow answers 409
        self.patches.append((dag_id, run_id, task_id, state))
        self.states[(dag_id, run_id, task_id)] = state
        return True


@pytest.fixture
def registry(example_manifests, tmp_path):
    from handoff.registry import Registry

    plans = [compile_manifest(load_manifest(example_manifests.manifests[d]))
             for d in ("marketplace", "finance", "marketing")]
    with Registry(f"sqlite:///{tmp_path / 'registry.db'}") as reg:
        reg.publish(plans)
        yield reg


DAY = datetime(2026, 3, 2, tzinfo=UTC)
UPSTREAM_TICK = DAY.replace(hour=3)  # marketplace__daily, 0 3 * * *
FINANCE_TICK = DAY.replace(hour=5)  # finance__daily, 0 5 * * *


def test_a_timed_out_sensor_is_satisfied_once(registry):
    api = FakeAirflow()
    run = api.add_run("finance__daily", FINANCE_TICK, {SENSOR: "failed"})
    first = handle_completion(registry, api, dag_id="marketplace__daily", task_id="mrt_orders",
                              run_id="m1", logical_date=UPSTREAM_TICK, run_after=UPSTREAM_TICK)
    assert [(a.dag_id, a.run_id, a.sensor_task_id, a.previous_state, a.action) for a in first] == [
        ("finance__daily", run, SENSOR, "failed", "satisfied")]
    assert api.patches == [("finance__daily", run, SENSOR, "success")]

    again = handle_completion(registry, api, dag_id="marketplace__daily", task_id="mrt_orders",
                              run_id="m1", logical_date=UPSTREAM_TICK, run_after=UPSTREAM_TICK, source="sweep")
    assert [a.action for a in again] == ["already_satisfied"]
    assert len(api.patches) == 1  # nothing done twice
    [completion] = registry.completions(dag_id="marketplace__daily", task_id="mrt_orders")
    assert completion.source == "callback"  # the first record stands
    resolutions = registry.resolutions(dag_id="finance__daily", run_id=run)
    assert [(r.how, r.previous_state) for r in resolutions] == [("reconcile", "failed")]


@pytest.mark.parametrize("state", ["up_for_reschedule", "deferred", "running", "queued", "scheduled", None,
                                   "skipped", "up_for_retry"])
def test_waiting_states_are_satisfied(registry, state):
    api = FakeAirflow()
    run = api.add_run("finance__daily", FINANCE_TICK, {SENSOR: state})
    actions = reconcile_completion(registry, api, "marketplace__daily", "mrt_orders", UPSTREAM_TICK)
    assert [(a.run_id, a.action, a.previous_state) for a in actions] == [(run, "satisfied", state)]


def test_a_sensor_that_poked_successfully_is_recorded_not_patched(registry):
    api = FakeAirflow()
    run = api.add_run("finance__daily", FINANCE_TICK, {SENSOR: "success"})
    actions = reconcile_completion(registry, api, "marketplace__daily", "mrt_orders", UPSTREAM_TICK)
    assert [a.action for a in actions] == ["already_satisfied"] and api.patches == []
    assert [r.how for r in registry.resolutions(dag_id="finance__daily", run_id=run)] == ["poke"]


def test_only_aligned_runs_of_registered_sensors_are_touched(registry):
    api = FakeAirflow()
    today = api.add_run("finance__daily", FINANCE_TICK, {SENSOR: "failed"})
    tomorrow = api.add_run("finance__daily", FINANCE_TICK.replace(day=3), {SENSOR: "failed"})
    # marketing waits on marketplace.mrt_items, not mrt_orders: untouched
    marketing = api.add_run("marketing__daily", DAY.replace(hour=6),
                            {"wait__marketplace__mrt_items": "failed", "wait__finance__mrt_revenue": "failed"})
    actions = reconcile_completion(registry, api, "marketplace__daily", "mrt_orders", UPSTREAM_TICK)
    assert [(a.run_id, a.action) for a in actions] == [(today, "satisfied")]
    assert api.states[("finance__daily", tomorrow, SENSOR)] == "failed"
    assert api.states[("marketing__daily", marketing, "wait__marketplace__mrt_items")] == "failed"
    # marketplace.mrt_items' completion satisfies marketing's sensor on it, and only that one
    actions = reconcile_completion(registry, api, "marketplace__daily", "mrt_items", UPSTREAM_TICK)
    assert [(a.dag_id, a.sensor_task_id) for a in actions] == [("marketing__daily", "wait__marketplace__mrt_items")]
    assert api.states[("marketing__daily", marketing, "wait__finance__mrt_revenue")] == "failed"


def test_an_off_schedule_upstream_run_satisfies_nothing(registry):
    api = FakeAirflow()
    api.add_run("finance__daily", FINANCE_TICK, {SENSOR: "failed"})
    assert reconcile_completion(registry, api, "marketplace__daily", "mrt_orders", UPSTREAM_TICK.replace(minute=7)) == []
    assert api.patches == []


def test_a_task_nobody_waits_on_reconciles_nothing(registry):
    api = FakeAirflow()
    assert reconcile_completion(registry, api, "marketplace__daily", "stg_orders", UPSTREAM_TICK) == []


def test_run_state_says_why(registry):
    explained = registry.explain("finance", "mrt_revenue")
    waiting = run_state(registry, explained, FINANCE_TICK)
    [sensor] = waiting["sensors"]
    assert waiting["run_logical_date"] == FINANCE_TICK.isoformat()
    assert (sensor["sensor_task_id"], sensor["verdict"]) == (SENSOR, "waiting on upstream")
    assert sensor["upstream_task"] == "marketplace__daily.mrt_orders"
    assert sensor["upstream_run_date"] == UPSTREAM_TICK.isoformat()

    api = FakeAirflow()
    api.add_run("finance__daily", FINANCE_TICK, {SENSOR: "failed"})
    handle_completion(registry, api, dag_id="marketplace__daily", task_id="mrt_orders", run_id="m1",
                      logical_date=UPSTREAM_TICK, run_after=UPSTREAM_TICK)
    # any moment of that day after 05:00 means the 05:00 run
    [sensor] = run_state(registry, explained, DAY.replace(hour=23, minute=59), api)["sensors"]
    assert (sensor["verdict"], sensor["state_before"], sensor["recorded_by"]) == ("satisfied by reconcile", "failed",
                                                                                  "callback")
    assert list(sensor["live_states"].values()) == ["success"]


def test_explain_at_a_date_from_the_cli(registry):
    import subprocess
    import sys

    api = FakeAirflow()
    api.add_run("finance__daily", FINANCE_TICK, {SENSOR: "up_for_reschedule"})
    handle_completion(registry, api, dag_id="marketplace__daily", task_id="mrt_orders", run_id="m1",
                      logical_date=UPSTREAM_TICK, run_after=UPSTREAM_TICK)
    base = [sys.executable, "-m", "handoff.cli", "explain", "finance.mrt_revenue", "--registry", registry.url]
    env = {k: v for k, v in __import__("os").environ.items() if not k.startswith("HANDOFF_AIRFLOW_API")}
    done = subprocess.run([*base, "--at", "2026-03-02"], capture_output=True, text=True, env=env)
    assert done.returncode == 0, done.stderr
    assert "Run of finance__daily at 2026-03-02T05:00:00+00:00:" in done.stdout
    assert f"{SENSOR} -> marketplace.mrt_orders: satisfied by reconcile" in done.stdout
    assert "(the sensor was up_for_reschedule)" in done.stdout
    # the day before: nothing recorded yet for marketplace's run at 03:00 that day
    done = subprocess.run([*base, "--at", "2026-03-01T23:00", "--format", "json"], capture_output=True, text=True,
                          env=env)
    import json

    [sensor] = json.loads(done.stdout)["run"]["sensors"]
    assert (sensor["verdict"], sensor["upstream_run_date"]) == ("waiting on upstream", "2026-03-01T03:00:00+00:00")
    bad = subprocess.run([*base, "--at", "tomorrow"], capture_output=True, text=True, env=env)
    assert bad.returncode == 2 and len(bad.stderr.splitlines()) == 1 and "--at 'tomorrow' is not a date" in bad.stderr
