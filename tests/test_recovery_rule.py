"""The recovery rule (handoff.recovery_rule.decide), row by row of docs/recovery.md's decision table.

Inputs have the exact shapes Airflow 3.3.2's REST API returned on a real stack (tests/airflow/
test_recovery_e2e.py runs the same cases end to end): task instances from
``GET .../taskInstances/{task}``, runs from ``GET .../dagRuns/{run}``, events from
``GET /api/v2/eventLogs`` — "failed" with the try number when the task's own process failed,
"patch_task_instance" / "patch_dag_run" with the user and the request body when a person acted.
"""

from __future__ import annotations

import json
from datetime import datetime, timezone

import pytest
from handoff.recovery_rule import REASONS, decide, needs_events, person_actions

RUN = "manual__2026-11-30T04:07:15.221227+00:00"
OTHER_RUN = "manual__2026-11-30T04:07:15.540261+00:00"
SENSOR = "wait__marketplace__mrt_orders"
TIMEOUT = 75


def ti(state, *, try_number=1, start="2026-11-30T04:07:24.310598Z", end=None):
    return {"task_id": SENSOR, "dag_run_id": RUN, "state": state, "try_number": try_number,
            "start_date": start, "end_date": end}


def run(state="running", run_id=RUN):
    return {"dag_run_id": run_id, "state": state, "queued_at": "2026-11-30T04:07:15.3Z"}


class Log:
    """Event log rows in the order Airflow wrote them (ids ascending)."""

    def __init__(self) -> None:
        self.rows: list[dict] = []

    def add(self, event, when, *, task_id=SENSOR, run_id=RUN, try_number=None, owner="team-finance", extra=None):
        self.rows.append({"event_log_id": len(self.rows) + 1, "when": when, "dag_id": "finance__daily",
                          "task_id": task_id, "run_id": run_id, "try_number": try_number, "event": event,
                          "owner": owner, "extra": json.dumps(extra) if extra is not None else None})
        return self

    def own(self, state, when, try_number=1):  # the task's own process (execution API)
        return self.add(state, when, try_number=try_number, extra={"host_name": "vm"})

    def person_sets_sensor(self, state, when, who="operator"):
        return self.add("patch_task_instance", when, owner=who, extra={"new_state": state, "method": "PATCH"})

    def person_sets_run(self, state, when, who="operator", run_id=RUN):
        return self.add("patch_dag_run", when, task_id=None, run_id=run_id, owner=who,
                        extra={"state": state, "method": "PATCH"})


def deferred_then_timed_out(try_number=1):
    return (Log().own("running", "2026-11-30T04:07:24.34Z", try_number)
            .own("deferred", "2026-11-30T04:07:24.73Z", try_number)
            .own("running", "2026-11-30T04:08:39.89Z", try_number)
            .own("failed", "2026-11-30T04:08:40.38Z", try_number))


TIMED_OUT = ti("failed", end="2026-11-30T04:08:40.364665Z")  # 76 s after its start


@pytest.mark.parametrize("state", [None, "scheduled", "queued", "running", "up_for_reschedule", "deferred",
                                   "up_for_retry"])
def test_a_waiting_sensor_is_satisfied_without_reading_the_event_log(state):
    assert not needs_events(state, "running")
    verdict = decide(ti(state), run(), [], timeout_s=TIMEOUT)
    assert (verdict.action, verdict.reason) == ("satisfy", "waiting")


def test_a_sensor_already_in_success_is_only_recorded():
    assert decide(ti("success"), run("success"), [], timeout_s=TIMEOUT).action == "already_satisfied"


def test_a_sensor_failed_by_its_own_timeout_is_satisfied():
    verdict = decide(TIMED_OUT, run("failed"), deferred_then_timed_out().rows, timeout_s=TIMEOUT)
    assert (verdict.action, verdict.reason) == ("satisfy", "timed_out")
    assert verdict.detail == "the sensor timed out at 2026-11-30 04:08 UTC after 76 s"


def test_a_sensor_a_person_skipped_is_never_touched_and_the_verdict_names_them():
    events = Log().own("running", "2026-11-30T04:07:30.0Z").own("deferred", "2026-11-30T04:07:30.4Z") \
        .person_sets_sensor("skipped", "2026-11-30T05:12:35.6Z").rows
    verdict = decide(ti("skipped", end="2026-11-30T05:12:35.6Z"), run("success"), events, timeout_s=TIMEOUT)
    assert (verdict.action, verdict.reason, verdict.actor) == ("leave", "skipped", "operator")
    assert verdict.detail.startswith("skipped by operator at 2026-11-30 05:12 UTC")
    assert verdict.acted_at == datetime(2026, 11, 30, 5, 12, 35, 600000, tzinfo=timezone.utc)


def test_a_skipped_sensor_is_left_alone_even_when_nobody_is_found_in_the_log():
    verdict = decide(ti("skipped"), run("success"), [], timeout_s=TIMEOUT)
    assert (verdict.action, verdict.reason, verdict.actor) == ("leave", "skipped", None)
    assert "no person's action" in verdict.detail


def test_a_sensor_a_person_set_to_failed_is_left_alone():
    events = Log().own("running", "2026-11-30T04:07:26.2Z").own("deferred", "2026-11-30T04:07:26.7Z") \
        .person_sets_sensor("failed", "2026-11-30T04:07:33.9Z", who="alice").rows
    verdict = decide(ti("failed", end="2026-11-30T04:07:35.6Z"), run("failed"), events, timeout_s=TIMEOUT)
    assert (verdict.action, verdict.reason, verdict.actor) == ("leave", "failed_by_person", "alice")
    assert verdict.detail == "failed by alice at 2026-11-30 04:07 UTC"


def test_a_waiting_sensor_failed_by_a_person_marking_its_run_failed_is_left_alone():
    # what Airflow does: the deferred sensor becomes failed, waiting readers skipped; no own "failed"
    events = Log().own("running", "2026-11-30T04:07:30.6Z").own("deferred", "2026-11-30T04:07:31.1Z") \
        .person_sets_run("failed", "2026-11-30T04:07:41.2Z").rows
    verdict = decide(ti("failed", end="2026-11-30T04:07:41.5Z"), run("failed"), events, timeout_s=TIMEOUT)
    assert (verdict.action, verdict.reason) == ("leave", "run_failed_by_person")
    assert verdict.detail == "operator marked the run failed at 2026-11-30 04:07 UTC"


def test_a_timed_out_sensor_whose_run_a_person_then_marked_failed_is_left_alone():
    events = deferred_then_timed_out().person_sets_run("failed", "2026-11-30T04:09:00Z").rows
    verdict = decide(TIMED_OUT, run("failed"), events, timeout_s=TIMEOUT)
    assert (verdict.action, verdict.reason) == ("leave", "run_failed_by_person")
    assert verdict.detail.endswith("after the sensor failed")


def test_a_run_failed_in_bulk_by_a_person_is_left_alone():
    events = deferred_then_timed_out().add(
        "bulk_dag_runs", "2026-11-30T04:09:00Z", task_id=None, run_id=None, owner="bob",
        extra={"actions": [{"action": "update", "entities": [{"dag_run_id": OTHER_RUN, "state": "success"},
                                                             {"dag_run_id": RUN, "state": "failed"}]}]}).rows
    verdict = decide(TIMED_OUT, run("failed"), events, timeout_s=TIMEOUT)
    assert (verdict.action, verdict.reason, verdict.actor) == ("leave", "run_failed_by_person", "bob")


def test_what_a_person_did_before_clearing_the_sensor_no_longer_counts():
    # failed by a person in try 1, cleared by them, then try 2 timed out by itself
    events = Log().own("running", "2026-11-30T04:07:31.5Z").own("deferred", "2026-11-30T04:07:32.6Z") \
        .person_sets_sensor("failed", "2026-11-30T04:07:41.5Z") \
        .add("post_clear_task_instances", "2026-11-30T04:07:43.6Z", task_id=None, run_id=None, owner="operator",
             extra={"dag_run_id": RUN, "task_ids": [SENSOR], "dry_run": False}) \
        .own("running", "2026-11-30T04:07:46.8Z", 2).own("failed", "2026-11-30T04:09:10Z", 2).rows
    sensor = ti("failed", try_number=2, start="2026-11-30T04:07:46.8Z", end="2026-11-30T04:09:10Z")
    assert decide(sensor, run("failed"), events, timeout_s=TIMEOUT).reason == "timed_out"


def test_a_failure_before_the_timeout_is_an_error_and_is_left_alone():
    events = Log().own("running", "2026-11-30T04:07:24.3Z").own("failed", "2026-11-30T04:07:27.4Z").rows
    verdict = decide(ti("failed", end="2026-11-30T04:07:27.4Z"), run("failed"), events, timeout_s=TIMEOUT)
    assert (verdict.action, verdict.reason) == ("leave", "failed_not_timeout")
    assert "after 3 s, before its 75 s timeout" in verdict.detail


def test_a_failure_of_another_try_or_nothing_in_the_log_is_left_for_a_person():
    earlier_try = deferred_then_timed_out(try_number=1).rows
    verdict = decide(ti("failed", try_number=2, end="2026-11-30T04:09:00Z"), run("failed"), earlier_try,
                     timeout_s=TIMEOUT)
    assert (verdict.action, verdict.reason) == ("leave", "failed_unknown")
    assert decide(TIMED_OUT, run("failed"), [], timeout_s=TIMEOUT).reason == "failed_unknown"


def test_a_waiting_sensor_in_a_run_a_person_failed_is_left_alone():
    events = Log().person_sets_run("failed", "2026-11-30T04:07:41.2Z").rows
    assert needs_events("queued", "failed")
    assert decide(ti("queued"), run("failed"), events, timeout_s=TIMEOUT).reason == "run_failed_by_person"


def test_other_states_are_left_alone():
    verdict = decide(ti("upstream_failed"), run("failed"), [], timeout_s=TIMEOUT)
    assert (verdict.action, verdict.reason) == ("leave", "other_state")
    assert set(REASONS) >= {"skipped", "failed_by_person", "run_failed_by_person", "failed_not_timeout",
                            "failed_unknown", "event_log_unreadable", "other_state"}


def test_events_of_other_runs_and_tasks_and_malformed_rows_are_ignored():
    log = deferred_then_timed_out()
    log.person_sets_run("failed", "2026-11-30T04:09:00Z", run_id=OTHER_RUN)
    log.add("patch_task_instance", "2026-11-30T04:09:01Z", task_id="mrt_revenue", owner="eve",
            extra={"new_state": "failed"})
    log.add("patch_task_instance", "2026-11-30T04:09:02Z", owner="mallory", extra=None)
    log.rows.append({**log.rows[-1], "event_log_id": 99, "extra": "{not json", "when": "yesterday"})
    assert person_actions(log.rows, run_id=RUN, task_id=SENSOR) == []
    assert decide(TIMED_OUT, run("failed"), log.rows, timeout_s=TIMEOUT).reason == "timed_out"


def test_a_task_a_person_marked_failed_below_the_sensor_keeps_the_sensor_untouched():
    # Airflow's state write that satisfies the sensor clears failed tasks below it: a person's "not today"
    below = {"stg_marketplace_orders": "failed", "mrt_revenue": "upstream_failed"}
    verdict = decide(TIMED_OUT, run("failed"), deferred_then_timed_out().rows, timeout_s=TIMEOUT, below=below)
    assert (verdict.action, verdict.reason) == ("leave", "marked_below_by_person")
    assert verdict.detail.startswith("stg_marketplace_orders below the sensor is failed")
    assert verdict.reason in REASONS
    waiting = decide(ti("deferred"), run(), [], timeout_s=TIMEOUT, below={"a": "failed", "b": "failed", "c": None})
    assert waiting.reason == "marked_below_by_person" and waiting.detail.startswith("a, b below the sensor are failed")


@pytest.mark.parametrize("below", [None, {}, {"mrt_revenue": "upstream_failed"}, {"a": None, "b": "success"},
                                   {"a": "skipped", "b": "removed"}])
def test_what_airflow_itself_put_below_the_sensor_does_not_stop_recovery(below):
    verdict = decide(TIMED_OUT, run("failed"), deferred_then_timed_out().rows, timeout_s=TIMEOUT, below=below)
    assert (verdict.action, verdict.reason) == ("satisfy", "timed_out")


def test_a_sensor_left_alone_for_its_own_reason_keeps_that_reason_whatever_is_below():
    verdict = decide(ti("skipped"), run(), [], timeout_s=TIMEOUT, below={"a": "failed"})
    assert verdict.reason == "skipped"
