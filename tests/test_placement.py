"""Test placement and acyclicity (docs/plan.md, "Test policy").

A test runs in the task of its parent that comes last in topological order, and that task waits
for the test's other parents; no placement can make a node wait on its own descendant. A plan with
a cycle is refused by every reader: compile, inspect, publish, check and the DAG factory.
"""

from __future__ import annotations

import json
import subprocess
import sys
import warnings
from pathlib import Path

import pytest
from handoff.errors import HandoffError
from handoff.manifest import load_manifest
from handoff.plan import compile_manifest, dumps, find_cycle, load_plan, validate_plan
from support.documents import editable, plan_text

HANDOFF = [sys.executable, "-m", "handoff.cli"]


@pytest.fixture(scope="module")
def manifest_path(fixture_manifest) -> Path:
    return fixture_manifest("placement")


@pytest.fixture(scope="module")
def plan(manifest_path) -> dict:
    return compile_manifest(load_manifest(manifest_path)).to_json()  # the file's form, to read and edit


def _tasks(plan: dict) -> dict[tuple[str, str], dict]:
    return {(p["name"], t["task_id"]): t for p in plan["pipelines"] for t in p["tasks"]}


def _home_of(plan: dict, fragment: str) -> tuple[str, str]:
    homes = [key for key, t in _tasks(plan).items() for test in t.get("tests", ()) if fragment in test]
    assert len(homes) == 1, f"{fragment} runs in {homes}"
    return homes[0]


def _ancestors(plan: dict, pipeline: str, task_id: str) -> set[str]:
    tasks = {t["task_id"]: t for p in plan["pipelines"] if p["name"] == pipeline for t in p["tasks"]}
    seen: set[str] = set()
    stack = list(tasks[task_id]["upstream"])
    while stack:
        current = stack.pop()
        if current not in seen:
            seen.add(current)
            stack.extend(tasks[current]["upstream"])
    return seen


def test_a_relationships_test_pointing_downstream_runs_with_the_downstream_model(plan):
    # order_items.order_id -> ref('orders'), and orders reads order_items: dbt attaches the test to
    # order_items, but it can only run once orders is built
    assert _home_of(plan, "relationships_order_items_order_id__order_id__ref_orders_") == ("daily", "orders")
    tasks = _tasks(plan)
    assert tasks[("daily", "order_items")]["upstream"] == []  # order_items never waits on its descendant
    assert tasks[("daily", "orders")]["upstream"] == ["order_items"]


def test_a_test_of_several_models_runs_after_all_of_them(plan, manifest_path):
    """Every scheduled parent of every placed test is built before the test: an ancestor of its
    task in the DAG, or behind a sensor of that task (another pipeline or domain)."""
    manifest = json.loads(manifest_path.read_text())
    placed = 0
    for (pipeline, task_id), task in _tasks(plan).items():
        ancestors = _ancestors(plan, pipeline, task_id) if task["kind"] != "sensor" else set()
        sensors = {a: t for (p, a), t in _tasks(plan).items() if p == pipeline and a in ancestors
                   and t["kind"] == "sensor"}
        waited_models = {t["upstream_model"] for t in sensors.values()}
        for test in task.get("tests", ()):
            placed += 1
            for parent in manifest["nodes"][test]["depends_on"]["nodes"]:
                node = manifest["nodes"].get(parent)
                if node is None or node["config"]["materialized"] == "ephemeral" or parent == task["unique_id"]:
                    continue
                assert node["name"] in ancestors or node["name"] in waited_models, (test, parent, task_id)
    assert placed >= 8


def test_three_parents_run_in_the_last_one(plan):
    assert _home_of(plan, "test.placement.three_parents") == ("daily", "order_facts")
    assert {"order_items", "orders", "customers"} <= set(_tasks(plan)[("daily", "order_facts")]["upstream"])


def test_tests_through_ephemeral_models_run_with_what_the_ephemeral_reads(plan):
    # eph_orders -> eph_items -> orders: a test of eph_orders reads orders
    assert _home_of(plan, "not_null_eph_orders_order_id") == ("daily", "orders")


def test_a_test_across_two_pipelines_waits_through_a_sensor(plan):
    home = _home_of(plan, "relationships_customers_customer_id__order_id__ref_live_orders_")
    assert home == ("hourly", "live_orders")
    sensor = _tasks(plan)[("hourly", "wait__placement__customers")]
    assert (sensor["upstream_domain"], sensor["upstream_model"]) == ("placement", "customers")
    assert "wait__placement__customers" in _tasks(plan)[home]["upstream"]


def test_a_test_reading_another_domains_model_waits_on_its_sensor(plan):
    assert _home_of(plan, "relationships_from_other_id__id__source_other_accounts_") == ("daily", "from_other")


def test_tests_without_a_scheduled_parent_are_named_in_notes(plan):
    notes = "\n".join(plan["notes"])
    for unscheduled in ("test.placement.no_parents", "test.placement.other_domain_only",
                        "test.placement.not_null_eph_raw_id", "test.placement.source_not_null_raw_events_"):
        assert unscheduled in notes
        assert all(unscheduled not in test for t in _tasks(plan).values() for test in t.get("tests", ()))
    assert "read no model, seed, snapshot or source" in notes


def test_the_plan_is_acyclic_and_airflow_accepts_it(plan, manifest_path, tmp_path):
    from handoff.airflow import load_dags

    for pipeline in plan["pipelines"]:
        assert find_cycle({t["task_id"]: t["upstream"] for t in pipeline["tasks"]}) == []
    folder = tmp_path / "plans"
    folder.mkdir()
    (folder / "placement.plan.json").write_text(plan_text(plan))
    dags = load_dags(folder, dbt_projects_dir=manifest_path.parents[2])
    assert sorted(dags) == ["placement__daily", "placement__hourly"]
    for dag in dags.values():
        dag.check_cycle()


# ---- cycles are refused everywhere --------------------------------------------------------

def _cyclic(plan: dict) -> dict:
    bad = editable(plan)
    daily = next(p for p in bad["pipelines"] if p["name"] == "daily")
    items = next(t for t in daily["tasks"] if t["task_id"] == "order_items")
    items["upstream"] = ["order_facts"]  # order_facts -> ... -> order_items -> order_facts
    return bad


def test_find_cycle_names_a_closed_path():
    assert find_cycle({"a": ["b"], "b": ["c"], "c": ["a"], "d": []}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": ["a"]}) == ["a", "a"]
    assert find_cycle({"a": ["b"], "b": [], "c": ["a", "b"]}) == []
    deep = {f"n{i}": [f"n{i + 1}"] for i in range(5000)}
    deep["n5000"] = ["n0"]
    assert len(find_cycle(deep)) == 5002  # iterative: no recursion limit


def test_validate_plan_refuses_a_cycle_naming_the_tasks(plan):
    with pytest.raises(HandoffError) as caught:
        validate_plan(_cyclic(plan), "placement.plan.json")
    line = caught.value.one_line()
    assert "\n" not in line
    assert "placement__daily" in line and "cycle" in line
    assert "order_items -> order_facts" in line and "re-compile" in line


@pytest.mark.parametrize("command", ["inspect", "publish", "check"])
def test_commands_refuse_a_cyclic_plan_with_one_line(command, plan, tmp_path):
    path = tmp_path / "placement.plan.json"
    path.write_text(plan_text(_cyclic(plan)))
    env_registry = ["--registry", f"sqlite:///{tmp_path}/registry.db"] if command != "inspect" else []
    done = subprocess.run([*HANDOFF, command, str(path), *env_registry], capture_output=True, text=True)
    assert done.returncode == 2, done.stdout + done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and "tasks wait on each other in a cycle" in lines[0], done.stderr
    assert "order_facts" in lines[0] and str(path) in lines[0]
    assert not (tmp_path / "registry.db").exists() or command == "check"
    assert "Traceback" not in done.stderr


def test_compile_refuses_a_manifest_with_a_cycle_and_writes_nothing(manifest_path, tmp_path):
    data = json.loads(manifest_path.read_text())
    data["nodes"]["model.placement.order_items"]["depends_on"]["nodes"].append("model.placement.orders")
    bad = tmp_path / "manifest.json"
    bad.write_text(json.dumps(data))
    out = tmp_path / "plans"
    done = subprocess.run([*HANDOFF, "compile", str(bad), "-o", f"{out}/"], capture_output=True, text=True)
    assert done.returncode == 2, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and "cycle" in lines[0]
    assert "model.placement.order_items" in lines[0] and "model.placement.orders" in lines[0]
    assert not out.exists() or not any(out.iterdir())


@pytest.mark.parametrize("validate", [True, False])
def test_the_dag_factory_skips_a_cyclic_plan_and_loads_the_others(validate, plan, fixture_manifest,
                                                                 manifest_path, tmp_path):
    from handoff.airflow import load_dags

    folder = tmp_path / "plans"
    folder.mkdir()
    (folder / "placement.plan.json").write_text(plan_text(_cyclic(plan)))
    shapes = compile_manifest(load_manifest(fixture_manifest("shapes")))
    (folder / "shapes.plan.json").write_text(dumps(shapes))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        dags = load_dags(folder, dbt_projects_dir=manifest_path.parents[2], validate=validate,
                         snapshot_path=None)
    assert sorted(dags) == ["shapes__daily", "shapes__hourly"]
    messages = [str(w.message) for w in caught if "handoff" in str(w.message)]
    assert len(messages) == 1 and "placement.plan.json" in messages[0] and "cycle" in messages[0]


def test_a_written_plan_always_reloads(plan, tmp_path):
    path = tmp_path / "placement.plan.json"
    path.write_text(plan_text(plan))
    assert load_plan(path).to_json() == plan
