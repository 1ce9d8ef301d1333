"""Selection by identity: for every task of every dbt project in the repository, `dbt ls` with the
task's exact selection arguments lists exactly the plan's node and its tests — nothing more,
nothing less (docs/plan.md, "Selection"). Also: the selection form itself on hostile names.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from handoff.plan_model import DbtTask
from handoff.selection import (
    invocation,
    state_document,
    task_invocation,
    task_unique_ids,
)
from support.corpus import CORPUS_DOMAINS
from support.dbt_fixtures import FIXTURES
from support.examples import DOMAINS, Mesh
from support.selection import Listed, dbt_ls_per_task

REPO = Path(__file__).resolve().parents[1]
REGISTRY_PROJECTS = REPO / "tests" / "registry" / "projects"
FIXTURE_PROJECTS = ("shapes", "evil", "placement", "odd_names")
REGISTRY_NAMES = ("billing", "growth", "shop")
LOOM = ("shipping", "support")  # the dbt Mesh example (support reads shipping through dbt-loom)
LOOM_DOMAINS = {"shipping": "logistics", "marketplace": "marketplace"}
PROJECTS = [*DOMAINS, *LOOM, *FIXTURE_PROJECTS, *REGISTRY_NAMES, *CORPUS_DOMAINS]


@pytest.fixture(scope="module")
def listed(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory):
    """Callable: project name -> Listed (parsed and listed once per module)."""
    cache: dict[str, Listed] = {}  # (and the dbt Mesh example's copy, under "loom")
    work = tmp_path_factory.mktemp("selection")

    def get(name: str) -> Listed:
        if name in cache:
            return cache[name]
        if name in DOMAINS:
            mesh: Mesh = request.getfixturevalue("example_manifests")
            result = dbt_ls_per_task(mesh.project_dirs[name], mesh.profiles_dir, mesh.env, work / name)
        elif name in LOOM:
            from handoff.manifest import load_manifest
            from handoff.plan import compile_manifest
            from support.examples import build_mesh

            if "loom" not in cache:
                cache["loom"] = build_mesh(work / "loom", build=False, domains=("marketplace", *LOOM))  # type: ignore[assignment]
            loom: Mesh = cache["loom"]  # type: ignore[assignment]
            plan = compile_manifest(load_manifest(loom.manifests[name]), projects=LOOM_DOMAINS)
            result = dbt_ls_per_task(loom.project_dirs[name], loom.profiles_dir, loom.env, work / name, plan=plan)
        elif name in CORPUS_DOMAINS:
            corpus = request.getfixturevalue("corpus")
            result = dbt_ls_per_task(corpus.project_dirs[name], corpus.root, corpus.env, work / name,
                                     plan=corpus.plans[name])
        elif name in FIXTURE_PROJECTS:
            project = work / "fixtures" / name
            shutil.copytree(FIXTURES / name, project, ignore=shutil.ignore_patterns("target", "logs"))
            env = {"HANDOFF_DUCKDB_PATH": str(work / "fixtures.duckdb")}
            result = dbt_ls_per_task(project, project, env, work / name)
        else:
            root = work / "registry"
            if not root.exists():
                shutil.copytree(REGISTRY_PROJECTS, root, ignore=shutil.ignore_patterns("target", "logs"))
            result = dbt_ls_per_task(root / name, root, {}, work / name)
        cache[name] = result
        return result

    return get


@pytest.mark.parametrize("project", PROJECTS)
def test_dbt_ls_lists_exactly_each_tasks_node_and_tests(project, listed):
    result = listed(project)
    assert result.per_task, f"{project}: no dbt task to check"
    assert result.mismatches() == []
    # and the plan's own view agrees: each task's ids are its node then its tests
    for pipeline in result.plan.pipelines:
        for task in pipeline.dbt_tasks():
            assert task_unique_ids(task)[0] == task.unique_id


def test_every_test_of_a_project_runs_in_exactly_one_task(listed):
    """No test is run twice (two tasks); the examples and the corpus have tests in their tasks."""
    for project in PROJECTS:
        result = listed(project)
        seen: dict[str, str] = {}
        for pipeline in result.plan.pipelines:
            for task in pipeline.dbt_tasks():
                for test in task.tests:
                    assert test not in seen, f"{test} runs in {seen[test]} and {task.task_id}"
                    seen[test] = task.task_id
        if project in (*DOMAINS, "shipping", *CORPUS_DOMAINS):  # support declares no tests
            assert seen, f"{project} has tests"


def test_the_selection_does_not_depend_on_names():
    """The arguments are the same for every task; only the content-addressed state differs."""
    a = invocation(["model.shop.shop"], "/s")
    b = invocation(["model.shop.my model", "test.shop.pk_not_null.58130e4117"], "/s")
    assert a.args[:3] == b.args[:3] == ("build", "--select", "result:success")
    assert a.state_dir != b.state_dir and a.state_dir.startswith("/s/")
    assert "my model" not in " ".join(b.args)  # a name never becomes an argument
    assert invocation(["b", "a"], "/s").state_text == invocation(["a", "b"], "/s").state_text
    ids = [r["unique_id"] for r in state_document(["model.x.a", "model.x.a", "test.x.t.1"])["results"]]
    assert ids == ["model.x.a", "test.x.t.1"]
    with pytest.raises(ValueError):
        invocation([], "/s")
    task = DbtTask(task_id="a", kind="dbt_model", unique_id="model.x.a", name="a", tests=("test.x.t.1",),
                   relation=None, access="protected", owner="o", slack="", available_by=None,
                   available_within_s=None, microbatch=False, retries=0, retry_delay_s=0, timeout_s=None,
                   pool=None, upstream=())
    assert task_invocation(task, "/s").unique_ids == ("model.x.a", "test.x.t.1")

