"""The corpus (integration_tests/corpus): three dbt projects written for handoff — retail (220
models), orbit (hostile names, hooks, unit tests) and ledger (two pipelines, versions across them).

Each compiles, loads in a DagBag, passes `handoff check` with versioned, dotted, spaced and seed
upstreams, resolves every sensor the same way in every parse, and runs with dag.test() to success on
a fresh warehouse, each task running exactly its node and its tests (from dbt's own results).
"""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from handoff.plan_model import Plan
from support.corpus import CORPUS_DOMAINS, Corpus
from support.examples import _DBT_LOCK, _environ, check, release_connections, run_dbt

HANDOFF = [sys.executable, "-m", "handoff.cli"]
DAY = datetime(2026, 11, 24, tzinfo=timezone.utc)
# (dag_id, logical date): each DAG's run of DAY, in the order the domains read each other
RUNS = [("retail__daily", DAY.replace(hour=2)), ("orbit__daily", DAY.replace(hour=4)),
        ("ledger__daily", DAY.replace(hour=6)), ("ledger__hourly", DAY.replace(hour=6))]


def _tasks(plan: Plan) -> dict[str, dict]:
    """Every task of the plan as its file writes it (the format these tests pin)."""
    return {t["task_id"]: t for p in plan.to_json()["pipelines"] for t in p["tasks"]}


def _handoff(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*HANDOFF, *args], capture_output=True, text=True, timeout=300)


@pytest.fixture(scope="module")
def deployed(corpus: Corpus, tmp_path_factory) -> tuple[Path, str]:
    """The corpus plans published to a SQLite registry, with the snapshot next to them."""
    tmp = tmp_path_factory.mktemp("corpus-deploy")
    plans = corpus.write_plans(tmp / "plans")
    registry = f"sqlite:///{tmp / 'registry.db'}"
    for args in (["publish", str(plans), "--registry", registry], ["snapshot", "--output", f"{plans}/",
                                                                     "--registry", registry]):
        done = _handoff(*args)
        assert done.returncode == 0, done.stderr
    return plans, registry


# ---- shape -------------------------------------------------------------------------------------

def test_retail_is_a_project_of_real_size_and_shape(corpus):
    manifest = json.loads(corpus.manifests["retail"].read_text())
    models = [n for n in manifest["nodes"].values() if n["resource_type"] == "model" and n["package_name"] == "retail"]
    assert len(models) >= 200
    folders = {n["original_file_path"].split("/")[1] for n in models}
    assert {"staging", "intermediate", "marts"} <= folders
    ephemeral = {n["unique_id"] for n in models if n["config"]["materialized"] == "ephemeral"}
    assert len(ephemeral) >= 8
    tasks = _tasks(corpus.plans["retail"])
    assert not ephemeral & {t.get("unique_id") for t in tasks.values()}  # folded, no task
    kinds = {t["kind"] for t in tasks.values()}
    assert kinds == {"dbt_model", "dbt_seed", "dbt_snapshot"}
    assert tasks["customers_history"]["kind"] == "dbt_snapshot"  # a YAML snapshot
    assert tasks["country_codes"]["access"] == "public"  # a seed made public with config: access
    assert (tasks["dim_customers_v2"]["version"], tasks["dim_customers_v2"]["latest_version"]) == ("2", "2")
    assert tasks["sales.daily"]["access"] == "public" and tasks["retail"]["name"] == "retail"


def test_every_corpus_plan_names_what_it_does_not_schedule(corpus):
    orbit = "\n".join(corpus.plans["orbit"].notes)
    assert "test.orbit.always_true" in orbit  # a test with no parents
    assert "unit_test.orbit.order_countries.order_countries_groups" in orbit  # not opted in
    retail = "\n".join(corpus.plans["retail"].notes)
    assert "ut_pos_orders_enriched_sums_quantities" in retail and "ut_fct_orders_keeps_pos_only" not in retail
    assert not any("retired" in t for t in _tasks(corpus.plans["orbit"]))  # disabled: no task


def test_opted_in_unit_tests_run_in_their_models_task(corpus):
    retail, orbit = _tasks(corpus.plans["retail"]), _tasks(corpus.plans["orbit"])
    assert "unit_test.retail.fct_orders.ut_fct_orders_keeps_pos_only" in retail["fct_orders"]["tests"]
    assert "unit_test.orbit.orbit.orbit_counts_orders" in orbit["orbit"]["tests"]
    assert not any(t.startswith("unit_test.") for t in orbit["order_countries"]["tests"])


def test_names_dbt_accepts_become_valid_task_ids(corpus):
    orbit = _tasks(corpus.plans["orbit"])
    ids = {t["unique_id"]: tid for tid, t in orbit.items() if t["kind"] != "sensor"}
    assert ids["model.orbit.my_model"] == "my_model"  # already a valid id: keeps it
    assert ids["model.orbit.my model"].startswith("my_model__")  # normalised, then made unique
    assert ids["model.orbit.ops.weekly"] == "ops.weekly" and ids["model.orbit.orbit"] == "orbit"
    assert orbit["orders_history"]["kind"] == orbit["countries_history"]["kind"] == "dbt_snapshot"  # one file


def test_relationships_pointing_downstream_run_with_the_downstream_model(corpus):
    retail = _tasks(corpus.plans["retail"])
    home = [tid for tid, t in retail.items()
            if any("relationships_stg_pos__orders_order_id" in test for test in t.get("tests", ()))]
    assert home == ["int_pos__orders_enriched"]
    assert "int_pos__orders_enriched" not in retail["stg_pos__orders"]["upstream"]
    orbit = _tasks(corpus.plans["orbit"])
    assert any("relationships_orders_order_id__orders__ref_orbit_" in t for t in orbit["orbit"]["tests"])


# ---- selection by identity, shown on the names that break selection by name ------------------

@pytest.fixture(scope="module")
def orbit_parsed(corpus):
    parsed = run_dbt(["--quiet", "parse"], corpus.project_dirs["orbit"], corpus.env, profiles_dir=corpus.root)
    return check(parsed).result


def _dbt_ls(corpus, parsed, *select: str) -> set[str]:
    from dbt.cli.main import dbtRunner

    args = ["ls", "--quiet", "--output", "json", "--output-keys", "unique_id", "--indirect-selection", "empty",
            "--project-dir", str(corpus.project_dirs["orbit"]), "--profiles-dir", str(corpus.root),
            "--select", *select]
    with _DBT_LOCK, _environ(corpus.env):
        res = dbtRunner(manifest=parsed).invoke(args)
        release_connections()
    assert res.success, res.exception
    return {json.loads(line)["unique_id"] for line in res.result}


@pytest.mark.parametrize("select, wider_than", [
    ("orbit", "model.orbit.orbit"),  # the project's name: the whole project
    ("orders", "model.orbit.orders"),  # the installed package's orders too
    ("orbit.orbit", "model.orbit.orbit"),  # the folder models/orbit/ too
    ("orbit_key_unique", None),  # one custom name, three tests
])
def test_a_name_based_selection_widens(select, wider_than, corpus, orbit_parsed):
    """Why handoff selects by unique_id (docs/plan.md, "Selection"): measured, not assumed."""
    listed = _dbt_ls(corpus, orbit_parsed, select)
    if wider_than is None:
        assert len(listed) == 3 and all(t.startswith("test.orbit.orbit_key_unique.") for t in listed)
    else:
        assert wider_than in listed and len(listed) > 1


def test_a_name_with_a_space_cannot_be_selected_by_name(corpus, orbit_parsed):
    assert "model.orbit.my model" not in _dbt_ls(corpus, orbit_parsed, "my model")


# ---- the registry: versions, seeds, dotted and spaced names ------------------------------------

def test_check_passes_and_sensors_name_the_resolved_version(corpus, deployed):
    plans, registry = deployed
    done = _handoff("check", str(plans), "--registry", registry)
    assert done.returncode == 0, done.stdout + done.stderr
    snapshot = json.loads((plans / "registry_snapshot.json").read_text())
    entries = {(m["domain"], m["model"]): m["task_id"] for m in snapshot["models"]}
    assert entries[("retail", "dim_customers")] == "dim_customers_v2"  # the bare name: the latest version
    assert entries[("retail", "dim_customers_v1")] == "dim_customers_v1"
    assert entries[("ledger", "balances")] == "balances_v2"  # v3 is a pre-release
    assert entries[("retail", "sales.daily")] == "sales.daily"
    assert entries[("orbit", "my model")].startswith("my_model__")
    assert entries[("retail", "country_codes")] == "country_codes"
    orbit = _tasks(corpus.plans["orbit"])
    assert orbit["wait__retail__dim_customers"]["upstream_model"] == "dim_customers"
    hourly = _tasks(corpus.plans["ledger"])
    assert hourly["wait__ledger__balances_v2"]["upstream_model"] == "balances_v2"  # pinned inside the domain


def test_who_depends_on_a_version_finds_consumers_of_its_bare_name(deployed):
    _, registry = deployed
    done = _handoff("who-depends-on", "retail.dim_customers_v2", "--registry", registry, "--format", "json")
    assert done.returncode == 0, done.stderr
    consumers = _consumers(done.stdout)
    assert ("orbit", "chain_a") not in consumers  # ephemeral: no task
    assert any(task.startswith("my_model__") for domain, task in consumers if domain == "orbit")
    assert ("orbit", "my_model") not in consumers  # that one reads dim_customers_v1
    v1 = _handoff("who-depends-on", "retail.dim_customers_v1", "--registry", registry, "--format", "json")
    assert v1.returncode == 0, v1.stderr
    assert ("orbit", "my_model") in _consumers(v1.stdout)


def _consumers(text: str) -> set[tuple[str, str]]:
    return {(c["domain"], c["task_id"]) for d in json.loads(text)["domains"] for c in d["consumers"]}


def _sensor_targets(dags: dict) -> dict[tuple[str, str], tuple[str, str] | None]:
    from handoff.airflow.operators import CrossDomainSensor

    found = {}
    for dag_id, dag in dags.items():
        for task in dag.tasks:
            if task.task_id.startswith("wait__"):
                found[(dag_id, task.task_id)] = ((task.external_dag_id, task.external_task_id)
                                                 if isinstance(task, CrossDomainSensor) else None)
    return found


@pytest.mark.parametrize("with_snapshot", [True, False])
def test_every_parse_wires_each_sensor_to_the_same_task(with_snapshot, corpus, deployed, tmp_path):
    """The scheduler's parse (every DAG) and a worker's (one DAG) resolve every sensor alike."""
    from handoff.airflow import load_dags

    plans, _ = deployed
    folder = tmp_path / "plans"
    folder.mkdir()
    for plan in plans.glob("*.plan.json"):
        (folder / plan.name).write_bytes(plan.read_bytes())
    if with_snapshot:
        (folder / "registry_snapshot.json").write_bytes((plans / "registry_snapshot.json").read_bytes())
    scheduler = _sensor_targets(load_dags(folder, dbt_projects_dir=corpus.root, profiles_dir=corpus.root))
    workers: dict = {}
    for dag_id, _ in RUNS:
        workers.update(_sensor_targets(load_dags(folder, dbt_projects_dir=corpus.root, only_dag_id=dag_id)))
    assert scheduler == workers
    assert scheduler[("orbit__daily", "wait__retail__dim_customers")] == ("retail__daily", "dim_customers_v2")
    assert scheduler[("orbit__daily", "wait__retail__dim_customers_v1")] == ("retail__daily", "dim_customers_v1")
    assert scheduler[("ledger__hourly", "wait__ledger__balances_v2")] == ("ledger__daily", "balances_v2")
    assert None not in scheduler.values()


# ---- Airflow ---------------------------------------------------------------------------------------

@pytest.fixture()
def airflow_env(corpus, deployed, monkeypatch, airflow_home):
    plans, registry = deployed
    for key, value in {"HANDOFF_PLANS_DIR": str(plans), "HANDOFF_DBT_PROJECTS_DIR": str(corpus.root),
                       "HANDOFF_DBT_PROFILES_DIR": str(corpus.root), "HANDOFF_DUCKDB_PATH": str(corpus.duckdb_path),
                       "HANDOFF_REGISTRY_URL": registry}.items():
        monkeypatch.setenv(key, value)
    for key in ("HANDOFF_AIRFLOW_API_URL", "HANDOFF_AIRFLOW_API_USERNAME", "HANDOFF_AIRFLOW_API_PASSWORD",
                "HANDOFF_RECONCILE_SCHEDULE"):
        monkeypatch.delenv(key, raising=False)
    return plans


def test_the_dagbag_loads_every_corpus_dag_without_import_errors(airflow_home, airflow_env):
    from airflow.dag_processing.dagbag import BundleDagBag

    bag = BundleDagBag(dag_folder=airflow_home / "dags", bundle_path=airflow_home / "dags")
    assert bag.import_errors == {}
    assert {dag_id for dag_id, _ in RUNS} <= set(bag.dag_ids)
    for dag_id, _ in RUNS:
        bag.get_dag(dag_id).check_cycle()
    orbit = bag.get_dag("orbit__daily")
    setup, teardown = orbit.task_dict["on-run-start"], orbit.task_dict["on-run-end"]
    assert setup.is_setup and teardown.is_teardown
    dbt_tasks = {t.task_id for t in orbit.tasks if not t.task_id.startswith(("wait__", "on-run-"))}
    assert set(setup.downstream_task_ids) >= dbt_tasks and set(teardown.upstream_task_ids) >= dbt_tasks
    # a teardown that may fail the run makes Airflow judge the run by it alone: failed models would
    # end in a "success" run. The run's state must stay the models'.
    assert teardown.on_failure_fail_dagrun is False
    # one task per plan task, plus handoff__batch (batched, the default execution: decisions D29)
    assert len(bag.get_dag("retail__daily").tasks) == len(_tasks_of_dag(airflow_env, "retail__daily")) + 1
    assert "handoff__batch" in bag.get_dag("retail__daily").task_dict


def _tasks_of_dag(plans: Path, dag_id: str) -> list[dict]:
    plan = json.loads((plans / f"{dag_id.split('__')[0]}.plan.json").read_text())
    return next(p["tasks"] for p in plan["pipelines"] if p["dag_id"] == dag_id)


def test_dag_test_runs_every_corpus_dag_to_success_on_a_fresh_warehouse(corpus, airflow_env):
    """Each dbt task runs exactly its node and its tests (its return value is dbt's own list of
    results), hooks run once per DAG run, and every task of every DAG ends in success."""
    from airflow.models.xcom import XComModel
    from airflow.utils.session import create_session
    from handoff.airflow import dags_from_env

    assert not corpus.duckdb_path.exists()  # a fresh warehouse: nothing was built before
    dags = dags_from_env()
    for dag_id, logical_date in RUNS:
        run = dags[dag_id].test(logical_date=logical_date)
        states = {ti.task_id: ti.state for ti in run.get_task_instances()}
        assert run.state == "success", {k: v for k, v in states.items() if v != "success"}
        assert set(states.values()) == {"success"}
        with create_session() as session:
            returned = {x.task_id: XComModel.deserialize_value(x) for x in session.query(XComModel).filter(
                XComModel.dag_id == dag_id, XComModel.run_id == run.run_id, XComModel.key == "return_value")}
        for spec in _tasks_of_dag(airflow_env, dag_id):
            if spec["kind"] == "sensor":
                continue
            assert sorted(returned[spec["task_id"]]) == sorted([spec["unique_id"], *spec["tests"]]), spec["task_id"]
    _assert_hooks_ran_once(corpus)


def _assert_hooks_ran_once(corpus: Corpus) -> None:
    import duckdb

    with duckdb.connect(str(corpus.duckdb_path), read_only=True) as con:
        rows = con.execute("select hook, schemas, interval_start, interval_end from orbit.orbit_hook_log "
                           "order by ran_at").fetchall()
        doubled = con.execute("select orbit_double(21)").fetchone()
    assert [row[0] for row in rows] == ["on-run-start", "on-run-end"]  # once per DAG run, not per task
    assert "orbit" in rows[1][1].split(",")  # the on-run-end hook saw the DAG's schemas
    # both hooks got the run's data interval (orbit__daily at 04:00: the day before's 04:00 to the run's)
    interval = ((DAY - timedelta(days=1)).replace(hour=4).isoformat(), DAY.replace(hour=4).isoformat())
    assert [row[2:] for row in rows] == [interval, interval]
    assert doubled == (42,)


def test_corpus_projects_pass_the_convention_in_dbt_too(corpus):
    for domain in CORPUS_DOMAINS:
        run = check(run_dbt(["run-operation", "handoff_validate"], corpus.project_dirs[domain], corpus.env,
                            profiles_dir=corpus.root))
        assert any(line.endswith("0 violations") for line in run.printed), run.output
