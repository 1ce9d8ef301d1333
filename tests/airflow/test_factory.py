"""The DAG factory on real Airflow 3.3: integrity, wiring, hostile names, worker fast path."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import pytest
from handoff.manifest import load_manifest
from handoff.plan import PLAN_VERSION, compile_manifest
from support.documents import plan_text


@pytest.fixture(scope="module")
def plans_dir(fixture_manifest, tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("plans")
    for name in ("shapes", "evil"):
        plan = compile_manifest(load_manifest(fixture_manifest(name))).to_json()  # the document, to edit
        for pipeline in plan["pipelines"]:  # the per-task shape; the batched one (default): test_batched_factory
            pipeline["execution"] = "per_task"
        (folder / f"{plan['domain']['name']}.plan.json").write_text(plan_text(plan))
    return folder


@pytest.fixture(scope="module")
def projects_dir(fixture_manifest) -> Path:
    return fixture_manifest("shapes").parents[2]


def _load(plans_dir: Path, projects_dir: Path, **kwargs):
    from handoff.airflow import load_dags

    return load_dags(plans_dir, dbt_projects_dir=projects_dir, **kwargs)


def test_dagbag_loads_every_plan_without_import_errors(airflow_home, plans_dir, projects_dir, monkeypatch):
    from airflow.dag_processing.dagbag import BundleDagBag

    monkeypatch.setenv("HANDOFF_PLANS_DIR", str(plans_dir))
    monkeypatch.setenv("HANDOFF_DBT_PROJECTS_DIR", str(projects_dir))
    bag = BundleDagBag(dag_folder=airflow_home / "dags", bundle_path=airflow_home / "dags")
    assert bag.import_errors == {}
    counts = {dag_id: len(dag.tasks) for dag_id, dag in bag.dags.items()}
    assert counts == {"shapes__daily": 8, "shapes__hourly": 3, "evil__daily": 2}


def test_wiring_equals_the_rshift_operator(plans_dir, projects_dir):
    """Edges written into the id sets are exactly what `a >> b` produces."""
    from airflow.providers.standard.operators.empty import EmptyOperator
    from airflow.sdk import DAG

    dags = _load(plans_dir, projects_dir)
    plan = json.loads((plans_dir / "shapes.plan.json").read_text())
    for pipeline in plan["pipelines"]:
        built = dags[pipeline["dag_id"]]
        with DAG(dag_id=f"ref_{pipeline['dag_id']}", schedule=None) as reference:
            ops = {t["task_id"]: EmptyOperator(task_id=t["task_id"]) for t in pipeline["tasks"]}
        for t in pipeline["tasks"]:
            for up in t["upstream"]:
                ops[up] >> ops[t["task_id"]]
        for task_id, op in ops.items():
            assert built.task_dict[task_id].upstream_task_ids == op.upstream_task_ids, task_id
            assert built.task_dict[task_id].downstream_task_ids == op.downstream_task_ids, task_id
        assert [t.task_id for t in built.topological_sort()] and reference.task_ids == built.task_ids


def test_task_settings_come_from_the_plan(plans_dir, projects_dir):
    from handoff.airflow.operators import (
        CrossDomainSensor,
        DbtNodeOperator,
        UnresolvedUpstream,
    )

    dags = _load(plans_dir, projects_dir)
    daily, hourly = dags["shapes__daily"], dags["shapes__hourly"]
    base = daily.task_dict["base"]
    assert isinstance(base, DbtNodeOperator)
    assert (base.retries, base.retry_delay.total_seconds(), base.pool, base.owner) == (0, 90, "duckdb", "team-shapes")
    assert base.unique_id == "model.shapes.base"
    assert [t.split(".")[2] for t in base.tests] == ["not_null_base_id", "unique_base_id"]
    assert daily.task_dict["raw_things"].pool == "default_pool"
    # the upstream domain was never published: the sensor stands as a task that fails with what to do
    assert isinstance(daily.task_dict["wait__other_domain__mrt_orders"], UnresolvedUpstream)
    # a dependency on another pipeline of the same domain resolves from the plans alone
    sensor = hourly.task_dict["wait__shapes__through_eph"]
    assert isinstance(sensor, CrossDomainSensor)
    assert (sensor.external_dag_id, sensor.external_task_id) == ("shapes__daily", "through_eph")
    assert sensor.deferrable is True  # the default wait mode: no worker slot held while waiting
    assert (sensor.poke_interval, sensor.timeout) == (300, 21600)
    assert (hourly.timetable.expression, daily.timetable.expression) == ("0 * * * *", "0 3 * * *")
    assert str(daily.start_date.date()) == "2024-01-01" and daily.catchup is False


def test_snapshot_resolves_other_domains(plans_dir, projects_dir, tmp_path):
    from handoff.airflow.operators import CrossDomainSensor

    snapshot = tmp_path / "registry_snapshot.json"
    snapshot.write_text(json.dumps({
        "snapshot_version": 1, "handoff_version": "0.1.0", "generated_at": "2026-03-01T00:00:00Z", "domains": [],
        "models": [{"domain": "other_domain", "model": "mrt_orders", "dag_id": "other_domain__nightly",
                    "task_id": "mrt_orders", "schedule": "0 1 * * *", "kind": "dbt_model", "access": "public",
                    "available_by": None}]}))
    dags = _load(plans_dir, projects_dir, snapshot_path=snapshot)
    sensor = dags["shapes__daily"].task_dict["wait__other_domain__mrt_orders"]
    assert isinstance(sensor, CrossDomainSensor)
    assert (sensor.external_dag_id, sensor.external_task_id) == ("other_domain__nightly", "mrt_orders")
    from datetime import datetime, timezone
    # the downstream run of 03:00 waits for the upstream's 01:00 run of the same day
    aligned = sensor.execution_date_fn(datetime(2026, 3, 2, 3, 0, tzinfo=timezone.utc))
    assert aligned == datetime(2026, 3, 2, 1, 0, tzinfo=timezone.utc)


def test_worker_builds_only_its_dag(plans_dir, projects_dir):
    dags = _load(plans_dir, projects_dir, only_dag_id="shapes__hourly")
    assert list(dags) == ["shapes__hourly"]
    # its cross-pipeline sensor still resolves (from the domain's own plan)
    assert dags["shapes__hourly"].task_dict["wait__shapes__through_eph"].external_dag_id == "shapes__daily"


def test_worker_builds_only_its_task_exactly_as_the_full_dag_has_it(plans_dir, projects_dir, tmp_path):
    """Airflow 3's task runner reads only dag.task_dict[task_id]: a worker builds that one task,
    identical (but for its edges) to the dag-processor's."""
    snapshot = tmp_path / "registry_snapshot.json"
    snapshot.write_text(json.dumps({"models": [
        {"domain": "other_domain", "model": "mrt_orders", "dag_id": "other_domain__nightly",
         "task_id": "mrt_orders", "schedule": "0 1 * * *"}]}))
    full = _load(plans_dir, projects_dir, snapshot_path=snapshot)
    compared = ("task_type", "unique_id", "tests", "project", "owner", "retries", "retry_delay", "pool",
                "execution_timeout", "on_success_callback", "external_dag_id", "external_task_id", "timeout",
                "poke_interval", "deferrable", "mode", "upstream_domain", "upstream_model")
    for dag_id, dag in full.items():
        for task_id, reference in dag.task_dict.items():
            mine = _load(plans_dir, projects_dir, snapshot_path=snapshot, only_dag_id=dag_id, only_task_id=task_id)
            built = mine[dag_id]
            assert list(built.task_dict) == [task_id]
            task = built.task_dict[task_id]
            assert task.upstream_task_ids == set() and task.downstream_task_ids == set()
            for name in compared:
                assert getattr(task, name, None) == getattr(reference, name, None), (dag_id, task_id, name)
            assert (built.timetable.expression, built.start_date, built.max_active_runs) == (
                dag.timetable.expression, dag.start_date, dag.max_active_runs)


def test_a_worker_task_never_reads_the_registry_snapshot_unless_it_is_a_sensor(plans_dir, projects_dir, tmp_path):
    broken = tmp_path / "registry_snapshot.json"
    broken.write_text("{not json")
    built = _load(plans_dir, projects_dir, snapshot_path=broken, only_dag_id="shapes__daily", only_task_id="base")
    assert list(built["shapes__daily"].task_dict) == ["base"]
    from handoff.airflow.operators import UnresolvedUpstream

    # a sensor's worker reads it: unusable, it is a warning and the sensor stays unresolved (#12)
    with pytest.warns(UserWarning, match="stay unresolved"):
        sensor = _load(plans_dir, projects_dir, snapshot_path=broken, only_dag_id="shapes__daily",
                       only_task_id="wait__other_domain__mrt_orders")["shapes__daily"]
    assert isinstance(sensor.task_dict["wait__other_domain__mrt_orders"], UnresolvedUpstream)


def test_hostile_names_are_data(plans_dir, projects_dir, tmp_path, monkeypatch):
    from airflow.serialization.serialized_objects import DagSerialization

    monkeypatch.chdir(tmp_path)
    dag = _load(plans_dir, projects_dir)["evil__daily"]
    assert set(dag.task_dict) == {"caf__orders", "x_quote"}
    assert dag.task_dict["x_quote"].owner == "O'Brien \"\"\" \\ %s {0} ünï"
    assert dag.task_dict["caf__orders"].unique_id == "model.evil.café_orders"
    serialized = DagSerialization.to_dict(dag)
    assert "O'Brien" in json.dumps(serialized)
    assert not list(tmp_path.rglob("HANDOFF_PWNED")) and not list(Path.cwd().rglob("HANDOFF_PWNED"))


def test_a_broken_plan_is_a_warning_and_the_others_load(plans_dir, projects_dir, tmp_path):
    folder = tmp_path / "plans"
    folder.mkdir()
    (folder / "shapes.plan.json").write_text((plans_dir / "shapes.plan.json").read_text())
    (folder / "broken.plan.json").write_text('{"plan_version": 9}')
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        dags = _load(folder, projects_dir)
    assert sorted(dags) == ["shapes__daily", "shapes__hourly"]
    messages = [str(w.message) for w in caught if "handoff" in str(w.message)]
    assert messages == [f"handoff: skipped broken.plan.json: {folder / 'broken.plan.json'}: plan version 9 is newer "
                        f"than this handoff reads ({PLAN_VERSION}) — upgrade handoff where the plan is read, or compile with this version"]


def test_missing_settings_are_one_clear_error(monkeypatch, tmp_path):
    from handoff.airflow import dags_from_env, load_dags
    from handoff.errors import HandoffError

    monkeypatch.delenv("HANDOFF_PLANS_DIR", raising=False)
    with pytest.raises(HandoffError, match="HANDOFF_PLANS_DIR and HANDOFF_DBT_PROJECTS_DIR must be set"):
        dags_from_env()
    with pytest.raises(HandoffError, match="plans folder not found"):
        load_dags(tmp_path / "nope", dbt_projects_dir=tmp_path)


def test_maintenance_dag_runs_the_sweep_on_its_schedule(plans_dir, projects_dir, monkeypatch, tmp_path):
    from handoff.airflow import dags_from_env
    from handoff.airflow.operators import ReconcileOperator

    monkeypatch.setenv("HANDOFF_PLANS_DIR", str(plans_dir))
    monkeypatch.setenv("HANDOFF_DBT_PROJECTS_DIR", str(projects_dir))
    monkeypatch.setenv("HANDOFF_RECONCILE_SCHEDULE", "*/15 * * * *")
    monkeypatch.delenv("HANDOFF_REGISTRY_URL", raising=False)
    with pytest.warns(UserWarning, match="HANDOFF_RECONCILE_SCHEDULE is set but HANDOFF_REGISTRY_URL is not"):
        assert "handoff_reconcile" not in dags_from_env()  # the plans' DAGs still load
    monkeypatch.setenv("HANDOFF_REGISTRY_URL", f"sqlite:///{tmp_path / 'registry.db'}")
    dags = dags_from_env()
    assert {"handoff_reconcile", "shapes__daily", "shapes__hourly", "evil__daily"} == set(dags)
    sweep = dags["handoff_reconcile"]
    assert sweep.timetable.expression == "*/15 * * * *"
    assert [type(t) for t in sweep.tasks] == [ReconcileOperator]


def test_sla_watch_dag_sleeps_in_the_triggerer_between_deadlines(plans_dir, projects_dir, monkeypatch, tmp_path):
    from datetime import timedelta

    from handoff.airflow import dags_from_env
    from handoff.airflow.operators import SlaWatchOperator

    monkeypatch.setenv("HANDOFF_PLANS_DIR", str(plans_dir))
    monkeypatch.setenv("HANDOFF_DBT_PROJECTS_DIR", str(projects_dir))
    monkeypatch.setenv("HANDOFF_SLA_WATCH_SCHEDULE", "@hourly")
    monkeypatch.delenv("HANDOFF_RECONCILE_SCHEDULE", raising=False)
    monkeypatch.delenv("HANDOFF_REGISTRY_URL", raising=False)
    with pytest.warns(UserWarning, match="handoff_sla_watch: HANDOFF_SLA_WATCH_SCHEDULE is set but HANDOFF_REGISTRY_URL"):
        assert "handoff_sla_watch" not in dags_from_env()
    monkeypatch.setenv("HANDOFF_REGISTRY_URL", f"sqlite:///{tmp_path / 'registry.db'}")
    monkeypatch.setenv("HANDOFF_SLA_WATCH_SCHEDULE", "every hour")
    with pytest.warns(UserWarning, match="HANDOFF_SLA_WATCH_SCHEDULE: schedule 'every hour' is not a cron"):
        assert "handoff_sla_watch" not in dags_from_env()
    monkeypatch.setenv("HANDOFF_SLA_WATCH_SCHEDULE", "@hourly")
    dags = dags_from_env()
    assert {"handoff_sla_watch", "shapes__daily"} <= set(dags) and "handoff_reconcile" not in dags
    watch = dags["handoff_sla_watch"]
    assert watch.timetable.expression == "0 * * * *" and watch.max_active_runs == 1
    [task] = watch.tasks
    assert isinstance(task, SlaWatchOperator) and task.window == timedelta(hours=1)


def test_dagbag_loads_the_example_domains(airflow_home, example_manifests, tmp_path, monkeypatch):
    from airflow.dag_processing.dagbag import BundleDagBag

    from support.examples import deploy_plans

    plans, _ = deploy_plans(example_manifests, tmp_path, ("marketplace", "finance", "marketing"), publish=False)
    monkeypatch.setenv("HANDOFF_PLANS_DIR", str(plans))
    monkeypatch.setenv("HANDOFF_DBT_PROJECTS_DIR", str(example_manifests.root))
    bag = BundleDagBag(dag_folder=airflow_home / "dags", bundle_path=airflow_home / "dags")
    assert bag.import_errors == {}
    counts = {dag_id: len(dag.tasks) for dag_id, dag in bag.dags.items()}
    # batched (the default, D29): one handoff__batch task more per DAG
    assert counts == {"marketplace__daily": 9, "finance__daily": 7, "marketing__daily": 7, "marketing__hourly": 3,
                      "marketing__events": 4}
    sensors = {dag_id: sorted(t.task_id for t in dag.tasks if t.task_id.startswith("wait__"))
               for dag_id, dag in bag.dags.items()}
    assert sensors == {"marketplace__daily": [], "finance__daily": ["wait__marketplace__mrt_orders"],
                       "marketing__daily": ["wait__finance__mrt_revenue", "wait__marketplace__mrt_items"],
                       "marketing__hourly": [], "marketing__events": []}
