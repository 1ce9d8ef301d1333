"""One bad input costs only itself: broken plans of every kind next to the example plans, loaded by
Airflow's own DagBag through handoff's one DAG file — no import error, every other DAG loads, and a
warning names each refused file (issues #12 item 3, #10 item 6)."""

from __future__ import annotations

import copy
import json
import os
import shutil
import socket
import stat
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from support.documents import plan_text

EXAMPLE_DAGS = {"marketplace__daily", "finance__daily", "marketing__daily", "marketing__hourly",
                "marketing__events"}


def _renamed(plan: dict[str, Any], domain: str) -> dict[str, Any]:
    copied = copy.deepcopy(plan)
    copied["domain"]["name"] = domain
    for pipeline in copied["pipelines"]:
        pipeline["dag_id"] = f"{domain}__{pipeline['name']}"
    return copied


def _first_task(plan: dict[str, Any]) -> dict[str, Any]:
    return next(t for t in plan["pipelines"][0]["tasks"] if t["kind"] != "sensor")


def _set(path: str, value: Any) -> Callable[[dict[str, Any]], None]:
    def mutate(plan: dict[str, Any]) -> None:
        target: Any = plan
        *parents, last = path.split("/")
        for part in parents:
            target = target[int(part)] if part.isdigit() else target[part]
        target[int(last) if last.isdigit() else last] = value
    return mutate


# domain -> how its copy of marketplace's plan is broken. Each must be skipped with a warning.
BROKEN_PLANS: dict[str, Callable[[dict[str, Any]], None]] = {
    "bad_date": _set("pipelines/0/start_date", "2024-02-30"),
    "bad_cron": _set("pipelines/0/schedule", "0 5 31 2 *"),
    "huge_timeout": lambda p: _first_task(p).update(timeout_s=10**20),
    "huge_retries": lambda p: _first_task(p).update(retries=2**63),
    "missing_key": lambda p: _first_task(p).pop("upstream"),
    "squatter": _set("pipelines/0/dag_id", "finance__daily"),  # another domain's DAG
    "project_escape": _set("dbt/project_name", "../marketplace"),
    "ghost_project": _set("dbt/project_name", "ghost_project"),  # no such folder
    "renamed_project": _set("dbt/project_name", "renamed"),  # folder holds project 'marketplace'
    "linked_out": _set("dbt/project_name", "linked_out"),  # a link to a folder outside the projects dir
    "fifo_project": _set("dbt/project_name", "fifo_project"),  # its dbt_project.yml is a FIFO
}
# file name -> text: faults of the file itself
BROKEN_FILES: dict[str, Callable[[str], str]] = {
    "truncated.plan.json": lambda text: text[:300],
    "deep.plan.json": lambda text: "[" * 100_000 + "]" * 100_000,
    "nan.plan.json": lambda text: text.replace('"retries": 1', '"retries": NaN', 1),
    "not a domain.plan.json": lambda text: text,  # the file name is no domain name
    "wrong_name.plan.json": lambda text: text,  # holds domain 'marketplace'
    "empty.plan.json": lambda text: "",
}
# file name -> what is there instead of a regular file: refused at once, never read (a FIFO
# would block the DAG file until Airflow's import timeout and every domain's DAGs were lost)
SPECIAL_FILES = ("fifo.plan.json", "socket_file.plan.json", "device.plan.json", "linked_fifo.plan.json")
# with validation off, the schema is not checked: these still load (the rest is caught anyway)
LOADS_WITHOUT_VALIDATION = {"huge_retries"}


def _special_files(plans: Path) -> None:
    os.mkfifo(plans / "fifo.plan.json")
    with socket.socket(socket.AF_UNIX) as sock:
        sock.bind(str(plans / "socket_file.plan.json"))
    if os.geteuid() == 0:  # a character device like /dev/null, made here (never the real node)
        os.mknod(plans / "device.plan.json", 0o600 | stat.S_IFCHR, os.makedev(1, 3))
    else:
        os.mkfifo(plans / "device.plan.json")
    (plans / "linked_fifo.plan.json").symlink_to(plans / "fifo.plan.json")


@pytest.fixture(scope="module")
def deployment(example_manifests, tmp_path_factory) -> dict[str, Path]:
    from support.examples import deploy_plans

    root = tmp_path_factory.mktemp("containment")
    plans, _ = deploy_plans(example_manifests, root, ("marketplace", "finance", "marketing"), publish=True)
    marketplace = json.loads((plans / "marketplace.plan.json").read_text())
    for domain, mutate in BROKEN_PLANS.items():
        plan = _renamed(marketplace, domain)
        mutate(plan)
        (plans / f"{domain}.plan.json").write_text(json.dumps(plan, indent=2))
    text = plan_text(_renamed(marketplace, "filefaults"))
    for name, damage in BROKEN_FILES.items():
        (plans / name).write_text(damage(text))
    _special_files(plans)
    (plans / "wrong_name.plan.json").write_text((plans / "marketplace.plan.json").read_text())
    # the projects folder: each example project (its dbt_project.yml is all a parse reads), a folder
    # named 'renamed' holding marketplace's project, and a link leading outside the folder
    projects = root / "projects"
    for name in ("marketplace", "finance", "marketing"):
        (projects / name).mkdir(parents=True)
        shutil.copy(example_manifests.project_dirs[name] / "dbt_project.yml", projects / name)
    (projects / "renamed").mkdir()
    shutil.copy(example_manifests.project_dirs["marketplace"] / "dbt_project.yml", projects / "renamed")
    outside = root / "elsewhere" / "linked_out"
    outside.mkdir(parents=True)
    (outside / "dbt_project.yml").write_text("name: linked_out\nversion: '1.0'\n")
    (projects / "linked_out").symlink_to(outside)
    (projects / "fifo_project").mkdir()
    os.mkfifo(projects / "fifo_project" / "dbt_project.yml")  # a project file that is a FIFO
    return {"plans": plans, "projects": projects}


def _dagbag(airflow_home: Path, env: dict[str, str]) -> Any:
    from airflow.dag_processing.dagbag import BundleDagBag

    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    try:
        return BundleDagBag(dag_folder=airflow_home / "dags", bundle_path=airflow_home / "dags")
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def _warnings(bag: Any) -> str:
    return "\n".join(line for lines in bag.captured_warnings.values() for line in lines)


@pytest.mark.parametrize("validate", ["1", "0"])
def test_every_other_dag_loads_next_to_broken_plans(airflow_home, deployment, tmp_path, validate):
    env = {"HANDOFF_PLANS_DIR": str(deployment["plans"]), "HANDOFF_DBT_PROJECTS_DIR": str(deployment["projects"]),
           "HANDOFF_VALIDATE_PLANS": validate, "HANDOFF_CACHE_DIR": str(tmp_path / "cache")}
    bag = _dagbag(airflow_home, env)
    assert bag.import_errors == {}
    loaded = set(bag.dags)
    expected = set(EXAMPLE_DAGS)
    if validate == "0":
        expected |= {f"{d}__daily" for d in LOADS_WITHOUT_VALIDATION}
    assert loaded == expected
    assert bag.dags["finance__daily"].fileloc.endswith("handoff_dags.py")
    # the squatter did not take finance's DAG: it is finance's own (its sensor reads marketplace)
    assert "wait__marketplace__mrt_orders" in bag.dags["finance__daily"].task_dict
    said = _warnings(bag)
    for name in [f"{d}.plan.json" for d in BROKEN_PLANS if f"{d}__daily" not in loaded] + list(BROKEN_FILES):
        assert f"skipped {name}:" in said, (name, said)
    for name in SPECIAL_FILES:
        assert f"skipped {name}:" in said and "not a regular file" in said.split(f"skipped {name}:")[1].split("\n")[0]


def test_a_bad_snapshot_leaves_sensors_unresolved_not_an_import_error(airflow_home, deployment, tmp_path):
    from handoff.airflow.operators import CrossDomainSensor, UnresolvedUpstream

    plans = tmp_path / "plans"
    plans.mkdir()
    for name in ("marketplace", "finance", "marketing"):
        shutil.copy(deployment["plans"] / f"{name}.plan.json", plans)
    good = (deployment["plans"] / "registry_snapshot.json").read_text()
    env = {"HANDOFF_PLANS_DIR": str(plans), "HANDOFF_DBT_PROJECTS_DIR": str(deployment["projects"])}
    for broken in (good[: len(good) // 2], "[" * 100_000, '{"snapshot_version": 1}', good.replace('"models"', '"m"')):
        (plans / "registry_snapshot.json").write_text(broken)
        bag = _dagbag(airflow_home, env)
        assert bag.import_errors == {} and set(bag.dags) == EXAMPLE_DAGS
        assert "registry_snapshot.json" in _warnings(bag) and "stay unresolved" in _warnings(bag)
    (plans / "registry_snapshot.json").unlink()
    (plans / "registry_snapshot.json").mkdir()  # unreadable as a file (as a snapshot written 0600 for another user)
    bag = _dagbag(airflow_home, env)
    assert bag.import_errors == {} and set(bag.dags) == EXAMPLE_DAGS and "cannot read" in _warnings(bag)
    (plans / "registry_snapshot.json").rmdir()
    os.mkfifo(plans / "registry_snapshot.json")  # a FIFO: refused at once, never read
    bag = _dagbag(airflow_home, env)
    assert bag.import_errors == {} and set(bag.dags) == EXAMPLE_DAGS and "not a regular file" in _warnings(bag)
    (plans / "registry_snapshot.json").unlink()
    (plans / "registry_snapshot.json").write_text(good[:100])
    # the worker's parse (one DAG, no sibling plans read) has nothing to resolve the sensor with
    from handoff.airflow import load_dags

    with pytest.warns(UserWarning, match="stay unresolved"):
        dags = load_dags(plans, dbt_projects_dir=deployment["projects"], only_dag_id="finance__daily")
    assert isinstance(dags["finance__daily"].task_dict["wait__marketplace__mrt_orders"],
                      (CrossDomainSensor, UnresolvedUpstream))
    (plans / "registry_snapshot.json").write_text(good)
    dags = load_dags(plans, dbt_projects_dir=deployment["projects"], only_dag_id="finance__daily")
    assert isinstance(dags["finance__daily"].task_dict["wait__marketplace__mrt_orders"], CrossDomainSensor)
