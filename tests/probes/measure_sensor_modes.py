"""Measure ExternalTaskSensor modes on a real Airflow stack (not a test: run it by hand).

    .venv/bin/python tests/probes/measure_sensor_modes.py [runs_per_mode]

For each mode (poke, reschedule, deferrable) it triggers N downstream runs at once whose
sensor waits on an upstream run that does not exist, and reports:
  * timed out genuinely: the sensor failed and its log holds AirflowSensorTimeout;
  * failed otherwise: failed without that (e.g. apache/airflow#71172 with reschedule);
  * seconds from run start to sensor failure;
then, for every run, marks the sensor success through handoff's client and reports whether
the run ended in success and how long it took; it does the same, one run at a time, with runs
whose sensor is still waiting (running / up_for_reschedule / deferred) when marked.
Last, worker-slot starvation: 10 poke sensors on 8 executor slots, one marked success — do its
dependants get a slot? Without a pool they wait behind the other sensors; with the sensors in
a pool smaller than the executor's parallelism they run at once.
Results feed docs/recovery.md.
"""

from __future__ import annotations

import statistics
import sys
import tempfile
import textwrap
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from support.airflow_stack import AirflowStack, start_airflow_stack

MODES = ("poke", "reschedule", "deferrable")
SENSOR = "wait_upstream"
DAG_FILE = '''
from datetime import datetime, timezone
from airflow.providers.standard.operators.python import PythonOperator
from airflow.providers.standard.sensors.external_task import ExternalTaskSensor
from airflow.sdk import DAG, CronTriggerTimetable

with DAG("modes_upstream", schedule=CronTriggerTimetable("0 3 * * *", timezone="UTC"),
         start_date=datetime(2024, 1, 1, tzinfo=timezone.utc),
         end_date=datetime(2024, 12, 31, tzinfo=timezone.utc), catchup=False):
    PythonOperator(task_id="model_a", python_callable=lambda: "built")

for mode in ("poke", "reschedule", "deferrable"):
    for kind, timeout, interval in (("timeout", 6, 2), ("waiting", 600, 30)):
        with DAG(f"modes_{mode}_{kind}", schedule=CronTriggerTimetable("0 3 * * *", timezone="UTC"),
                 start_date=datetime(2024, 1, 1, tzinfo=timezone.utc),
                 end_date=datetime(2024, 12, 31, tzinfo=timezone.utc), catchup=False,
                 max_active_runs=16):
            sensor = ExternalTaskSensor(
                task_id="wait_upstream", external_dag_id="modes_upstream", external_task_id="model_a",
                mode="reschedule" if mode == "reschedule" else "poke",
                deferrable=mode == "deferrable", poke_interval=interval, timeout=timeout, retries=0)
            sensor >> PythonOperator(task_id="model_b", python_callable=lambda: "built")

for pool in (None, "handoff_sensors"):
    with DAG(f"modes_starve_{pool or 'nopool'}", schedule=CronTriggerTimetable("0 3 * * *", timezone="UTC"),
             start_date=datetime(2024, 1, 1, tzinfo=timezone.utc),
             end_date=datetime(2024, 12, 31, tzinfo=timezone.utc), catchup=False, max_active_runs=16):
        sensor = ExternalTaskSensor(
            task_id="wait_upstream", external_dag_id="modes_upstream", external_task_id="model_a",
            mode="poke", poke_interval=30, timeout=600, retries=0, **({"pool": pool} if pool else {}))
        sensor >> PythonOperator(task_id="model_b", python_callable=lambda: "built")
'''
WAITING_STATES = {"poke": "running", "reschedule": "up_for_reschedule", "deferrable": "deferred"}


DAY0 = datetime(2024, 2, 1, 3, tzinfo=timezone.utc)


def main(runs: int) -> None:
    root = Path(tempfile.mkdtemp(prefix="handoff-modes-"))
    dags = root / "dags"
    dags.mkdir()
    (dags / "modes.py").write_text(textwrap.dedent(DAG_FILE))
    stack = start_airflow_stack(root / "airflow", dags, triggerer=True,
                                env={"AIRFLOW__CORE__PARALLELISM": "8",
                                     "AIRFLOW__CORE__MAX_ACTIVE_TASKS_PER_DAG": "16"})
    try:
        stack.wait_for_dags(*(f"modes_{m}_{k}" for m in MODES for k in ("timeout", "waiting")),
                            "modes_starve_nopool", "modes_starve_handoff_sensors")
        for mode in MODES:
            timed_out(stack, mode, runs)
            still_waiting(stack, mode, runs)
        starvation(stack)
        time.sleep(15)  # let killed sensors' supervisors report; states must not change
        for mode in MODES:
            for kind in ("timeout", "waiting"):
                states = {ti["state"] for ti in stack.airflow_api.list_task_instances(f"modes_{mode}_{kind}")}
                print(f"{mode:10} {kind:8} task states after 15 s: {sorted(states)}")
    finally:
        stack.stop()


def timed_out(stack: AirflowStack, mode: str, runs: int) -> None:
    api, dag_id = stack.airflow_api, f"modes_{mode}_timeout"
    run_ids = [stack.trigger(dag_id, DAY0 + timedelta(days=i)) for i in range(runs)]
    genuine = other = 0
    to_failure = []
    for run_id in run_ids:
        run = stack.wait_for_run(dag_id, run_id, timeout=180)
        ti = api.get_task_instance(dag_id, run_id, SENSOR)
        log = api.task_log(dag_id, run_id, SENSOR, max(1, ti["try_number"]))
        if ti["state"] == "failed" and "AirflowSensorTimeout" in log:
            genuine += 1
        else:
            other += 1
            print(f"  {mode} {run_id}: sensor {ti['state']}, run {run['state']}; log tail: {log[-300:]!r}")
        to_failure.append((datetime.fromisoformat(ti["end_date"])
                           - datetime.fromisoformat(run["start_date"])).total_seconds())
    recover = [mark_and_wait(stack, dag_id, run_id) for run_id in run_ids]
    print(f"{mode:10} timed out genuinely {genuine}/{runs}, failed otherwise {other}; "
          f"run start->sensor failed median {statistics.median(to_failure):.1f}s; "
          f"PATCH->run success {min(recover):.1f}-{max(recover):.1f}s "
          f"(median {statistics.median(recover):.1f}s), {len(recover)}/{runs} recovered")


def still_waiting(stack: AirflowStack, mode: str, runs: int) -> None:
    dag_id = f"modes_{mode}_waiting"
    recover = []
    for i in range(runs):  # one at a time: no run waits for a worker slot
        run_id = stack.trigger(dag_id, DAY0 + timedelta(days=i))
        stack.wait_for_task(dag_id, run_id, SENSOR, [WAITING_STATES[mode]], timeout=120)
        recover.append(mark_and_wait(stack, dag_id, run_id))
        assert stack.airflow_api.get_task_instance(dag_id, run_id, SENSOR)["state"] == "success"
    print(f"{mode:10} marked while {WAITING_STATES[mode]}: PATCH->run success "
          f"{min(recover):.1f}-{max(recover):.1f}s (median {statistics.median(recover):.1f}s), "
          f"{len(recover)}/{runs} recovered")


def starvation(stack: AirflowStack) -> None:
    api = stack.airflow_api
    stack.create_pool("handoff_sensors", 6)
    for pool, running in (("nopool", 8), ("handoff_sensors", 6)):
        dag_id = f"modes_starve_{pool}"
        run_ids = [stack.trigger(dag_id, DAY0 + timedelta(days=i)) for i in range(10)]
        deadline = time.monotonic() + 120
        while sum(ti["state"] == "running" for ti in api.list_task_instances(dag_id)) < running:
            assert time.monotonic() < deadline, api.list_task_instances(dag_id)
            time.sleep(0.5)
        marked = next(ti["dag_run_id"] for ti in api.list_task_instances(dag_id, states=["running"]))
        try:
            outcome = f"run success {mark_and_wait(stack, dag_id, marked, 40):.1f}s after the PATCH"
        except AssertionError:
            outcome = f"run still {stack.task_states(dag_id, marked)} 40 s after the PATCH"
        print(f"starvation, 10 poke sensors, 8 executor slots, pool {pool}: {outcome}")
        for run_id in run_ids:  # release the slots
            if run_id != marked:
                api.set_task_state(dag_id, run_id, SENSOR, "failed")


def mark_and_wait(stack: AirflowStack, dag_id: str, run_id: str, timeout: float = 120) -> float:
    """Mark the run's sensor success; seconds until the run is success."""
    started = time.monotonic()
    stack.airflow_api.set_task_state(dag_id, run_id, SENSOR)
    stack.wait_for_run(dag_id, run_id, ["success"], timeout=timeout)
    return time.monotonic() - started


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 6)
