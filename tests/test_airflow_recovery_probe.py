"""The recovery sequence, proved on a real Airflow 3.3 stack before handoff's generator exists.

DAGs: tests/fixtures/probe_dags (hand-written). probe_downstream's sensor waits on
probe_upstream.model_a at the aligned logical date (0 5 * * * -> 0 3 * * *), in mode='poke'.

1. the sensor times out: its dependants are upstream_failed, an independent task succeeds;
2. the upstream task succeeds late;
3. AirflowApi.set_task_state(sensor -> success): Airflow clears the upstream_failed dependants,
   they run, and the downstream run ends in success; the same PATCH again is a no-op (409).
Also: a sensor still poking is marked success the same way; the client's errors are one line.
Timings are printed (pytest -s) and recorded as test properties, never asserted (a loaded machine is
slow, not wrong); docs/recovery.md has them.
"""

from __future__ import annotations

import json
import time
from datetime import datetime, timezone
from pathlib import Path

import pytest
from handoff.airflow_api import AirflowApi, AirflowApiConfig
from handoff.alignment import upstream_logical_date
from handoff.errors import HandoffError
from support.airflow_stack import AirflowStack, free_port

pytestmark = pytest.mark.airflow_stack

PROBE_DAGS = Path(__file__).parent / "fixtures" / "probe_dags"
SENSOR = "wait__upstream__model_a"
DEPENDANTS = ("model_b", "model_c")
SENSOR_TIMEOUT = 6  # seconds; passed to the DAG file through the stack's environment


@pytest.fixture(scope="module")
def probe_out(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("probe_out")


@pytest.fixture(scope="module")
def stack(module_airflow_stack_factory, probe_out: Path) -> AirflowStack:
    started = time.monotonic()
    stack = module_airflow_stack_factory(PROBE_DAGS, env={
        "HANDOFF_PROBE_OUT": str(probe_out),
        "HANDOFF_PROBE_SENSOR_TIMEOUT": str(SENSOR_TIMEOUT),
    })
    stack.wait_for_dags("probe_upstream", "probe_downstream", "probe_downstream_waiting")
    print(f"\nstack healthy and DAGs parsed in {time.monotonic() - started:.1f}s")
    return stack


def utc(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=timezone.utc)


def test_late_upstream_recovery(stack: AirflowStack, probe_out: Path, record_property) -> None:
    api = stack.airflow_api
    down_date = utc("2024-03-10T05:00")
    up_date = upstream_logical_date(down_date, "0 3 * * *")
    assert up_date == utc("2024-03-10T03:00")

    # 1. The downstream run starts before the upstream one exists: its sensor times out.
    down_run = stack.trigger("probe_downstream", down_date)
    failed_run = stack.wait_for_run("probe_downstream", down_run)
    states = stack.task_states("probe_downstream", down_run)
    assert failed_run["state"] == "failed", states
    assert states == {SENSOR: "failed", "model_b": "upstream_failed", "model_c": "upstream_failed",
                      "model_independent": "success"}
    sensor_log = api.task_log("probe_downstream", down_run, SENSOR)
    assert "AirflowSensorTimeout" in sensor_log, "the sensor failed for another reason than its timeout"
    assert "on 2024-03-10T03:00:00+00:00" in sensor_log, "the sensor poked another logical date"

    # 2. The upstream task succeeds late, at the aligned logical date.
    up_run = stack.trigger("probe_upstream", up_date)
    stack.wait_for_run("probe_upstream", up_run, states=["success"])
    upstream_done = api.get_task_instance("probe_upstream", up_run, "model_a")
    assert upstream_done["state"] == "success"
    assert datetime.fromisoformat(upstream_done["logical_date"]) == up_date

    # ... whose callback saw handoff's settings and could log in to the API. (The callback runs
    # after the task's success is recorded, so it may still be running: wait for its report.)
    report = probe_out / "callback-model_a.json"
    stack.wait_until(report.exists, 240, lambda: "no callback report")
    callback = json.loads(report.read_text())
    assert callback["login"] == "ok"
    assert {"HANDOFF_AIRFLOW_API_URL", "HANDOFF_AIRFLOW_API_USERNAME",
            "HANDOFF_AIRFLOW_API_PASSWORD"} <= set(callback["handoff_env"])

    # 3. Mark the timed-out sensor success: its dependants run, the run ends in success.
    before_patch = datetime.now(timezone.utc)
    started = time.monotonic()
    assert api.set_task_state("probe_downstream", down_run, SENSOR, "success") is True
    patch_seconds = time.monotonic() - started
    recovered = stack.wait_for_run("probe_downstream", down_run, states=["success"])
    recovery_seconds = time.monotonic() - started
    tis = {ti["task_id"]: ti for ti in api.list_task_instances("probe_downstream", down_run)}
    assert {task: ti["state"] for task, ti in tis.items()} == dict.fromkeys(tis, "success")
    for task in DEPENDANTS:  # they really ran, after the PATCH: not just marked
        assert datetime.fromisoformat(tis[task]["start_date"]) >= before_patch, tis[task]
        assert tis[task]["end_date"] is not None and tis[task]["try_number"] >= 1
    assert tis["model_independent"]["try_number"] == 1  # not run again
    assert recovered["state"] == "success"

    # The same PATCH again changes nothing (Airflow answers 409; the client says False).
    assert api.set_task_state("probe_downstream", down_run, SENSOR, "success") is False
    assert stack.task_states("probe_downstream", down_run) == dict.fromkeys(tis, "success")
    assert api.get_dag_run("probe_downstream", down_run)["state"] == "success"

    print(f"\nPATCH answered in {patch_seconds:.2f}s; downstream run success "
          f"{recovery_seconds:.1f}s after the PATCH")
    record_property("patch_seconds", round(patch_seconds, 2))
    record_property("patch_to_downstream_success_seconds", round(recovery_seconds, 1))


def test_marking_a_sensor_that_is_still_poking(stack: AirflowStack, record_property) -> None:
    """A sensor between pokes (poke_interval 60 s) marked success: its run goes on at once."""
    api = stack.airflow_api
    down_run = stack.trigger("probe_downstream_waiting", utc("2024-03-11T05:00"))
    stack.wait_for_task("probe_downstream_waiting", down_run, SENSOR, ["running"])
    started = time.monotonic()
    assert api.set_task_state("probe_downstream_waiting", down_run, SENSOR) is True
    stack.wait_for_run("probe_downstream_waiting", down_run, states=["success"])
    recovery_seconds = time.monotonic() - started
    assert stack.task_states("probe_downstream_waiting", down_run) == {
        SENSOR: "success", "model_b": "success", "model_c": "success", "model_independent": "success"}
    print(f"\nrunning sensor marked: downstream run success {recovery_seconds:.1f}s after the PATCH")
    record_property("running_sensor_patch_to_success_seconds", round(recovery_seconds, 1))


def test_client_error_on_unreachable_url() -> None:
    url = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    api = AirflowApi(AirflowApiConfig(url, "admin", "s3cret-pass", attempts=2, retry_delay=0.05))
    with pytest.raises(HandoffError) as caught:
        api.set_task_state("a_dag", "a_run", "a_task")
    message = str(caught.value)
    assert "\n" not in message and f"{url}/auth/token" in message and "after 2 attempt(s)" in message
    assert "s3cret-pass" not in message


def test_client_error_on_bad_credentials(stack: AirflowStack) -> None:
    bad = AirflowApi(AirflowApiConfig(stack.base_url, stack.username, "wrong-password-123"))
    with pytest.raises(HandoffError) as caught:
        bad.get_dag_run("probe_upstream", "no_such_run")
    message = str(caught.value)
    assert "\n" not in message and f"{stack.base_url}/auth/token" in message and "answered 401" in message
    assert "wrong-password-123" not in message and stack.password not in message


def test_client_error_names_url_and_status(stack: AirflowStack) -> None:
    with pytest.raises(HandoffError) as caught:
        stack.airflow_api.get_dag_run("probe_upstream", "no_such_run")
    message = str(caught.value)
    assert "\n" not in message
    assert f"GET {stack.base_url}/api/v2/dags/probe_upstream/dagRuns/no_such_run answered 404" in message
