"""Model tasks copied from a template (handoff.airflow.templates) equal tasks built by Airflow's
constructor: attribute by attribute, in Airflow's serialized DAG, and without shared state."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from handoff.manifest import load_manifest
from handoff.plan import compile_manifest, dumps

FIXTURES = ("shapes", "evil", "odd_names")


@pytest.fixture(scope="module")
def plans_dir(fixture_manifest, tmp_path_factory) -> Path:
    """The fixtures' plans, per task and batched, with model settings varied so that one DAG has
    several settings groups (owner, retries, retry delay, timeout, pool)."""
    folder = tmp_path_factory.mktemp("plans")
    for name in FIXTURES:
        document = json.loads(dumps(compile_manifest(load_manifest(fixture_manifest(name)))))
        for p, pipeline in enumerate(document["pipelines"]):
            pipeline["execution"] = "per_task" if p % 2 == 0 else "batched"
            models = [t for t in pipeline["tasks"] if t["kind"] != "sensor"]
            for i, task in enumerate(models):
                if i % 4 == 1:
                    task.update(retries=4, retry_delay_s=17, timeout_s=600, pool="duckdb")
                elif i == 2:
                    task.update(owner=f"{task['owner']}-b", retries=0, retry_delay_s=300, timeout_s=None)
        (folder / f"{document['domain']['name']}.plan.json").write_text(json.dumps(document))
    return folder


@pytest.fixture(scope="module")
def projects_dir(fixture_manifest) -> Path:
    for name in FIXTURES:
        fixture_manifest(name)
    return fixture_manifest("shapes").parents[2]


def _callback(context):  # a success callback, as the DAG file passes one
    return None


def _build(plans_dir: Path, projects_dir: Path, monkeypatch: pytest.MonkeyPatch, *, templates: bool,
           copies: list[str] | None = None):
    from handoff.airflow import factory

    with monkeypatch.context() as patch:
        if not templates:  # every model task through BaseOperator's constructor
            patch.setattr(factory, "usable", lambda task: False)
        elif copies is not None:
            real = factory.copy_of

            def counted(template, dag, **kwargs):
                copies.append(f"{dag.dag_id}.{kwargs['task_id']} from {template.task_id}")
                return real(template, dag, **kwargs)

            patch.setattr(factory, "copy_of", counted)
        return factory.load_dags(plans_dir, dbt_projects_dir=projects_dir, on_success=_callback)


def _comparable(value):
    from airflow.sdk import DAG
    from airflow.sdk.definitions.taskgroup import TaskGroup

    if isinstance(value, DAG):
        return ("dag", value.dag_id)
    if isinstance(value, TaskGroup):
        return ("group", value.group_id)
    if isinstance(value, dict):
        return {k: _comparable(v) for k, v in value.items()}
    if hasattr(value, "__dict__") and type(value).__eq__ is object.__eq__:  # e.g. a sensor's AlignTo
        return type(value).__name__, _comparable(vars(value))
    return value


def test_copies_equal_constructed_tasks_and_serialize_the_same(plans_dir, projects_dir, monkeypatch):
    from airflow.serialization.serialized_objects import DagSerialization

    from handoff.airflow.operators import DbtNodeOperator

    copies: list[str] = []
    copied = _build(plans_dir, projects_dir, monkeypatch, templates=True, copies=copies)
    constructed = _build(plans_dir, projects_dir, monkeypatch, templates=False)
    assert set(copied) == set(constructed) and len(copied) == 4
    models = 0
    for dag_id, dag in copied.items():
        reference = constructed[dag_id]
        assert list(dag.task_dict) == list(reference.task_dict), dag_id
        for task_id, task in dag.task_dict.items():
            expected = reference.task_dict[task_id]
            assert type(task) is type(expected)
            mine, theirs = vars(task), vars(expected)
            assert set(mine) == set(theirs), (dag_id, task_id, set(mine) ^ set(theirs))
            for name in mine:
                assert _comparable(mine[name]) == _comparable(theirs[name]), (dag_id, task_id, name)
            assert task.task_group is dag.task_group and dag.task_group.children[task_id] is task
            models += isinstance(task, DbtNodeOperator)
        ours = json.dumps(DagSerialization.to_dict(dag), sort_keys=True, default=str)
        assert ours == json.dumps(DagSerialization.to_dict(reference), sort_keys=True, default=str), dag_id
    assert models >= 10
    # tasks were copied, from several templates in one DAG (one per settings group)
    assert len(copies) >= 3, copies
    assert len({c.split(" from ")[1] for c in copies if c.startswith("shapes__daily.")}) >= 2, copies


def test_copies_share_no_mutable_state(plans_dir, projects_dir, monkeypatch):
    from handoff.airflow.operators import DbtNodeOperator
    from handoff.airflow.templates import copy_of, usable

    dags = _build(plans_dir, projects_dir, monkeypatch, templates=True)
    dag = dags["shapes__daily"]
    models = [t for t in dag.tasks if isinstance(t, DbtNodeOperator)]
    template = models[0]
    assert usable(template)
    copies = [copy_of(template, dag, task_id=f"copy_{i}", unique_id=f"model.shapes.copy_{i}", tests=("t",),
                      microbatch=False) for i in range(2)]
    first, second = copies
    first.on_success_callback.append(print)
    first.executor_config["k"] = "v"
    first.params["p"] = 1
    first.upstream_task_ids.add(template.task_id)
    assert second.on_success_callback == template.on_success_callback == [_callback]
    assert second.executor_config == {} and "p" not in second.params and second.upstream_task_ids == set()
    assert (first.task_id, first.unique_id, first.tests) == ("copy_0", "model.shapes.copy_0", ("t",))
    assert dag.task_dict["copy_1"] is second and template.task_id not in {first.task_id, second.task_id}
    with pytest.raises(Exception, match="already been added"):  # Airflow's own duplicate-id check still runs
        copy_of(template, dag, task_id="copy_0", unique_id="x", tests=(), microbatch=False)
    with pytest.raises(Exception, match="alphanumeric"):  # and its task_id check
        copy_of(template, dag, task_id="no spaces allowed", unique_id="x", tests=(), microbatch=False)


def test_a_template_it_cannot_copy_safely_is_not_used(plans_dir, projects_dir, monkeypatch):
    from airflow.sdk import DAG

    from handoff.airflow.dbt_runner import DbtProject
    from handoff.airflow.operators import DbtNodeOperator
    from handoff.airflow.templates import usable

    project = DbtProject(project_dir="/nonexistent", profiles_dir="/nonexistent", manifest_sha256=None)

    def node(dag, task_id, **kwargs):
        return DbtNodeOperator.for_node(task_id=task_id, dag=dag, project=project, unique_id=f"model.p.{task_id}",
                                        tests=(), schedule="@daily", **kwargs)

    dag = DAG(dag_id="templates_probe", schedule=None)
    assert usable(node(dag, "plain", owner="team"))
    unknown = node(dag, "unknown_kind")
    object.__setattr__(unknown, "later_airflow_attribute", object())  # a kind of value it does not know
    assert not usable(unknown)
    assert not usable(node(dag, "orders", owner="orders"))  # a value equal to the id may be derived from it

    class Listish(list):
        pass

    subclassed = node(dag, "subclassed")
    object.__setattr__(subclassed, "inlets", Listish())
    assert not usable(subclassed)
    from airflow.sdk import TaskGroup

    with TaskGroup("grouped", dag=dag) as group:
        assert not usable(node(dag, "in_group", task_group=group))
