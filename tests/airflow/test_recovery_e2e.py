"""Late-completion recovery on real Airflow 3.3 stacks with real dbt: people's decisions are kept,
timed-out sensors are satisfied, stale completions satisfy nothing, racing reconcilers act once.

Two stacks, one after the other (the module's tests run once per backend):
* ``sqlite``: Airflow's metadata database and the registry in SQLite files;
* ``postgresql``: both on the real PostgreSQL server the test session starts — the production shape.
Each: api-server, scheduler, dag-processor, triggerer; LocalExecutor with parallelism 4, so task
processes, their callbacks and the sweep run concurrently. Generated DAGs (one DAG file, plans +
registry snapshot); the completion callback reads its API from the Airflow connection
``handoff_airflow_api``; a second Airflow user, ``operator``, plays the person.

marketplace (daily 03:00) publishes mrt_orders; finance (daily 05:00) reads it through a source:
finance__daily's sensor wait__marketplace__mrt_orders blocks stg_marketplace_orders and mrt_revenue
only. The plans are test-sized: marketplace is cut to its mrt_orders task (its inputs are built by
dbt once, before), finance to the models around the sensor; the sensor times out after 75 s.
The same for a dbt Mesh edge (docs/mesh.md): support (daily 04:00) reads logistics' shipments v1
with `ref('shipping', 'shipments', v=1)` through the real dbt-loom plugin; support__daily is cut to
that ref's sensor and its reader, logistics__daily to shipments_v1.

Both backends — on time: the readers run right after mrt_orders; (a) the operator skips the waiting
sensor: it stays skipped when mrt_orders succeeds, and explain says who skipped it; (b) the
operator marks the run failed: it is not resumed; (c) a sensor that timed out is satisfied by the
callback and the run recovers; (f) the same for the sensor of a cross-project ref. PostgreSQL only — (d) mrt_orders succeeds, is cleared and re-run, and
fails: that completion satisfies nothing (sweep, or a late duplicate callback) and explain says it
was superseded; (e) two callbacks and a sweep racing on one completion send one PATCH and record one
resolution.

Deterministic: every scenario has its own logical date, the scheduler creates no runs (only the
test's triggers), every wait is on a state. The runs that must time out start together, early.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from support.airflow_stack import AirflowStack, free_port
from support.examples import REPO, build_mesh, deploy_plans

pytestmark = pytest.mark.airflow_stack

SENSOR = "wait__marketplace__mrt_orders"
READERS = ("stg_marketplace_orders", "mrt_revenue")
INDEPENDENT = ("stg_fx_rates",)
FINANCE_TASKS = {SENSOR, *READERS, *INDEPENDENT}
REF_SENSOR = "wait__logistics__shipments_v1"  # ref('shipping', 'shipments', v=1) in support
REF_READER = "mrt_carrier_complaints"
DOMAINS = ("marketplace", "finance", "shipping", "support")  # dbt project folders, in build order
SENSOR_TIMEOUT_S = 75  # longer than a one-task marketplace run on a busy 2-core machine
HANDOFF = [sys.executable, "-m", "handoff.cli"]
RACER = Path(__file__).with_name("recovery_racer.py")
UTC = timezone.utc
DAYS = {name: datetime(2025, 1, 6 + i, tzinfo=UTC) for i, name in enumerate(
    ("on_time", "skipped", "run_failed", "timed_out", "superseded", "race", "ref_timed_out", "marked_below"))}
LATE = {"sqlite": ("timed_out", "ref_timed_out"),  # runs that must time out
        "postgresql": ("timed_out", "race", "ref_timed_out", "marked_below")}
# (a)-(c) on both stacks; (d), (e) on the production-shaped one. Module scope: one stack per backend.
BOTH = pytest.mark.parametrize("deployment", ["sqlite", "postgresql"], indirect=True, scope="module")
POSTGRES_ONLY = pytest.mark.parametrize("deployment", ["postgresql"], indirect=True, scope="module")


@pytest.fixture(scope="module")
def mesh(tmp_path_factory):
    """marketplace, finance, shipping and support built once with dbt into one DuckDB warehouse."""
    return build_mesh(tmp_path_factory.mktemp("recovery"), build=True, domains=DOMAINS)


def shrink_plan(domain: str, plan: dict) -> None:
    """Cut the plans to the tasks the scenarios need; a short sensor timeout; parallel runs."""
    pipeline = plan["pipelines"][0]
    keep = {"marketplace": {"mrt_orders"}, "finance": FINANCE_TASKS, "shipping": {"shipments_v1"},
            "support": {REF_SENSOR, REF_READER}}[domain]
    pipeline["tasks"] = [t for t in pipeline["tasks"] if t["task_id"] in keep]
    for task in pipeline["tasks"]:
        task["upstream"] = [u for u in task["upstream"] if u in keep]
        if task["task_id"] in (SENSOR, REF_SENSOR):
            task.update(timeout_s=SENSOR_TIMEOUT_S, poke_interval_s=3)
    pipeline["max_active_runs"] = 8
    # the scenarios are about sensors and the per-task readers they release (the single-task path a
    # batched model also takes once its batch is over); batched runs are test_batched_stack's and
    # test_notifications_e2e's
    pipeline["execution"] = "per_task"


@dataclass
class Deployment:
    backend: str
    stack: AirflowStack
    registry_url: str
    duckdb_path: Path

    def env(self, api: bool = True) -> dict[str, str]:
        """The environment of a `handoff` command run by hand (with or without the API)."""
        env = {k: v for k, v in os.environ.items() if not k.startswith("HANDOFF_AIRFLOW_API")}
        env["HANDOFF_REGISTRY_URL"] = self.registry_url
        if api:
            env.update(HANDOFF_AIRFLOW_API_URL=self.stack.base_url, HANDOFF_AIRFLOW_API_USERNAME=self.stack.username,
                       HANDOFF_AIRFLOW_API_PASSWORD=self.stack.password)
        return env


@pytest.fixture(scope="module")
def deployment(request, mesh, tmp_path_factory, module_airflow_stack_factory) -> Iterator[Deployment]:
    backend = request.param
    tmp = tmp_path_factory.mktemp(f"recovery-{backend}")
    registry_url, metadata_db = None, None
    if backend == "postgresql":
        server = request.getfixturevalue("postgres_server")
        server.admin("CREATE DATABASE handoff_e2e_registry")
        server.admin("CREATE DATABASE airflow_e2e")
        registry_url = server.url("handoff_e2e_registry")
        metadata_db = server.url("airflow_e2e").replace("postgresql://", "postgresql+psycopg2://")
    plans, registry_url = deploy_plans(mesh, tmp, DOMAINS, adjust=shrink_plan, registry_url=registry_url)
    dags = tmp / "dags"
    dags.mkdir()
    shutil.copy(REPO / "integration_tests" / "airflow" / "dags" / "handoff_dags.py", dags / "handoff_dags.py")
    started = time.monotonic()
    stack = module_airflow_stack_factory(dags, env={
        "HANDOFF_PLANS_DIR": str(plans),
        "HANDOFF_DBT_PROJECTS_DIR": str(mesh.root),
        "HANDOFF_DBT_PROFILES_DIR": str(mesh.profiles_dir),
        "HANDOFF_DUCKDB_PATH": str(mesh.duckdb_path),
        "HANDOFF_REGISTRY_URL": registry_url,
        # the callback reads the API from the Airflow connection (below), not the environment
        "HANDOFF_AIRFLOW_API_URL": "",
        "DBT_SEND_ANONYMOUS_USAGE_STATS": "False",
    }, triggerer=True, metadata_db=metadata_db)
    stack.create_pool("duckdb", 1)
    point_callback_at(stack, stack.port)
    stack.wait_for_dags("marketplace__daily", "finance__daily", "logistics__daily", "support__daily", timeout=300)
    print(f"\n[{backend}] stack healthy, DAGs parsed: {time.monotonic() - started:.0f} s")
    yield Deployment(backend, stack, registry_url, mesh.duckdb_path)
    stack.stop()


@pytest.fixture(scope="module")
def late_runs(deployment) -> dict[str, str]:
    """The finance (and support) runs that must time out, started together as soon as a test needs one."""
    return {name: trigger_support(deployment, name) if name.startswith("ref_") else trigger_finance(deployment, name)
            for name in LATE[deployment.backend]}


# -- helpers ---------------------------------------------------------------------------------------

def point_callback_at(stack: AirflowStack, port: int) -> None:
    """(Re)define the Airflow connection the completion callback reads its API from."""
    body = {"connection_id": "handoff_airflow_api", "conn_type": "http", "host": "127.0.0.1", "port": port,
            "login": stack.username, "password": stack.password}
    status, answer = stack.airflow_api.request("PATCH", "/api/v2/connections/handoff_airflow_api", body=body)
    if status == 404:
        status, answer = stack.airflow_api.request("POST", "/api/v2/connections", body=body)
    assert status in (200, 201), (status, answer)


def trigger_finance(d: Deployment, day: str) -> str:
    return d.stack.trigger("finance__daily", DAYS[day] + timedelta(hours=5))


def trigger_support(d: Deployment, day: str) -> str:
    return d.stack.trigger("support__daily", DAYS[day] + timedelta(hours=4))


def run_upstream(d: Deployment, day: str) -> tuple[str, datetime]:
    """A marketplace run for ``day``, finished: its run id and when mrt_orders ended."""
    run_id = d.stack.trigger("marketplace__daily", DAYS[day] + timedelta(hours=3))
    d.stack.wait_for_run("marketplace__daily", run_id, timeout=240)
    ti = ti_of(d, "marketplace__daily", run_id, "mrt_orders")
    assert ti["state"] == "success", d.stack.task_states("marketplace__daily", run_id)
    return run_id, when(ti["end_date"])


def ti_of(d: Deployment, dag_id: str, run_id: str, task_id: str) -> dict:
    return d.stack.airflow_api.get_task_instance(dag_id, run_id, task_id)


def when(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def registry(d: Deployment):  # type: ignore[no-untyped-def]
    from handoff.registry import Registry

    return Registry(d.registry_url, must_exist=True)


def decisions(d: Deployment, run_id: str) -> tuple[list, list]:
    """(resolutions, refusals) recorded for the finance sensor of ``run_id``."""
    with registry(d) as reg:
        return ([r for r in reg.resolutions(dag_id="finance__daily", run_id=run_id) if r.sensor_task_id == SENSOR],
                [r for r in reg.refusals(dag_id="finance__daily", run_id=run_id) if r.sensor_task_id == SENSOR])


def wait_for_refusal(d: Deployment, run_id: str, timeout: float = 240) -> list:
    """The callback runs after mrt_orders is reported success: wait for what it recorded."""
    d.stack.wait_until(lambda: bool(decisions(d, run_id)[1]), timeout,
                       lambda: f"no refusal recorded for {run_id}: {decisions(d, run_id)}")
    return decisions(d, run_id)[1]


def patches_by_handoff(d: Deployment, run_id: str) -> list[dict]:
    """Every PATCH of the finance sensor in ``run_id`` handoff sent (Airflow's event log logs each)."""
    events = d.stack.airflow_api.list_event_logs("finance__daily", run_id=run_id, task_id=SENSOR,
                                                 events=["patch_task_instance"])
    return [e for e in events if e["owner"] == d.stack.username]


def explain_at(d: Deployment, day: str, *, api: bool = False) -> str:
    done = subprocess.run([*HANDOFF, "explain", "finance.mrt_revenue", "--at", (DAYS[day] + timedelta(hours=5))
                           .isoformat()], capture_output=True, text=True, env=d.env(api=api), timeout=600)
    assert done.returncode == 0, done.stderr
    return done.stdout


def reconcile(d: Deployment) -> list[dict]:
    done = subprocess.run([*HANDOFF, "reconcile", "--since", "1h", "--format", "json"], capture_output=True,
                          text=True, env=d.env(), timeout=600)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def wait_for_sensor(d: Deployment, run_id: str, states: tuple[str, ...] = ("deferred", "running")) -> None:
    d.stack.wait_for_task("finance__daily", run_id, SENSOR, states, timeout=300)


def wait_until_parked(d: Deployment, run_id: str) -> None:
    """Before a person acts: the sensor deferred (its task process gone, the triggerer waiting) and
    the independent model finished. Acting while the sensor's process is still starting raced with
    it under load: its deferral got 409 and the scheduler, holding the run as running, wrote
    `success` over the person's `failed` (stress run, Nov 30)."""
    wait_for_sensor(d, run_id, ("deferred",))
    for task in INDEPENDENT:
        d.stack.wait_for_task("finance__daily", run_id, task, ["success"])


# -- the scenarios ---------------------------------------------------------------------------------

@BOTH
def test_on_time_the_readers_wait_only_where_they_read_and_run_right_after_the_upstream(deployment, record_property):
    d = deployment
    finance = trigger_finance(d, "on_time")
    wait_for_sensor(d, finance)
    started = ti_of(d, "finance__daily", finance, SENSOR)["start_date"]
    assert f"live: {finance}: deferred, waiting since {started}" in explain_at(d, "on_time", api=True)
    _, upstream_end = run_upstream(d, "on_time")
    d.stack.wait_for_run("finance__daily", finance, timeout=240)
    states = d.stack.task_states("finance__daily", finance)
    assert all(s == "success" for s in states.values()), states
    readers_start = min(when(ti_of(d, "finance__daily", finance, t)["start_date"]) for t in READERS)
    independent_end = max(when(ti_of(d, "finance__daily", finance, t)["end_date"]) for t in INDEPENDENT)
    assert readers_start >= upstream_end  # the readers waited for marketplace ...
    assert independent_end < upstream_end  # ... the others did not
    resolutions, _ = decisions(d, finance)
    satisfied = (resolutions[0].resolved_at if resolutions and resolutions[0].how == "reconcile"
                 else when(ti_of(d, "finance__daily", finance, SENSOR)["end_date"]))
    latency = (satisfied - upstream_end).total_seconds()
    assert latency >= -1, latency  # satisfied after the upstream ended (how fast: docs/benchmarks.md)
    record_property(f"{d.backend}_on_time_latency_s", round(latency, 2))
    print(f"\n[{d.backend}] on time: upstream success -> sensor satisfied: {latency:.1f} s")


@BOTH
def test_a_a_sensor_a_person_skipped_stays_skipped_and_explain_says_who(deployment, late_runs):
    d = deployment
    finance = trigger_finance(d, "skipped")
    wait_until_parked(d, finance)
    status, answer = d.stack.operator_api.request(
        "PATCH", f"/api/v2/dags/finance__daily/dagRuns/{finance}/taskInstances/{SENSOR}", body={"new_state": "skipped"})
    assert status == 200, answer
    d.stack.wait_for_run("finance__daily", finance, timeout=240)
    run_upstream(d, "skipped")
    [refusal] = wait_for_refusal(d, finance)
    assert (refusal.reason, refusal.actor, refusal.sensor_state) == ("skipped", "operator", "skipped")
    states = d.stack.task_states("finance__daily", finance)
    assert states[SENSOR] == "skipped" and all(states[t] == "skipped" for t in READERS), states
    assert patches_by_handoff(d, finance) == []  # handoff never touched it
    assert decisions(d, finance)[0] == []
    text = explain_at(d, "skipped")
    assert f"{SENSOR} -> marketplace.mrt_orders: left alone: skipped by operator at " \
           f"{refusal.acted_at:%Y-%m-%d %H:%M} UTC" in text, text


@BOTH
def test_b_a_run_a_person_marked_failed_is_not_resumed(deployment, late_runs):
    d = deployment
    finance = trigger_finance(d, "run_failed")
    wait_until_parked(d, finance)
    status, answer = d.stack.operator_api.request("PATCH", f"/api/v2/dags/finance__daily/dagRuns/{finance}",
                                                  body={"state": "failed"})
    assert status == 200, answer
    d.stack.wait_for_task("finance__daily", finance, SENSOR, ["failed"], timeout=240)
    run_upstream(d, "run_failed")
    [refusal] = wait_for_refusal(d, finance)
    assert (refusal.reason, refusal.actor, refusal.sensor_state) == ("run_failed_by_person", "operator", "failed")
    # the sweep agrees, and records nothing new
    actions = [a for a in reconcile(d) if a["run_id"] == finance]
    assert [(a["action"], a["reason"]) for a in actions] == [("left", "run_failed_by_person")]
    assert len(decisions(d, finance)[1]) == 1
    assert d.stack.airflow_api.get_dag_run("finance__daily", finance)["state"] == "failed"
    assert ti_of(d, "finance__daily", finance, SENSOR)["state"] == "failed"
    assert patches_by_handoff(d, finance) == []
    assert "left alone: operator marked the run failed at" in explain_at(d, "run_failed")


@BOTH
def test_c_a_sensor_that_timed_out_is_satisfied_by_the_callback(deployment, late_runs, record_property):
    d = deployment
    finance = late_runs["timed_out"]
    d.stack.wait_for_run("finance__daily", finance, ["failed"], timeout=SENSOR_TIMEOUT_S + 240)
    states = d.stack.task_states("finance__daily", finance)
    assert states[SENSOR] == "failed" and all(states[t] == "upstream_failed" for t in READERS), states
    _, upstream_end = run_upstream(d, "timed_out")
    d.stack.wait_for_run("finance__daily", finance, ["success"], timeout=240)
    states = d.stack.task_states("finance__daily", finance)
    assert all(s == "success" for s in states.values()), states
    [resolution], refusals = decisions(d, finance)
    assert (resolution.how, resolution.previous_state, resolution.status, refusals) == (
        "reconcile", "failed", "done", [])
    assert len(patches_by_handoff(d, finance)) == 1
    latency = (resolution.resolved_at - upstream_end).total_seconds()
    assert latency >= -1, latency  # satisfied after the upstream ended (how fast: docs/benchmarks.md)
    record_property(f"{d.backend}_timed_out_latency_s", round(latency, 2))
    print(f"\n[{d.backend}] timed-out sensor: upstream success -> satisfied by the callback: {latency:.1f} s")
    assert "satisfied by reconcile" in explain_at(d, "timed_out") and "(the sensor was failed)" in \
        explain_at(d, "timed_out")


@POSTGRES_ONLY
def test_h_a_reader_a_person_marked_failed_keeps_its_mark_and_the_sensor_is_left(deployment, late_runs):
    d = deployment
    finance = late_runs["marked_below"]
    d.stack.wait_for_run("finance__daily", finance, ["failed"], timeout=SENSOR_TIMEOUT_S + 240)
    # the sensor timed out; a person decides: no revenue mart for this day ("not today")
    status, answer = d.stack.operator_api.request(
        "PATCH", f"/api/v2/dags/finance__daily/dagRuns/{finance}/taskInstances/mrt_revenue",
        body={"new_state": "failed"})
    assert status == 200, answer
    d.stack.wait_for_run("finance__daily", finance, ["failed"], timeout=120)
    run_upstream(d, "marked_below")
    [refusal] = wait_for_refusal(d, finance)
    assert (refusal.reason, refusal.sensor_state) == ("marked_below_by_person", "failed"), refusal
    # satisfying the sensor through Airflow would have cleared the person's mark: nothing was touched
    assert patches_by_handoff(d, finance) == []
    states = d.stack.task_states("finance__daily", finance)
    assert states[SENSOR] == "failed" and states["mrt_revenue"] == "failed", states
    assert "mrt_revenue below the sensor is failed" in explain_at(d, "marked_below")


@BOTH
def test_f_a_timed_out_sensor_of_a_cross_project_ref_is_satisfied_by_the_callback(deployment, late_runs,
                                                                                  record_property):
    d = deployment
    support = late_runs["ref_timed_out"]
    d.stack.wait_for_run("support__daily", support, ["failed"], timeout=SENSOR_TIMEOUT_S + 240)
    states = d.stack.task_states("support__daily", support)
    assert (states[REF_SENSOR], states[REF_READER]) == ("failed", "upstream_failed"), states
    # logistics runs late: its shipments_v1 task (what the ref pins) succeeds; its callback finds the
    # sensor through the registry's cross edge of the ref and satisfies it
    logistics = d.stack.trigger("logistics__daily", DAYS["ref_timed_out"] + timedelta(hours=2))
    d.stack.wait_for_run("logistics__daily", logistics, timeout=240)
    ti = ti_of(d, "logistics__daily", logistics, "shipments_v1")
    assert ti["state"] == "success", d.stack.task_states("logistics__daily", logistics)
    d.stack.wait_for_run("support__daily", support, ["success"], timeout=240)
    assert set(d.stack.task_states("support__daily", support).values()) == {"success"}
    with registry(d) as reg:
        [resolution] = [r for r in reg.resolutions(dag_id="support__daily", run_id=support)
                        if r.sensor_task_id == REF_SENSOR]
        [completion] = reg.completions(dag_id="logistics__daily", task_id="shipments_v1", run_id=logistics)
    assert (resolution.how, resolution.previous_state, resolution.completion_id) == (
        "reconcile", "failed", completion.id)
    latency = (resolution.resolved_at - when(ti["end_date"])).total_seconds()
    assert latency >= -1, latency  # satisfied after the upstream ended (how fast: docs/benchmarks.md)
    record_property(f"{d.backend}_ref_timed_out_latency_s", round(latency, 2))
    print(f"\n[{d.backend}] timed-out sensor of a cross-project ref: upstream success -> satisfied: {latency:.1f} s")


@POSTGRES_ONLY
def test_d_a_completion_superseded_by_a_failed_rerun_satisfies_nothing(deployment):
    d = deployment
    import duckdb

    upstream, _ = run_upstream(d, "superseded")  # try 1 succeeds; no finance run waits on it yet
    lock = duckdb.connect(str(d.duckdb_path))  # the warehouse is busy: try 2 of mrt_orders cannot build
    try:
        status, answer = d.stack.operator_api.request(
            "POST", "/api/v2/dags/marketplace__daily/clearTaskInstances",
            body={"dag_run_id": upstream, "task_ids": ["mrt_orders"], "dry_run": False, "only_failed": False})
        assert status == 200, answer
        d.stack.wait_for_task("marketplace__daily", upstream, "mrt_orders", ["failed"], timeout=240)
    finally:
        lock.close()
    assert ti_of(d, "marketplace__daily", upstream, "mrt_orders")["try_number"] == 2
    with registry(d) as reg:
        d.stack.wait_until(lambda: len(reg.completions(dag_id="marketplace__daily", run_id=upstream)) == 2, 240,
                           lambda: f"failed try not recorded: {reg.completions(dag_id='marketplace__daily')}")
        tries = sorted(reg.completions(dag_id="marketplace__daily", run_id=upstream), key=lambda c: c.try_number)
    assert [(c.try_number, c.state) for c in tries] == [(1, "success"), (2, "failed")]

    finance = trigger_finance(d, "superseded")
    wait_for_sensor(d, finance)
    assert not [a for a in reconcile(d) if a["run_id"] == finance]  # the sweep finds no success to use
    from handoff.recovery import reconcile_completion

    with registry(d) as reg:  # a late duplicate of try 1's callback
        actions = reconcile_completion(reg, d.stack.airflow_api, tries[0])
    assert [(a.action, a.reason) for a in actions] == [("left", "superseded")]
    assert ti_of(d, "finance__daily", finance, SENSOR)["state"] in ("deferred", "running", "scheduled", "queued")
    assert patches_by_handoff(d, finance) == [] and decisions(d, finance) == ([], [])
    text = explain_at(d, "superseded")
    assert f"{SENSOR} -> marketplace.mrt_orders: upstream completion superseded" in text, text
    assert "try 1 (success, " in text and "is superseded by try 2 (failed, " in text
    assert f"upstream live: {upstream}: try 2, failed" in explain_at(d, "superseded", api=True)
    d.stack.operator_api.request("PATCH", f"/api/v2/dags/finance__daily/dagRuns/{finance}", body={"state": "failed"})


@POSTGRES_ONLY
def test_e_two_callbacks_and_a_sweep_racing_on_one_completion_act_once(deployment, late_runs, tmp_path):
    d = deployment
    finance = late_runs["race"]
    d.stack.wait_for_run("finance__daily", finance, ["failed"], timeout=SENSOR_TIMEOUT_S + 240)
    # the callback records the completion and reaches no API. It runs after the task reports success,
    # so it may still run after the marketplace run is seen finished: the connection stays dead until
    # the end of this test (the racers read the API from their environment).
    point_callback_at(d.stack, free_port())
    try:
        race(d, finance, tmp_path)
    finally:
        point_callback_at(d.stack, d.stack.port)


def race(d: Deployment, finance: str, tmp_path: Path) -> None:
    upstream, _ = run_upstream(d, "race")
    with registry(d) as reg:
        d.stack.wait_until(lambda: bool(reg.completions(dag_id="marketplace__daily", run_id=upstream)), 240,
                           lambda: "the callback recorded no completion")
    assert ti_of(d, "finance__daily", finance, SENSOR)["state"] == "failed"
    assert decisions(d, finance) == ([], [])

    go = tmp_path / "go"
    logical = (DAYS["race"] + timedelta(hours=3)).isoformat()
    racers = [subprocess.Popen([sys.executable, str(RACER), "callback", str(go), "marketplace__daily", "mrt_orders",
                                upstream, logical, "1"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                               env=d.env()) for _ in range(2)]
    racers.append(subprocess.Popen([sys.executable, str(RACER), "sweep", str(go)], stdout=subprocess.PIPE,
                                   stderr=subprocess.PIPE, text=True, env=d.env()))
    # all three logged in and waiting (each touches ready-<pid>), then one signal: a real race
    d.stack.wait_until(lambda: len(list(tmp_path.glob("ready-*"))) == len(racers) or any(
        r.poll() is not None for r in racers), 600, lambda: f"racers not ready: {list(tmp_path.glob('ready-*'))}")
    go.touch()
    outputs = [r.communicate(timeout=600) for r in racers]
    assert [r.returncode for r in racers] == [0, 0, 0], [err[-2000:] for _, err in outputs]
    actions = [a for out, _ in outputs for a in json.loads(out) if a["run_id"] == finance]
    assert sorted(a["action"] for a in actions) == ["already_satisfied", "already_satisfied", "satisfied"], actions

    d.stack.wait_for_run("finance__daily", finance, ["success"], timeout=240)
    [resolution], refusals = decisions(d, finance)
    assert (resolution.how, resolution.previous_state, resolution.status, refusals) == (
        "reconcile", "failed", "done", [])
    assert len(patches_by_handoff(d, finance)) == 1  # exactly one PATCH reached Airflow
    with registry(d) as reg:
        assert len(reg.completions(dag_id="marketplace__daily", run_id=upstream)) == 1
    for reader in READERS:  # each reader ran once
        ran = d.stack.airflow_api.list_event_logs("finance__daily", run_id=finance, task_id=reader, events=["success"])
        assert len(ran) == 1, ran
    assert not [a for a in reconcile(d) if a["action"] == "satisfied"]  # and a later sweep does nothing


@BOTH
def test_g_reconcile_json_is_one_document_when_a_message_cannot_be_posted(deployment):
    """A failed post (here: no Slack connection in this stack) is said on stderr; stdout stays the
    sweep's JSON. CI once saw Airflow's log line at the head of it: posting imports Airflow, whose
    logging writes to the stdout of that moment."""
    d = deployment
    with registry(d) as reg:
        reg.enqueue_notifications([{
            "kind": "blocked", "subject_dag_id": "marketplace__daily", "subject_task_id": "mrt_orders",
            "subject_date": datetime(2026, 1, 1, tzinfo=timezone.utc), "subject_run_id": "manual__stdout-check",
            "channel": "#nowhere-data", "domain": "finance", "roles": "consumer", "text": "stdout check",
            "blocks": [], "status": "pending"}])
    done = subprocess.run([*HANDOFF, "reconcile", "--since", "1h", "--format", "json"], capture_output=True,
                          text=True, env={**d.env(), "HANDOFF_NOTIFY": "slack"}, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    assert isinstance(json.loads(done.stdout), list), done.stdout[:500]
    assert "#nowhere-data not posted" in done.stderr, done.stderr[-2000:]
