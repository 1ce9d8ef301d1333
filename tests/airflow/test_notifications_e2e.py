"""Telling people, on a real Airflow 3.3 stack with real dbt and a Slack-compatible receiver on 127.0.0.1.

One stack for the module (SQLite, LocalExecutor, triggerer). marketplace (per task) publishes
mrt_orders; finance (batched) reads it through the sensor wait__marketplace__mrt_orders (timeout
30 s); marketing is published to the registry only (it reads finance.mrt_revenue: a transitive
consumer of marketplace). Slack: the Airflow connection ``handoff_slack`` is the receiver's shared
webhook, ``handoff_slack_finance_data`` finance's own one. Failures and slowness are injected through
the run's conf (``dbt_vars: handoff_example_fail / handoff_example_slow``, the example models' hook).

(a) mrt_orders fails for good (2 tries): exactly one 'blocked' message per consuming channel plus
    one to the owner, naming the blocked tasks — posted by the failure callback in the task's own
    process; a finance run whose sensor then times out on the same upstream run adds nothing.
(b) a finance run waits on a marketplace run that comes late: its sensor times out ("is late"
    messages, posted by the sensor's failure callback on the worker), the upstream then succeeds,
    recovery resumes the run, and every channel told gets one 'resumed' follow-up.
(c) a model past its SLA: the SLA watch (a deferrable task sleeping in the triggerer until the
    deadline) records the miss and posts one message per channel within 60 s of the deadline; the
    model's eventual success is recorded on the miss.
(d) the retry of (a), the sensor of (a), a duplicate failure callback and two sweeps post nothing more.
(batched) a batched model failing for good: the batch runs its failure callback: the same messages.
Every scenario has its own logical date; the scheduler creates no runs (only the test's triggers).
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
from support.airflow_stack import AirflowStack
from support.examples import REPO, build_mesh, check, deploy_plans, run_dbt
from support.slack_receiver import SlackReceiver

pytestmark = pytest.mark.airflow_stack

UTC = timezone.utc
SENSOR = "wait__marketplace__mrt_orders"
READERS = ("stg_marketplace_orders", "mrt_revenue")
FINANCE_TASKS = {SENSOR, *READERS, "stg_fx_rates"}
SENSOR_TIMEOUT_S = 30
HANDOFF = [sys.executable, "-m", "handoff.cli"]
DAYS = {name: datetime(2025, 2, 3 + i, tzinfo=UTC) for i, name in enumerate(("failed", "late", "batched"))}
CHANNELS = {"#marketplace-data", "#finance-data", "#marketing-data"}
FINANCE_HOOK = "T0TEST/B0FINANCE/finance"


def shrink_plan(domain: str, plan: dict) -> None:
    """Test-sized plans: marketplace's mrt_orders alone (2 tries, its own task); finance batched around
    the sensor."""
    pipeline = plan["pipelines"][0]
    keep = {"marketplace": {"mrt_orders"}, "finance": FINANCE_TASKS}[domain]
    pipeline["tasks"] = [t for t in pipeline["tasks"] if t["task_id"] in keep]
    pipeline["max_active_runs"] = 8
    for task in pipeline["tasks"]:
        task["upstream"] = [u for u in task["upstream"] if u in keep]
        if task["task_id"] == SENSOR:
            task.update(timeout_s=SENSOR_TIMEOUT_S, poke_interval_s=3)
        elif task["kind"] != "sensor":
            task.update(retries=1 if domain == "marketplace" else 0, retry_delay_s=1)
    # marketplace's task runs (and retries) in its own process; finance batched (the default, set anyway)
    pipeline["execution"] = "batched" if domain == "finance" else "per_task"


@dataclass
class Deployment:
    stack: AirflowStack
    slack: SlackReceiver
    registry_url: str
    plans: Path

    def env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("HANDOFF_AIRFLOW_API", "AIRFLOW_CONN"))}
        env.update(HANDOFF_REGISTRY_URL=self.registry_url, HANDOFF_AIRFLOW_API_URL=self.stack.base_url,
                   HANDOFF_AIRFLOW_API_USERNAME=self.stack.username, HANDOFF_AIRFLOW_API_PASSWORD=self.stack.password,
                   AIRFLOW_CONN_HANDOFF_SLACK=json.dumps({"conn_type": "slackwebhook",
                                                          "password": self.slack.url("T0TEST/B0SHARED/shared")}))
        return env


@pytest.fixture(scope="module")
def deployment(tmp_path_factory, module_airflow_stack_factory) -> Iterator[Deployment]:
    tmp = tmp_path_factory.mktemp("notify")
    mesh = build_mesh(tmp, build=True, domains=("marketplace", "finance"))
    plans, registry_url = deploy_plans(mesh, tmp, ("marketplace", "finance"), adjust=shrink_plan)
    marketing = mesh.root / "marketing"  # published, not deployed: a transitive consumer to tell
    check(run_dbt(["deps"], marketing, mesh.env))
    check(run_dbt(["parse"], marketing, mesh.env))
    from handoff.manifest import load_manifest
    from handoff.plan import compile_manifest
    from handoff.registry import Registry

    with Registry(registry_url, must_exist=True) as registry:
        registry.publish([compile_manifest(load_manifest(marketing / "target" / "manifest.json"))])
    dags = tmp / "dags"
    dags.mkdir()
    shutil.copy(REPO / "integration_tests" / "airflow" / "dags" / "handoff_dags.py", dags / "handoff_dags.py")
    slack = SlackReceiver()
    try:
        stack = module_airflow_stack_factory(dags, env={
            "HANDOFF_PLANS_DIR": str(plans),
            "HANDOFF_DBT_PROJECTS_DIR": str(mesh.root),
            "HANDOFF_DBT_PROFILES_DIR": str(mesh.profiles_dir),
            "HANDOFF_DUCKDB_PATH": str(mesh.duckdb_path),
            "HANDOFF_REGISTRY_URL": registry_url,
            "HANDOFF_SLA_WATCH_SCHEDULE": "@hourly",  # the watch DAG (runs only when the test triggers it)
            "DBT_SEND_ANONYMOUS_USAGE_STATS": "False",
        }, triggerer=True)
        stack.create_pool("duckdb", 1)
        for conn_id, path in (("handoff_slack", "T0TEST/B0SHARED/shared"), ("handoff_slack_finance_data", FINANCE_HOOK)):
            status, answer = stack.airflow_api.request("POST", "/api/v2/connections", body={
                "connection_id": conn_id, "conn_type": "slackwebhook", "password": slack.url(path)})
            assert status == 201, answer
        stack.wait_for_dags("marketplace__daily", "finance__daily", "handoff_sla_watch", timeout=300)
        yield Deployment(stack, slack, registry_url, plans)
    finally:
        slack.stop()


@pytest.fixture(scope="module")
def late_runs(deployment) -> dict[str, str]:
    """The finance runs whose sensors must time out: 'late' starts as soon as a test needs it (its
    upstream comes after the timeout); 'failed' is added by (a) once its upstream run has failed."""
    return {"late": trigger(deployment, "finance__daily", "late")}


# -- helpers ---------------------------------------------------------------------------------------

def trigger(d: Deployment, dag_id: str, day: str, **dbt_vars: object) -> str:
    hour = 3 if dag_id.startswith("marketplace") else 5
    return d.stack.trigger(dag_id, DAYS[day] + timedelta(hours=hour),
                           conf={"dbt_vars": dbt_vars} if dbt_vars else None)


def about(d: Deployment, day: str, kind: str) -> dict[str, dict]:
    """The requests the receiver got about ``day``'s marketplace run, of one kind: channel -> body."""
    stamp = f"{(DAYS[day] + timedelta(hours=3)):%Y-%m-%d %H:%M} UTC"
    found: dict[str, dict] = {}
    for r in d.slack.accepted():
        text = r.body.get("text", "")
        if stamp in text and text.startswith(kind):
            channel = "#finance-data" if r.channel_path == FINANCE_HOOK else r.body.get("channel")
            assert channel not in found, f"two {kind} messages to {channel}: {text}"
            found[channel] = r.body
    return found


def wait_for_messages(d: Deployment, day: str, kind: str, channels: set[str], timeout: float = 240) -> dict[str, dict]:
    d.stack.wait_until(lambda: set(about(d, day, kind)) >= channels, timeout,
                       lambda: f"{kind} messages about {day}: {sorted(about(d, day, kind))}, wanted {sorted(channels)}; "
                               f"all: {[r.body.get('text', '')[:90] for r in d.slack.requests]}")
    return about(d, day, kind)


def outbox(d: Deployment, **filters: object) -> list:
    from handoff.registry import Registry

    with Registry(d.registry_url, must_exist=True) as registry:
        return registry.notifications(limit=1000, **filters)  # type: ignore[arg-type]


def task_log(d: Deployment, dag_id: str, run_id: str, task_id: str, try_number: int) -> str:
    return d.stack.airflow_api.task_log(dag_id, run_id, task_id, try_number)


def reconcile(d: Deployment) -> str:
    done = subprocess.run([*HANDOFF, "reconcile", "--since", "1h"], capture_output=True, text=True, env=d.env(),
                          timeout=600)
    assert done.returncode == 0, done.stderr
    return done.stdout


# -- the scenarios ---------------------------------------------------------------------------------

def test_a_an_upstream_failing_for_good_tells_each_consuming_channel_and_the_owner_once(deployment, late_runs):
    d = deployment
    upstream = trigger(d, "marketplace__daily", "failed", handoff_example_fail=["mrt_orders"])
    d.stack.wait_for_run("marketplace__daily", upstream, ["failed"], timeout=300)
    ti = d.stack.airflow_api.get_task_instance("marketplace__daily", upstream, "mrt_orders")
    assert (ti["state"], ti["try_number"]) == ("failed", 2)
    messages = wait_for_messages(d, "failed", "Blocked: marketplace.mrt_orders failed after 2 tries", CHANNELS)
    assert set(messages) == CHANNELS
    finance = messages["#finance-data"]["text"]
    assert "`finance__daily` run of 2025-02-03 05:00 UTC: `mrt_revenue`, `stg_marketplace_orders`" in finance
    assert f"waiting in `{SENSOR}`" in finance and "resumes the blocked runs by itself" in finance
    assert "`marketing__daily` (via finance.mrt_revenue): `mrt_campaign_performance`" in \
        messages["#marketing-data"]["text"]
    assert "finance (team-finance, #finance-data): 2 tasks in `finance__daily`" in \
        messages["#marketplace-data"]["text"]
    assert all(m["blocks"][0]["type"] == "header" for m in messages.values())
    # where it ran: the failure callback, in the task's own process (its log), on the last try only
    assert "blocked messages: 3 added, 3 posted" in task_log(d, "marketplace__daily", upstream, "mrt_orders", 2)
    assert "blocked messages" not in task_log(d, "marketplace__daily", upstream, "mrt_orders", 1)
    late_runs["failed"] = trigger(d, "finance__daily", "failed")  # (d): its sensor gives up on this run


def test_d_the_retry_the_timed_out_sensor_a_duplicate_callback_and_the_sweep_post_nothing_more(deployment, late_runs):
    d = deployment
    finance = late_runs["failed"]  # its sensor waits on the failed run, then gives up
    d.stack.wait_for_task("finance__daily", finance, SENSOR, ["failed"], timeout=SENSOR_TIMEOUT_S + 240)
    assert "TaskDeferralTimeout" in task_log(d, "finance__daily", finance, SENSOR, 1)  # its callback ran on the worker
    upstream = d.stack.airflow_api.list_dag_runs("marketplace__daily", logical_date_gte=DAYS["failed"],
                                                 logical_date_lte=DAYS["failed"] + timedelta(hours=3))[0]["dag_run_id"]
    from handoff.airflow.callbacks import on_model_failed

    class Ti:  # a duplicate of mrt_orders' failure callback (what the dag-processor would run too)
        dag_id, task_id, run_id, try_number = "marketplace__daily", "mrt_orders", upstream, 2

    class Run:
        logical_date, run_after = DAYS["failed"] + timedelta(hours=3), DAYS["failed"] + timedelta(hours=3)

    env = d.env()
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    try:
        on_model_failed({"ti": Ti(), "dag_run": Run()})
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
    nothing = "messages: 0 added, 0 sent, 0 dry run, 0 muted, 0 failed"
    assert nothing in reconcile(d)  # the sweep: the failed task is reported already
    assert nothing in reconcile(d)
    time.sleep(2)
    messages = about(d, "failed", "Blocked: marketplace.mrt_orders")
    assert set(messages) == CHANNELS  # about() fails on any second message to a channel
    rows = outbox(d, kind="blocked", subject_date=DAYS["failed"] + timedelta(hours=3))
    assert sorted(r.channel for r in rows) == sorted(CHANNELS) and {r.status for r in rows} == {"sent"}


def test_b_a_late_upstream_is_announced_then_resumed_after_recovery(deployment, late_runs, record_property):
    d = deployment
    finance = late_runs["late"]
    d.stack.wait_for_run("finance__daily", finance, ["failed"], timeout=SENSOR_TIMEOUT_S + 240)
    late = wait_for_messages(d, "late", "Blocked: marketplace.mrt_orders is late", CHANNELS)
    assert f"finance's sensor {SENSOR} gave up waiting on it after 30s" in late["#finance-data"]["text"]
    upstream = trigger(d, "marketplace__daily", "late")
    d.stack.wait_for_run("marketplace__daily", upstream, ["success"], timeout=300)
    ended = datetime.fromisoformat(d.stack.airflow_api.get_task_instance(
        "marketplace__daily", upstream, "mrt_orders")["end_date"].replace("Z", "+00:00"))
    resumed = wait_for_messages(d, "late", "Resumed: marketplace.mrt_orders succeeded", CHANNELS)
    assert f"Released by handoff: `finance__daily` {finance}: `{SENSOR}`" in resumed["#finance-data"]["text"]
    assert "Consumers released: 1 sensor in `finance__daily`" in resumed["#marketplace-data"]["text"]
    d.stack.wait_for_run("finance__daily", finance, ["success"], timeout=300)  # recovery resumed it
    posted = max(r.at for r in d.slack.accepted() if r.body.get("text", "").startswith("Resumed"))
    latency = posted - ended.timestamp()
    record_property("resumed_latency_s", round(latency, 2))
    print(f"\n[notify] upstream success -> 'resumed' posted: {latency:.1f} s")
    assert latency >= -1, latency  # posted after the upstream ended (how fast: measured, never asserted)
    assert len(outbox(d, kind="resumed")) == 3


def test_batched_a_model_the_batch_fails_for_good_is_reported_by_the_batch(deployment, late_runs):
    d = deployment
    upstream = trigger(d, "marketplace__daily", "batched")
    d.stack.wait_for_run("marketplace__daily", upstream, ["success"], timeout=300)
    finance = trigger(d, "finance__daily", "batched", handoff_example_fail=["mrt_revenue"])
    d.stack.wait_for_run("finance__daily", finance, ["failed"], timeout=300)
    assert d.stack.task_states("finance__daily", finance)["mrt_revenue"] == "failed"
    stamp = f"{(DAYS['batched'] + timedelta(hours=5)):%Y-%m-%d %H:%M} UTC"

    def reported() -> dict[str, str]:
        return {("#finance-data" if r.channel_path == FINANCE_HOOK else r.body.get("channel")): r.body["text"]
                for r in d.slack.accepted() if r.body.get("text", "").startswith("Blocked: finance.mrt_revenue")
                and stamp in r.body["text"]}

    d.stack.wait_until(lambda: set(reported()) == {"#finance-data", "#marketing-data"}, 240,
                       lambda: f"batched failure messages: {reported()}")
    assert "`marketing__daily`" in reported()["#marketing-data"]
    log = task_log(d, "finance__daily", finance, "handoff__batch", 1)
    assert "blocked messages: 2 added, 2 posted" in log  # the batch ran the model's failure callback


def test_c_a_model_past_its_sla_is_reported_within_a_minute_and_its_late_success_recorded(deployment,
                                                                                          record_property):
    d = deployment
    from handoff.alignment import upstream_logical_date
    from handoff.plan import validate_plan
    from handoff.registry import Registry

    now = datetime.now(UTC)
    run_date = upstream_logical_date(now, "0 5 * * *")  # finance's latest tick: a scheduled run's date
    upstream = d.stack.trigger("marketplace__daily", upstream_logical_date(run_date, "0 3 * * *"))
    d.stack.wait_for_run("marketplace__daily", upstream, ["success"], timeout=300)
    finance = d.stack.trigger("finance__daily", run_date, conf={"dbt_vars": {"handoff_example_slow": {"mrt_revenue": 300}}})
    d.stack.wait_for_task("finance__daily", finance, "handoff__batch", ["running", "deferred"], timeout=240)
    # mrt_revenue promises its data 150 s from now (republished: the SLA lives in the registry, not the
    # DAG); it takes 300 s. A watch that starts after the deadline (a loaded machine) checks at once.
    deadline = datetime.now(UTC).replace(microsecond=0) + timedelta(seconds=150)
    plan = json.loads((d.plans / "finance.plan.json").read_text())
    for task in plan["pipelines"][0]["tasks"]:
        if task["task_id"] == "mrt_revenue":
            task.update(available_by=None, available_within_s=int((deadline - run_date).total_seconds()))
    with Registry(d.registry_url, must_exist=True) as registry:
        registry.publish([validate_plan(plan, "finance.plan.json (test-sized SLA)")])
    watch = d.stack.trigger("handoff_sla_watch", None)
    d.stack.wait_for_task("handoff_sla_watch", watch, "watch", ["deferred"], timeout=240)  # asleep till the deadline

    stamp = f"run of {run_date:%Y-%m-%d %H:%M} UTC"

    def posts() -> list[object]:
        # the single-model message, or one listing every miss of that check for the channel (D39)
        return [r for r in d.slack.accepted() if r.body.get("text", "").startswith("SLA missed: ")
                and "*finance.mrt_revenue* (`finance__daily`, " + stamp in r.body["text"]]

    def reported() -> dict[str, object]:
        return {("#finance-data" if r.channel_path == FINANCE_HOOK else r.body.get("channel")): r  # type: ignore[attr-defined]
                for r in posts()}

    d.stack.wait_until(lambda: set(reported()) == {"#finance-data", "#marketing-data"}, 240,
                       lambda: f"SLA miss messages: {sorted(reported())}")
    found = reported()
    late = max(r.at for r in found.values()) - deadline.timestamp()  # type: ignore[attr-defined]
    record_property("sla_miss_message_after_deadline_s", round(late, 2))
    print(f"\n[notify] deadline -> SLA miss posted: {late:.1f} s")
    assert 0 <= late <= 60, late
    text = found["#finance-data"].body["text"]  # type: ignore[attr-defined]
    assert "at the deadline it was *" in text and " in the batch" in text, text  # batched: no task state yet
    assert "read by marketing" in text.lower()
    with Registry(d.registry_url, must_exist=True) as registry:
        [miss] = [m for m in registry.sla_misses(dag_ids=["finance__daily"]) if m.logical_date == run_date]
    assert (miss.task_id, miss.deadline) == ("mrt_revenue", deadline) and "in the batch" in miss.state_at_deadline
    assert miss.sla.startswith("available_within ")
    # the sweep checks SLAs too (its safety net): it finds the miss recorded and posts nothing
    swept = subprocess.run([*HANDOFF, "reconcile", "--since", "3h", "--registry", d.registry_url], env=d.env(),
                           capture_output=True, text=True, timeout=300)
    assert swept.returncode == 0, swept.stderr
    # the model succeeds late: the miss gets its completion time
    d.stack.wait_for_run("finance__daily", finance, ["success"], timeout=300)
    with Registry(d.registry_url, must_exist=True) as registry:
        d.stack.wait_until(lambda: registry.sla_misses(dag_ids=["finance__daily"])[0].completed_at is not None, 240,
                           lambda: "the late success was not recorded on the miss")
        [miss] = [m for m in registry.sla_misses(dag_ids=["finance__daily"]) if m.logical_date == run_date]
    assert miss.completed_at > deadline
    assert len(posts()) == 2  # one message per channel, however often the watch woke and the sweep ran
