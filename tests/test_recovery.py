"""Reconciliation logic against a real registry (SQLite) and a stateful in-memory Airflow API.

The real Airflow REST API is exercised end to end in tests/airflow/test_recovery_e2e.py; here
the API is a small stateful stand-in (same 404/409 semantics as Airflow's, same row shapes) so
that every branch — which try counts, alignment, which sensors are touched, refusals, claims,
explain --at — is checked in milliseconds. The rule itself: tests/test_recovery_rule.py.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import datetime, timedelta, timezone

import pytest
from handoff.explain_run import run_state, run_state_text
from handoff.manifest import load_manifest
from handoff.plan import compile_manifest
from handoff.plan_model import Plan
from handoff.recovery import find_completion, handle_completion, reconcile_completion, sweep

UTC = timezone.utc
SENSOR = "wait__marketplace__mrt_orders"
UPSTREAM_RUN = "scheduled__2026-03-02T03:00:00+00:00"


def iso(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


class FakeAirflow:
    """DAG runs, task instances and the event log, answering like Airflow's API v2 does."""

    def __init__(self) -> None:
        self.runs: dict[str, list[dict]] = {}
        self.tis: dict[tuple[str, str, str], dict] = {}
        self.events: list[dict] = []
        self.patches: list[tuple[str, str, str, str]] = []
        self.downstream: dict[str, dict[str, list[str]]] = {}  # dag_id -> task_id -> downstream task ids

    def add_run(self, dag_id: str, logical: datetime, states: dict[str, str | None], *, run_state="running",
                run_id: str | None = None, try_number: int = 1) -> str:
        run_id = run_id or f"scheduled__{logical.isoformat()}"
        self.runs.setdefault(dag_id, []).append({"dag_run_id": run_id, "logical_date": iso(logical),
                                                 "run_after": iso(logical), "state": run_state,
                                                 "queued_at": iso(logical)})
        for task, state in states.items():
            self.tis[(dag_id, run_id, task)] = {
                "task_id": task, "dag_id": dag_id, "dag_run_id": run_id, "state": state, "try_number": try_number,
                "logical_date": iso(logical), "run_after": iso(logical), "start_date": iso(logical),
                "end_date": iso(logical + timedelta(hours=1)) if state in ("failed", "success", "skipped") else None}
        return run_id

    def own_failure(self, dag_id: str, run_id: str, task_id: str) -> None:
        ti = self.tis[(dag_id, run_id, task_id)]
        self._event("failed", dag_id, run_id, task_id, owner="team-finance", try_number=ti["try_number"])

    def person(self, who: str, dag_id: str, run_id: str, *, task_id: str | None = None, state: str) -> None:
        if task_id:
            self.tis[(dag_id, run_id, task_id)]["state"] = state
            self._event("patch_task_instance", dag_id, run_id, task_id, owner=who, extra={"new_state": state})
        else:
            next(r for r in self.runs[dag_id] if r["dag_run_id"] == run_id)["state"] = state
            self._event("patch_dag_run", dag_id, run_id, None, owner=who, extra={"state": state})

    def _event(self, event, dag_id, run_id, task_id, *, owner, try_number=None, extra=None) -> None:
        self.events.append({"event_log_id": len(self.events) + 1, "when": "2026-03-02T05:12:00Z", "event": event,
                            "dag_id": dag_id, "run_id": run_id, "task_id": task_id, "try_number": try_number,
                            "owner": owner, "extra": json.dumps(extra) if extra else None})

    # -- the AirflowApi methods recovery calls --
    def list_dag_runs(self, dag_id, *, logical_date_gte=None, logical_date_lte=None, states=()):
        def when(r):
            return datetime.fromisoformat(r["logical_date"].replace("Z", "+00:00"))
        return [r for r in self.runs.get(dag_id, [])
                if (logical_date_gte is None or when(r) >= logical_date_gte)
                and (logical_date_lte is None or when(r) <= logical_date_lte)]

    def find_task_instance(self, dag_id, run_id, task_id):
        found = self.tis.get((dag_id, run_id, task_id))
        return dict(found) if found else None

    def get_task_instance(self, dag_id, run_id, task_id):
        return dict(self.tis[(dag_id, run_id, task_id)])

    def set_task_state(self, dag_id, run_id, task_id, state="success", *, note=None):
        if self.tis[(dag_id, run_id, task_id)]["state"] == state:
            return False  # Airflow answers 409
        self.patches.append((dag_id, run_id, task_id, state))
        self.tis[(dag_id, run_id, task_id)]["state"] = state
        return True

    def list_task_instances(self, dag_id="~", run_id="~", *, task_id=None, states=(), **_):
        return [dict(ti) for (d, r, t), ti in self.tis.items() if d == dag_id and r == run_id
                and (task_id is None or t == task_id) and (not states or ti["state"] in states)]

    def list_tasks(self, dag_id):
        return [{"task_id": t, "downstream_task_ids": down} for t, down in self.downstream.get(dag_id, {}).items()]

    def list_event_logs(self, dag_id, *, run_id=None, task_id=None, events=(), after=None):
        return [e for e in self.events if e["dag_id"] == dag_id and (run_id is None or e["run_id"] == run_id)
                and (task_id is None or e["task_id"] == task_id) and (not events or e["event"] in events)]

    def recent_successes(self, since, *, dag_id="~", task_id=None):
        return [dict(ti) for (d, _, t), ti in self.tis.items()
                if d == dag_id and t == task_id and ti["state"] == "success"]


@pytest.fixture
def registry(example_manifests, tmp_path):
    from handoff.registry import Registry

    plans = [compile_manifest(load_manifest(example_manifests.manifests[d])).to_json()
             for d in ("marketplace", "finance", "marketing")]
    for plan in plans:
        for pipeline in plan["pipelines"]:
            for task in pipeline["tasks"]:
                if task["kind"] == "sensor":
                    task["timeout_s"] = 3600  # the fake's failures last an hour: timed out
    with Registry(f"sqlite:///{tmp_path / 'registry.db'}") as reg:
        reg.publish([Plan.from_json(p) for p in plans])
        yield reg


DAY = datetime(2026, 3, 2, tzinfo=UTC)
UPSTREAM_TICK = DAY.replace(hour=3)  # marketplace__daily, 0 3 * * *
FINANCE_TICK = DAY.replace(hour=5)  # finance__daily, 0 5 * * *


def upstream_done(api: FakeAirflow, tick: datetime = UPSTREAM_TICK, try_number: int = 1) -> str:
    return api.add_run("marketplace__daily", tick, {"mrt_orders": "success", "mrt_items": "success"},
                       run_state="success", try_number=try_number)


def complete(registry, api, tick=UPSTREAM_TICK, try_number=1, source="callback"):
    return handle_completion(registry, api, dag_id="marketplace__daily", task_id="mrt_orders",
                             run_id=f"scheduled__{tick.isoformat()}", logical_date=tick, run_after=tick,
                             try_number=try_number, source=source)


def test_a_timed_out_sensor_is_satisfied_once(registry):
    api = FakeAirflow()
    upstream_done(api)
    run = api.add_run("finance__daily", FINANCE_TICK, {SENSOR: "failed"}, run_state="failed")
    api.own_failure("finance__daily", run, SENSOR)
    first = complete(registry, api)
    assert [(a.dag_id, a.run_id, a.sensor_task_id, a.previous_state, a.action, a.reason) for a in first] == [
        ("finance__daily", run, SENSOR, "failed", "satisfied", "timed_out")]
    assert api.patches == [("finance__daily", run, SENSOR, "success")]

    again = complete(registry, api, source="sweep")
    assert [a.action for a in again] == ["already_satisfied"]
    assert len(api.patches) == 1  # nothing done twice
    [completion] = registry.completions(dag_id="marketplace__daily", task_id="mrt_orders")
    assert (completion.source, completion.try_number) == ("callback", 1)  # the first record stands
    resolutions = registry.resolutions(dag_id="finance__daily", run_id=run)
    assert [(r.how, r.previous_state, r.status, r.run_logical_date) for r in resolutions] == [
        ("reconcile", "failed", "done", FINANCE_TICK)]


@pytest.mark.parametrize("state", ["up_for_reschedule", "deferred", "running", "queued", "scheduled", None])
def test_waiting_states_are_satisfied(registry, state):
    api = FakeAirflow()
    upstream_done(api)
    run = api.add_run("finance__daily", FINANCE_TICK, {SENSOR: state})
    actions = complete(registry, api)
    assert [(a.run_id, a.action, a.previous_state) for a in actions] == [(run, "satisfied", state)]


@pytest.mark.parametrize(("acted", "reason", "detail"), [
    ("skip the sensor", "skipped", "skipped by operator at 2026-03-02 05:12 UTC"),
    ("fail the sensor", "failed_by_person", "failed by operator at 2026-03-02 05:12 UTC"),
    ("fail the run", "run_failed_by_person", "operator marked the run failed at 2026-03-02 05:12 UTC"),
])
def test_what_a_person_decided_is_left_alone_and_recorded_once(registry, acted, reason, detail):
    api = FakeAirflow()
    upstream_done(api)
    run = api.add_run("finance__daily", FINANCE_TICK, {SENSOR: "deferred"})
    if acted == "fail the run":
        api.tis[("finance__daily", run, SENSOR)]["state"] = "failed"  # what Airflow does to a deferred sensor
        api.person("operator", "finance__daily", run, state="failed")
    else:
        api.person("operator", "finance__daily", run, task_id=SENSOR, state=acted.split()[0].replace("skip", "skipped")
                   .replace("fail", "failed"))
    for _ in range(2):  # the callback, then a sweep
        [action] = complete(registry, api)
        assert (action.action, action.reason) == ("left", reason) and action.detail.startswith(detail)
    assert api.patches == []
    [refusal] = registry.refusals(dag_id="finance__daily", run_id=run)
    assert (refusal.reason, refusal.actor, refusal.run_logical_date) == (reason, "operator", FINANCE_TICK)


def test_a_claim_held_by_another_reconciler_sends_no_second_patch(registry):
    api = FakeAirflow()
    upstream_done(api)
    run = api.add_run("finance__daily", FINANCE_TICK, {SENSOR: "deferred"})
    completion = registry.record_completion("marketplace__daily", "mrt_orders", UPSTREAM_RUN, UPSTREAM_TICK)
    assert registry.claim_resolution("finance__daily", run, SENSOR, try_number=1, completion_id=completion.id,
                                     previous_state="deferred", run_logical_date=FINANCE_TICK) is not None
    [action] = reconcile_completion(registry, api, completion)
    assert (action.action, action.reason) == ("already_satisfied", "claimed") and api.patches == []


def test_a_failed_patch_gives_the_claim_back(registry):
    api = FakeAirflow()
    upstream_done(api)
    run = api.add_run("finance__daily", FINANCE_TICK, {SENSOR: "deferred"})

    def unreachable(*_args, **_kwargs):
        from handoff.errors import HandoffError

        raise HandoffError("cannot reach the Airflow API")

    api.set_task_state, working = unreachable, api.set_task_state
    with pytest.raises(Exception, match="cannot reach"):
        complete(registry, api)
    assert registry.resolutions(dag_id="finance__daily", run_id=run) == []
    api.set_task_state = working
    assert [a.action for a in complete(registry, api, source="sweep")] == ["satisfied"]


def test_a_completion_superseded_by_a_failed_retry_satisfies_nothing(registry):
    api = FakeAirflow()
    upstream = upstream_done(api)
    run = api.add_run("finance__daily", FINANCE_TICK, {SENSOR: "deferred"})
    stale = registry.record_completion("marketplace__daily", "mrt_orders", upstream, UPSTREAM_TICK, try_number=1)
    api.tis[("marketplace__daily", upstream, "mrt_orders")].update(state="failed", try_number=2)  # cleared, failed
    actions = reconcile_completion(registry, api, stale)
    assert [(a.action, a.reason) for a in actions] == [("left", "superseded")] and api.patches == []
    assert "try 1 of marketplace__daily.mrt_orders is superseded: the task instance is at try 2, failed" in \
        actions[0].detail
    # the failed try was recorded: the registry alone now knows there is no valid completion
    assert find_completion(registry, "marketplace__daily", "mrt_orders", UPSTREAM_TICK) is None
    assert api.tis[("finance__daily", run, SENSOR)]["state"] == "deferred"
    # a new successful try 3 counts again
    api.tis[("marketplace__daily", upstream, "mrt_orders")].update(state="success", try_number=3)
    assert [a.action for a in complete(registry, api, try_number=3)] == ["satisfied"]


def test_the_sweep_records_the_latest_try_it_finds(registry):
    api = FakeAirflow()
    upstream_done(api, try_number=2)
    api.add_run("finance__daily", FINANCE_TICK, {SENSOR: "deferred"})
    assert [a.action for a in sweep(registry, api, since=DAY)] == ["satisfied"]
    [completion] = registry.completions(dag_id="marketplace__daily", task_id="mrt_orders")
    assert (completion.try_number, completion.source) == (2, "sweep")


def test_only_aligned_runs_of_registered_sensors_are_touched(registry):
    api = FakeAirflow()
    upstream_done(api)
    today = api.add_run("finance__daily", FINANCE_TICK, {SENSOR: "deferred"})
    tomorrow = api.add_run("finance__daily", FINANCE_TICK.replace(day=3), {SENSOR: "deferred"})
    # marketing waits on marketplace.mrt_items, not mrt_orders: untouched
    marketing = api.add_run("marketing__daily", DAY.replace(hour=6),
                            {"wait__marketplace__mrt_items": "deferred", "wait__finance__mrt_revenue": "deferred"})
    assert [(a.run_id, a.action) for a in complete(registry, api)] == [(today, "satisfied")]
    assert api.tis[("finance__daily", tomorrow, SENSOR)]["state"] == "deferred"
    assert api.tis[("marketing__daily", marketing, "wait__marketplace__mrt_items")]["state"] == "deferred"
    # marketplace.mrt_items' completion satisfies marketing's sensor on it, and only that one
    actions = handle_completion(registry, api, dag_id="marketplace__daily", task_id="mrt_items",
                                run_id=f"scheduled__{UPSTREAM_TICK.isoformat()}", logical_date=UPSTREAM_TICK,
                                run_after=UPSTREAM_TICK)
    assert [(a.dag_id, a.sensor_task_id) for a in actions] == [("marketing__daily", "wait__marketplace__mrt_items")]
    assert api.tis[("marketing__daily", marketing, "wait__finance__mrt_revenue")]["state"] == "deferred"


def test_an_off_schedule_upstream_run_satisfies_nothing(registry):
    api = FakeAirflow()
    off = UPSTREAM_TICK.replace(minute=7)
    api.add_run("marketplace__daily", off, {"mrt_orders": "success"}, run_state="success")
    api.add_run("finance__daily", FINANCE_TICK, {SENSOR: "deferred"})
    assert complete(registry, api, tick=off) == []
    assert api.patches == []


def test_a_task_nobody_waits_on_reconciles_nothing(registry):
    api = FakeAirflow()
    assert handle_completion(registry, api, dag_id="marketplace__daily", task_id="stg_orders", run_id="r",
                             logical_date=UPSTREAM_TICK, run_after=UPSTREAM_TICK) == []


def test_run_state_says_why_for_that_run_only(registry):
    explained = registry.explain("finance", "mrt_revenue")
    [sensor] = run_state(registry, explained, FINANCE_TICK)["sensors"]
    assert (sensor["sensor_task_id"], sensor["verdict"]) == (SENSOR, "waiting on upstream")
    assert (sensor["upstream_task"], sensor["upstream_run_date"]) == (
        "marketplace__daily.mrt_orders", UPSTREAM_TICK.isoformat())

    api = FakeAirflow()
    upstream_done(api)
    upstream_done(api, tick=UPSTREAM_TICK + timedelta(days=1))
    today = api.add_run("finance__daily", FINANCE_TICK, {SENSOR: "deferred"})
    tomorrow = api.add_run("finance__daily", FINANCE_TICK + timedelta(days=1), {SENSOR: "deferred"})
    api.person("operator", "finance__daily", tomorrow, task_id=SENSOR, state="skipped")
    complete(registry, api)
    complete(registry, api, tick=UPSTREAM_TICK + timedelta(days=1))
    # any moment of that day after 05:00 means that day's 05:00 run, and only its records
    state = run_state(registry, explained, DAY.replace(hour=23, minute=59), api)
    [sensor] = state["sensors"]
    assert state["runs"] == [today]
    assert (sensor["verdict"], sensor["state_before"], sensor["recorded_by"], sensor["run_id"]) == (
        "satisfied by reconcile", "deferred", "callback", today)
    assert sensor["live_states"] == {today: "success"}
    [sensor] = run_state(registry, explained, DAY + timedelta(days=1, hours=6))["sensors"]
    assert sensor["verdict"] == ("left alone: skipped by operator at 2026-03-02 05:12 UTC; "
                                 "handoff never satisfies a skipped sensor")
    assert (sensor["actor"], sensor["reason"], sensor["run_id"]) == ("operator", "skipped", tomorrow)


def test_run_state_says_when_a_completion_was_superseded(registry):
    explained = registry.explain("finance", "mrt_revenue")
    api = FakeAirflow()
    upstream = upstream_done(api)
    registry.record_completion("marketplace__daily", "mrt_orders", upstream, UPSTREAM_TICK, try_number=1)
    registry.record_completion("marketplace__daily", "mrt_orders", upstream, UPSTREAM_TICK, try_number=2,
                               state="failed")
    [sensor] = run_state(registry, explained, FINANCE_TICK)["sensors"]  # from the registry alone
    assert sensor["verdict"] == "upstream completion superseded"
    assert sensor["superseded"][0].startswith("try 1 (success, ") and "superseded by try 2 (failed," in \
        sensor["superseded"][0]
    text = run_state_text({"dag_id": "finance__daily", "run_logical_date": FINANCE_TICK.isoformat(), "runs": [],
                           "sensors": [sensor]})
    assert f"{SENSOR} -> marketplace.mrt_orders: upstream completion superseded" in text
    assert "try 1 success at" in text and "try 2 failed at" in text
    # with the API, a try still running supersedes too, though nothing recorded it yet
    api.tis[("marketplace__daily", upstream, "mrt_orders")].update(state="running", try_number=3)
    registry.record_completion("marketplace__daily", "mrt_orders", upstream, UPSTREAM_TICK, try_number=2)
    [sensor] = run_state(registry, explained, FINANCE_TICK, api)["sensors"]
    assert sensor["upstream_live"] == {"run_id": upstream, "try_number": 3, "state": "running"}
    assert sensor["verdict"] == "upstream completion superseded"


def test_explain_at_a_date_from_the_cli(registry):
    api = FakeAirflow()
    upstream_done(api)
    api.add_run("finance__daily", FINANCE_TICK, {SENSOR: "up_for_reschedule"})
    complete(registry, api)
    base = [sys.executable, "-m", "handoff.cli", "explain", "finance.mrt_revenue", "--registry", registry.url]
    env = {k: v for k, v in os.environ.items() if not k.startswith("HANDOFF_AIRFLOW_API")}
    done = subprocess.run([*base, "--at", "2026-03-02"], capture_output=True, text=True, env=env)
    assert done.returncode == 0, done.stderr
    assert "Run of finance__daily at 2026-03-02T05:00:00+00:00:" in done.stdout
    assert f"{SENSOR} -> marketplace.mrt_orders: satisfied by reconcile" in done.stdout
    assert "(the sensor was up_for_reschedule)" in done.stdout
    # the day before: nothing recorded yet for marketplace's run at 03:00 that day
    done = subprocess.run([*base, "--at", "2026-03-01T23:00", "--format", "json"], capture_output=True, text=True,
                          env=env)
    [sensor] = json.loads(done.stdout)["run"]["sensors"]
    assert (sensor["verdict"], sensor["upstream_run_date"]) == ("waiting on upstream", "2026-03-01T03:00:00+00:00")
    bad = subprocess.run([*base, "--at", "tomorrow"], capture_output=True, text=True, env=env)
    assert bad.returncode == 2 and len(bad.stderr.splitlines()) == 1 and "--at 'tomorrow' is not a date" in bad.stderr


def test_a_model_the_batched_execution_settled_counts_with_its_try_0(registry):
    # batched execution sets a model task's state without starting a try: Airflow keeps try 0
    api = FakeAirflow()
    upstream_done(api, try_number=0)
    api.add_run("finance__daily", FINANCE_TICK, {SENSOR: "deferred"})
    assert [a.action for a in complete(registry, api, try_number=0)] == ["satisfied"]
    [completion] = registry.completions(dag_id="marketplace__daily", task_id="mrt_orders")
    assert completion.try_number == 0


def test_a_reader_a_person_marked_failed_keeps_the_timed_out_sensor_untouched(registry):
    api = FakeAirflow()
    api.downstream["finance__daily"] = {SENSOR: ["stg_marketplace_orders"], "stg_marketplace_orders": ["mrt_revenue"],
                                        "mrt_revenue": [], "stg_fx_rates": ["mrt_revenue"]}
    upstream_done(api)
    run = api.add_run("finance__daily", FINANCE_TICK, {SENSOR: "failed", "stg_marketplace_orders": "upstream_failed",
                                                       "mrt_revenue": "upstream_failed", "stg_fx_rates": "failed"},
                      run_state="failed")
    api.own_failure("finance__daily", run, SENSOR)
    # stg_fx_rates failed on its own (not below the sensor): no reason to leave the sensor
    [action] = complete(registry, api)
    assert action.action == "satisfied" and api.patches == [("finance__daily", run, SENSOR, "success")]

    api = FakeAirflow()
    api.downstream["finance__daily"] = {SENSOR: ["stg_marketplace_orders"], "stg_marketplace_orders": ["mrt_revenue"]}
    upstream_done(api, tick=UPSTREAM_TICK + timedelta(days=1))
    run = api.add_run("finance__daily", FINANCE_TICK + timedelta(days=1),
                      {SENSOR: "failed", "stg_marketplace_orders": "upstream_failed", "mrt_revenue": "upstream_failed"},
                      run_state="failed")
    api.own_failure("finance__daily", run, SENSOR)
    api.person("operator", "finance__daily", run, task_id="mrt_revenue", state="failed")  # "not today"
    [action] = complete(registry, api, tick=UPSTREAM_TICK + timedelta(days=1))
    assert (action.action, action.reason) == ("left", "marked_below_by_person"), action
    assert "mrt_revenue below the sensor is failed" in action.detail
    assert api.patches == []  # the sensor is not touched: Airflow would have cleared the person's mark
    [refusal] = [r for r in registry.refusals(dag_id="finance__daily", run_id=run)]
    assert refusal.reason == "marked_below_by_person"
