"""Batched execution on a real Airflow 3.3 stack, with real dbt (docs/execution.md).

marketplace and finance, both compiled with `execution: batched`: one `handoff__batch` task per
DAG run runs the models in-process and settles each model task's state through handoff's route in
the api-server (handoff.airflow.batch_api: compare-and-set, dbt's timing, nothing cleared).

- a failing model: independent models succeed, its dependants are upstream_failed, and no model
  task started a process of its own (try_number 0); clearing one model runs it alone;
- a cross-domain sensor gates only its readers: finance's independent models are settled by the
  first wave while the sensor waits; its readers run in a second wave after marketplace succeeds;
- the batch process killed mid-wave: every model it had not settled ends upstream_failed (not
  running, not success);
- a person's "failed" on a model whose upstream the batch has not written yet survives that write
  (the batch's write clears nothing below it, unlike Airflow's public PATCH), and a failure
  written with its upstream's success in one flush is not lost (one wave, not two);
- the settle route itself: only a task without a state is set; unknown tasks, runs and DAG ids,
  bad bodies, no login and a read-only user are refused; what it set is in Airflow's audit log;
- settings present but wrong (a bad password) fail the batch before any dbt work, in one line
  without the secret.
One stack for the module; the runs use different logical dates.
"""

from __future__ import annotations

import os
import shutil
import signal
import time
from datetime import datetime, timedelta, timezone

import pytest
from support.airflow_stack import AirflowStack
from support.examples import REPO, build_mesh, deploy_plans

pytestmark = pytest.mark.airflow_stack

BATCH = "handoff__batch"
MARKETPLACE, FINANCE = "marketplace__daily", "finance__daily"
SENSOR = "wait__marketplace__mrt_orders"
READERS = ("stg_marketplace_orders", "mrt_revenue")
INDEPENDENT = ("stg_fx_rates", "mrt_fx_rates")


@pytest.fixture(scope="module")
def deployment(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("batched")
    mesh = build_mesh(tmp, build=True, domains=("marketplace", "finance"))

    def batched(domain: str, plan: dict) -> None:
        for pipeline in plan["pipelines"]:
            pipeline["execution"] = "batched"
            pipeline["max_active_runs"] = 4
            for task in pipeline["tasks"]:
                if task["kind"] == "sensor":
                    task.update(timeout_s=600, poke_interval_s=3)

    plans, registry_url = deploy_plans(mesh, tmp, ("marketplace", "finance"), adjust=batched)
    dags = tmp / "dags"
    dags.mkdir()
    shutil.copy(REPO / "integration_tests" / "airflow" / "dags" / "handoff_dags.py", dags / "handoff_dags.py")
    return {"mesh": mesh, "plans": plans, "registry_url": registry_url, "dags": dags}


class _Proxy:
    """A real HTTP proxy to the stack's api-server (the batch's HANDOFF_AIRFLOW_API_URL in this module).
    ``without_handoff``: answers 404 under /handoff/ — an api-server deployed without handoff (or a
    gateway that exposes only Airflow's own API). ``fail_settles``: run ids whose settle requests
    naming a task of ``fail_tasks`` answer 500 without reaching Airflow — a failed write;
    ``fail_first``: a run's next N settle requests answer 500 — a transient failure."""

    def __init__(self, target: str = "", *, without_handoff: bool = False) -> None:
        import threading
        import urllib.error
        import urllib.request
        from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

        self.target = target
        self.fail_settles: set[str] = set()
        self.fail_tasks: set[str] = set()
        self.fail_first: dict[str, int] = {}  # run id -> how many of its next settle requests answer 500
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            def _any(self) -> None:
                from urllib.parse import unquote

                length = int(self.headers.get("Content-Length") or 0)
                data = self.rfile.read(length) if length else None
                if without_handoff and self.path.startswith("/handoff/"):
                    self._answer(404, b'{"detail":"Not Found"}')
                    return
                path = unquote(self.path)
                budget = [r for r, n in proxy.fail_first.items() if n > 0 and f"/dagRuns/{r}/" in path]
                if path.endswith("/settle") and budget:
                    proxy.fail_first[budget[0]] -= 1
                    self._answer(500, b'{"detail":"injected: a transient failure"}')
                    return
                if (path.endswith("/settle") and any(f"/dagRuns/{r}/" in path for r in proxy.fail_settles)
                        and any(f'"{t}"' in (data or b"").decode() for t in proxy.fail_tasks)):
                    self._answer(500, b'{"detail":"injected: the write failed"}')
                    return
                headers = {k: v for k, v in self.headers.items() if k.lower() in ("authorization", "content-type")}
                request = urllib.request.Request(proxy.target + self.path, data=data, method=self.command,
                                                 headers=headers)
                try:
                    with urllib.request.urlopen(request, timeout=60) as response:
                        self._answer(response.status, response.read())
                except urllib.error.HTTPError as error:
                    self._answer(error.code, error.read())

            def _answer(self, status: int, body: bytes) -> None:
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            do_GET = do_POST = do_PATCH = _any

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture(scope="module")
def proxy():
    proxy = _Proxy()
    yield proxy
    proxy.close()


@pytest.fixture(scope="module")
def stack(deployment, module_airflow_stack_factory, proxy) -> AirflowStack:
    mesh = deployment["mesh"]
    stack = module_airflow_stack_factory(deployment["dags"], env={
        "HANDOFF_PLANS_DIR": str(deployment["plans"]),
        "HANDOFF_DBT_PROJECTS_DIR": str(mesh.root),
        "HANDOFF_DBT_PROFILES_DIR": str(mesh.profiles_dir),
        "HANDOFF_DUCKDB_PATH": str(mesh.duckdb_path),
        "HANDOFF_REGISTRY_URL": deployment["registry_url"],
        "HANDOFF_DBT_THREADS": "2",
        "DBT_SEND_ANONYMOUS_USAGE_STATS": "False",
        "HANDOFF_AIRFLOW_API_URL": proxy.url,  # the batch and the callbacks reach the api-server through it
    }, triggerer=True)
    proxy.target = stack.base_url
    stack.create_pool("duckdb", 1)
    stack.wait_for_dags(MARKETPLACE, FINANCE, timeout=300)
    return stack


def _day(offset: int) -> datetime:
    return datetime.now(timezone.utc).replace(hour=0, minute=0, second=0, microsecond=0) - timedelta(days=offset)


def _tis(stack: AirflowStack, dag_id: str, run_id: str) -> dict[str, dict]:
    return {ti["task_id"]: ti for ti in stack.airflow_api.list_task_instances(dag_id, run_id)}


def _when(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def test_a_failing_model_fails_alone_and_a_cleared_model_runs_alone(stack):
    run = stack.trigger(MARKETPLACE, _day(5) + timedelta(hours=3),
                        conf={"dbt_vars": {"handoff_example_fail": ["int_orders"]}})
    stack.wait_for_run(MARKETPLACE, run, timeout=300)
    tis = _tis(stack, MARKETPLACE, run)
    states = {t: ti["state"] for t, ti in tis.items()}
    assert states[BATCH] == "success", states
    assert states["int_orders"] == "failed" and states["mrt_orders"] == "upstream_failed", states
    assert all(states[t] == "success" for t in ("stg_orders", "stg_items", "mrt_items")), states
    # no model task started a try of its own: the batch settled them
    assert all(tis[t]["try_number"] == 0 for t in ("stg_orders", "stg_items", "mrt_items", "int_orders")), \
        {t: tis[t]["try_number"] for t in tis}
    assert "injected failure in int_orders" in (tis["int_orders"].get("note") or ""), tis["int_orders"].get("note")
    # written once, in the first wave: Airflow's write of stg_orders' success (often in the same flush)
    # did not clear it into a second build
    assert "wave 1," in tis["int_orders"]["note"], tis["int_orders"]["note"]
    assert "batch done after 1 wave(s)" in stack.airflow_api.task_log(MARKETPLACE, run, BATCH, 1)
    assert "handoff batch, wave" in (tis["mrt_items"].get("note") or "")

    # clearing one model task runs that model alone, through the single-task path
    status, answer = stack.airflow_api.request("POST", f"/api/v2/dags/{MARKETPLACE}/clearTaskInstances", body={
        "dag_run_id": run, "task_ids": ["mrt_items"], "dry_run": False, "only_failed": False,
        "include_downstream": False, "include_upstream": False, "reset_dag_runs": True})
    assert status == 200, (status, answer)
    ti = stack.wait_for_task(MARKETPLACE, run, "mrt_items", ["success", "failed"], timeout=300)
    assert ti["state"] == "success" and ti["try_number"] == 1, ti
    log = stack.airflow_api.task_log(MARKETPLACE, run, "mrt_items", 1)
    assert "mrt_items" in log and "stg_orders" not in log.split("mrt_items", 1)[1][:2000], log[-2000:]
    after = _tis(stack, MARKETPLACE, run)
    assert all(after[t]["try_number"] == tis[t]["try_number"] for t in tis if t != "mrt_items")


def test_a_sensor_gates_only_its_readers(stack):
    day = _day(4)
    finance = stack.trigger(FINANCE, day + timedelta(hours=5))
    # the first wave settles the independent models while the sensor waits
    for task_id in INDEPENDENT:
        stack.wait_for_task(FINANCE, finance, task_id, ["success"], timeout=300)
    tis = _tis(stack, FINANCE, finance)
    assert tis[SENSOR]["state"] in ("deferred", "running", "scheduled", "queued"), tis[SENSOR]
    assert all(tis[t]["state"] is None for t in READERS), {t: tis[t]["state"] for t in READERS}
    stack.wait_for_task(FINANCE, finance, BATCH, ["deferred"], timeout=240)  # waiting, no worker slot

    upstream = stack.trigger(MARKETPLACE, day + timedelta(hours=3))
    stack.wait_for_run(MARKETPLACE, upstream, timeout=300)
    stack.wait_for_run(FINANCE, finance, timeout=300)
    tis = _tis(stack, FINANCE, finance)
    assert all(ti["state"] == "success" for ti in tis.values()), {t: ti["state"] for t, ti in tis.items()}
    sensor_end = _when(tis[SENSOR]["end_date"])
    assert all(_when(tis[t]["end_date"]) < sensor_end for t in INDEPENDENT)
    assert all(_when(tis[t]["end_date"]) >= sensor_end for t in READERS)
    assert all(tis[t]["try_number"] == 0 for t in (*INDEPENDENT, *READERS))
    assert "wave 2" in (tis["mrt_revenue"].get("note") or ""), tis["mrt_revenue"].get("note")
    # the event chain: dbt finished mrt_orders -> its task success -> finance's sensor satisfied
    upstream_ti = _tis(stack, MARKETPLACE, upstream)["mrt_orders"]
    done = _when((upstream_ti.get("note") or "").split(", done ", 1)[1].split(";", 1)[0])
    success = _when(upstream_ti["end_date"])
    assert done <= success <= sensor_end, (done, success, sensor_end)
    print(f"\n[batched] dbt done -> task success {(success - done).total_seconds():.2f} s -> sensor satisfied "
          f"{(sensor_end - success).total_seconds():.2f} s")


def test_a_killed_batch_leaves_its_unsettled_models_failed(stack):
    run = stack.trigger(MARKETPLACE, _day(6) + timedelta(hours=3),
                        conf={"dbt_vars": {"handoff_example_slow": {"int_orders": 600}}})
    stack.wait_for_task(MARKETPLACE, run, "stg_orders", ["success"], timeout=300)
    batch = stack.wait_for_task(MARKETPLACE, run, BATCH, ["running"])
    pid = batch.get("pid")
    assert isinstance(pid, int) and pid > 0, batch
    os.kill(pid, signal.SIGKILL)
    stack.wait_for_run(MARKETPLACE, run, ["failed"], timeout=300)
    time.sleep(3)  # let the scheduler settle the dependants
    states = stack.task_states(MARKETPLACE, run)
    assert states[BATCH] == "failed", states
    assert states["stg_orders"] == "success", states
    for task_id in ("int_orders", "mrt_orders"):
        assert states[task_id] == "upstream_failed", states
    assert not [t for t, s in states.items() if s in ("running", "queued", "scheduled", "deferred", None)], states


def test_a_persons_failed_mark_survives_the_batch_writing_its_upstream(stack):
    run = stack.trigger(MARKETPLACE, _day(7) + timedelta(hours=3),
                        conf={"dbt_vars": {"handoff_example_slow": {"int_orders": 30}}})
    stack.wait_for_task(MARKETPLACE, run, "stg_orders", ["success"], timeout=300)
    # int_orders is building for 30 s: a person marks its dependant mrt_orders failed ("not today")
    path = f"/api/v2/dags/{MARKETPLACE}/dagRuns/{run}/taskInstances/mrt_orders"
    status, answer = stack.operator_api.request("PATCH", path, body={"new_state": "failed"})
    assert status == 200, (status, answer)
    assert stack.task_states(MARKETPLACE, run)["int_orders"] is None  # its upstream is not written yet
    stack.wait_for_run(MARKETPLACE, run, timeout=300)
    states = stack.task_states(MARKETPLACE, run)
    assert states["int_orders"] == "success", states
    # the batch's write of int_orders' success did not clear mrt_orders (Airflow's public PATCH would)
    assert states["mrt_orders"] == "failed", states
    log = stack.airflow_api.task_log(MARKETPLACE, run, BATCH, 1)
    assert "mrt_orders: left failed (set meanwhile, not by the batch)" in log, log[-3000:]
    assert "mrt_orders" not in _tis(stack, MARKETPLACE, run)["int_orders"].get("note", "")


def test_the_settle_route_sets_only_tasks_without_a_state_and_refuses_the_rest(stack):
    from handoff.errors import HandoffError

    run = stack.trigger(MARKETPLACE, _day(8) + timedelta(hours=3))
    stack.wait_for_run(MARKETPLACE, run, timeout=300)
    tis = _tis(stack, MARKETPLACE, run)
    assert all(ti["state"] == "success" for ti in tis.values()), {t: ti["state"] for t, ti in tis.items()}
    # dbt's timing is the task's: it ended when dbt finished it (the note's "done"), it started before
    ti = tis["mrt_items"]
    done = _when(ti["note"].split(", done ", 1)[1].split(";", 1)[0])
    assert abs((_when(ti["end_date"]) - done).total_seconds()) < 0.01, (ti["end_date"], done)
    assert _when(ti["start_date"]) < _when(ti["end_date"]), ti
    assert 0 < ti["duration"] < 60, ti
    # the audit log names what the batch set, by whom
    events = stack.airflow_api.list_event_logs(MARKETPLACE, run_id=run, events=["handoff_batch_settle"])
    assert events and {e["owner"] for e in events} == {stack.username}, events
    assert "mrt_items" in " ".join(str(e.get("extra")) for e in events), events

    api = stack.operator_api
    path = f"/handoff/api/batch/dags/{MARKETPLACE}/dagRuns/{run}/settle"
    # compare-and-set: a task that has a state keeps it; an unknown task is named
    answer = api.settle_task_states(MARKETPLACE, run, [{"task_id": "mrt_items", "state": "failed"},
                                                       {"task_id": "no_such_model", "state": "success"}])
    assert answer == {"mrt_items": "already success", "no_such_model": "not found"}, answer
    assert stack.task_states(MARKETPLACE, run)["mrt_items"] == "success"
    # a bad item costs only itself (tests/test_batch_api.py has the item rules); the rest is answered
    answer = api.settle_task_states(MARKETPLACE, run, [
        {"task_id": "mrt_items", "state": "running"},
        {"task_id": "stg_items", "state": "failed", "note": "a\rb"},
        {"task_id": "mrt_orders", "state": "failed", "start_date": 1000000000000},
        {"task_id": "../x", "state": "success"},
        {"task_id": "stg_orders", "state": "failed"}])
    assert answer["stg_orders"] == "already success", answer
    assert answer["mrt_items"].startswith("refused: state") and answer["stg_items"].startswith("refused: note"), answer
    assert answer["mrt_orders"].startswith("refused: start_date") and answer["#3"].startswith("refused: task_id"), answer
    assert {t: s for t, s in stack.task_states(MARKETPLACE, run).items() if t != BATCH} == {
        t: "success" for t in tis if t != BATCH}
    # a body that is not the shape, or too big, is one line
    for body, code in (({"task_instances": []}, 400), (["mrt_items"], 400),
                       ({"task_instances": [{"task_id": f"t{i}", "state": "success"} for i in range(1001)]}, 400),
                       ({"task_instances": [{"task_id": "t", "state": "success", "x": "a" * 9_000_000}]}, 413)):
        status, answer = api.request("POST", path, body=body, idempotent=False)
        assert status == code and isinstance(answer, dict) and "\n" not in str(answer.get("detail")), (status, answer)
    status, answer = api.request("POST", path, body="not json {", idempotent=False)
    assert status == 400, (status, answer)
    # an unknown run or DAG is a 404
    status, _ = api.request("POST", f"/handoff/api/batch/dags/{MARKETPLACE}/dagRuns/manual__nope/settle",
                            body={"task_instances": [{"task_id": "mrt_items", "state": "success"}]},
                            idempotent=False)
    assert status == 404
    # no login: 401; a read-only user: 403, on the probe and on the write, in one line
    status, _ = api.request("GET", f"/handoff/api/batch/dags/{MARKETPLACE}", authorized=False)
    assert status == 401
    assert api.can_settle(MARKETPLACE) is True
    with pytest.raises(HandoffError) as caught:
        stack.viewer_api.can_settle(MARKETPLACE)
    assert "403" in caught.value.one_line() and "may not edit task instances" in caught.value.one_line()
    with pytest.raises(HandoffError) as caught:
        stack.viewer_api.settle_task_states(MARKETPLACE, run, [{"task_id": "mrt_items", "state": "failed"}])
    assert "403" in caught.value.one_line()
    assert stack.task_states(MARKETPLACE, run)["mrt_items"] == "success"


def test_wrong_api_settings_fail_the_batch_before_any_dbt_work(stack, monkeypatch):
    from types import SimpleNamespace

    from handoff.airflow.batch import BatchFailed, DbtBatchOperator
    from handoff.airflow.dbt_runner import DbtProject
    from handoff.batching import BatchModel

    secret = "n0t-the-Passw0rd"
    monkeypatch.setenv("HANDOFF_AIRFLOW_API_URL", stack.base_url)
    monkeypatch.setenv("HANDOFF_AIRFLOW_API_USERNAME", stack.username)
    monkeypatch.setenv("HANDOFF_AIRFLOW_API_PASSWORD", secret)
    model = BatchModel(task_id="stg_orders", unique_id="model.marketplace.stg_orders",
                       select=("model.marketplace.stg_orders",), tests=(), upstream=())
    # a project directory that does not exist: reaching dbt would fail differently
    op = DbtBatchOperator(task_id=BATCH, project=DbtProject("/nonexistent/project", "/nonexistent"),
                          models=[model])
    with pytest.raises(BatchFailed) as caught:
        op.execute({"ti": SimpleNamespace(dag_id=MARKETPLACE, run_id="manual__2026-01-01T00:00:00+00:00")})
    text = str(caught.value)
    assert "\n" not in text and secret not in text, text
    assert "cannot use the Airflow REST API" in text and "401" in text, text


def test_a_settle_by_someone_else_wins_over_the_batch_and_dates_stay_inside_the_run(stack):
    run = stack.trigger(MARKETPLACE, _day(10) + timedelta(hours=3),
                        conf={"dbt_vars": {"handoff_example_slow": {"int_orders": 20}}})
    stack.wait_for_task(MARKETPLACE, run, "stg_orders", ["success"], timeout=300)
    # int_orders is building for 20 s; a person (role USER) settles it and its dependant first,
    # with dates outside the run: they are kept inside [run start, now]
    answer = stack.operator_api.settle_task_states(MARKETPLACE, run, [
        {"task_id": "int_orders", "state": "success", "note": "done by hand",
         "start_date": "1970-01-01T00:00:00+00:00", "end_date": "2999-01-01T00:00:00+00:00"},
        {"task_id": "mrt_orders", "state": "failed"}])
    assert answer == {"int_orders": "ok", "mrt_orders": "ok"}, answer
    asked_at = datetime.now(timezone.utc)
    stack.wait_for_run(MARKETPLACE, run, ["success", "failed"], timeout=300)
    tis = _tis(stack, MARKETPLACE, run)
    dag_run = stack.airflow_api.get_dag_run(MARKETPLACE, run)
    assert tis["int_orders"]["state"] == "success" and tis["int_orders"]["note"] == "done by hand", tis["int_orders"]
    assert tis["mrt_orders"]["state"] == "failed", tis["mrt_orders"]
    start, end = _when(tis["int_orders"]["start_date"]), _when(tis["int_orders"]["end_date"])
    assert _when(dag_run["start_date"]) <= start <= end <= asked_at + timedelta(seconds=5), (start, end, dag_run)
    # the batch built both (dbt had them in its wave) and left them as set
    log = stack.airflow_api.task_log(MARKETPLACE, run, BATCH, 1)
    assert "int_orders: left success (set meanwhile, not by the batch)" in log, log[-3000:]
    assert "mrt_orders: left failed (set meanwhile, not by the batch)" in log, log[-3000:]
    events = stack.airflow_api.list_event_logs(MARKETPLACE, run_id=run, events=["handoff_batch_settle"])
    assert "operator" in {e["owner"] for e in events}, events

def test_a_model_whose_state_could_not_be_written_is_left_to_airflow_with_everything_below_it(stack, proxy):
    run = stack.trigger(MARKETPLACE, _day(11) + timedelta(hours=3),
                        conf={"dbt_vars": {"handoff_example_slow": {"int_orders": 8}}})
    proxy.fail_tasks.add("int_orders")
    proxy.fail_settles.add(run)  # before int_orders finishes (it builds for 8 s after the batch starts)
    try:
        stack.wait_for_run(MARKETPLACE, run, ["success", "failed"], timeout=300)
    finally:
        proxy.fail_settles.discard(run)
    tis = _tis(stack, MARKETPLACE, run)
    log = stack.airflow_api.task_log(MARKETPLACE, run, BATCH, 1)
    assert "int_orders: could not set success: not written" in log, log[-3000:]
    # its dependant was built by dbt in the same wave, but not settled by the batch: Airflow ran both
    # alone after the batch (try 1), int_orders first — never a success on an upstream Airflow did not know
    assert ("mrt_orders: not written (an upstream's state could not be written)" in log
            or "mrt_orders: could not set success" in log), log[-3000:]
    assert {t: (tis[t]["state"], tis[t]["try_number"]) for t in ("int_orders", "mrt_orders")} == {
        "int_orders": ("success", 1), "mrt_orders": ("success", 1)}, tis
    assert _when(tis["int_orders"]["end_date"]) <= _when(tis["mrt_orders"]["start_date"])
    assert tis["stg_orders"]["try_number"] == 0 and tis["stg_orders"]["state"] == "success"


def test_a_transient_write_failure_is_resent_and_nothing_is_built_twice(stack, proxy):
    run = stack.trigger(MARKETPLACE, _day(12) + timedelta(hours=3))
    proxy.fail_first[run] = 1  # the batch's first settle request answers 500 without reaching Airflow
    stack.wait_for_run(MARKETPLACE, run, ["success", "failed"], timeout=300)
    assert proxy.fail_first[run] == 0, "the injected failure was used"
    tis = _tis(stack, MARKETPLACE, run)
    log = stack.airflow_api.task_log(MARKETPLACE, run, BATCH, 1)
    assert "re-reading their states (attempt 1 of 3)" in log, log[-3000:]
    assert "could not set" not in log and "left to Airflow" not in log, log[-3000:]
    models = [t for t in tis if t != BATCH]
    assert {t: (tis[t]["state"], tis[t]["try_number"]) for t in models} == {t: ("success", 0) for t in models}, tis


def test_a_user_who_may_not_edit_and_an_api_server_without_handoff_cost_no_dbt_work(stack, monkeypatch):
    from types import SimpleNamespace

    from handoff.airflow.batch import BatchFailed, DbtBatchOperator
    from handoff.airflow.dbt_runner import DbtProject
    from handoff.batching import BatchModel

    run = stack.trigger(MARKETPLACE, _day(9) + timedelta(hours=3))  # a run that exists
    stack.wait_for_run(MARKETPLACE, run, timeout=300)
    context = {"ti": SimpleNamespace(dag_id=MARKETPLACE, run_id=run)}
    model = BatchModel(task_id="stg_orders", unique_id="model.marketplace.stg_orders",
                       select=("model.marketplace.stg_orders",), tests=(), upstream=())
    # a project directory that does not exist: reaching dbt would fail differently
    op = DbtBatchOperator(task_id=BATCH, project=DbtProject("/nonexistent/project", "/nonexistent"),
                          models=[model])

    # a read-only user: refused by the probe, before any dbt work, in one line without the secret
    monkeypatch.setenv("HANDOFF_AIRFLOW_API_URL", stack.base_url)
    monkeypatch.setenv("HANDOFF_AIRFLOW_API_USERNAME", "reader")
    monkeypatch.setenv("HANDOFF_AIRFLOW_API_PASSWORD", stack.operator_password)
    with pytest.raises(BatchFailed) as caught:
        op.execute(context)
    text = str(caught.value)
    assert "\n" not in text and stack.operator_password not in text, text
    assert "cannot write task states" in text and "403" in text and "may not edit task instances" in text, text

    # an api-server without handoff's route: the batch does nothing and says so; the models run per task
    proxy = _Proxy(stack.base_url, without_handoff=True)
    try:
        monkeypatch.setenv("HANDOFF_AIRFLOW_API_URL", proxy.url)
        monkeypatch.setenv("HANDOFF_AIRFLOW_API_USERNAME", stack.username)
        monkeypatch.setenv("HANDOFF_AIRFLOW_API_PASSWORD", stack.password)
        lines: list[str] = []
        monkeypatch.setattr(op.log, "warning", lambda msg, *args: lines.append(msg % args))
        assert op.execute(context) == {"success": 0, "failed": 0, "retried": 0, "per_task": 1}
    finally:
        proxy.close()
    lines = [line for line in lines if line.startswith("handoff:")]  # Airflow warns of execute() outside a worker
    assert len(lines) == 1 and "has none (GET /handoff/api/batch answered 404)" in lines[0], lines
    assert proxy.url in lines[0] and "per_task" in lines[0], lines
