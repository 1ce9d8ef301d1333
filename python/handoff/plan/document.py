"""The plan document: its version, the checks every reader runs (``validate_plan``: schema,
references, acyclicity, derived ids), reading (``load_plan``) and writing (``dumps``).

A plan file is untrusted JSON until ``validate_plan`` returns the typed ``Plan``; bad input is one
HandoffError naming the file and the JSON path (docs/plan.md). The DAG factory remembers plans
that passed (airflow/deployment.py): bump ``VALIDATION_RULES`` when a rule here starts refusing
what it used to accept.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from pathlib import Path
from typing import Any, Final

import jsonschema

from .. import schemas
from ..errors import HandoffError
from ..plan_model import Plan, PlanPipeline
from .graph import find_cycle
from .naming import dag_id_for, sensor_task_id, suffixed

PLAN_VERSION: Final = 2


def dumps(plan: Plan) -> str:
    """Canonical plan text: sorted keys, two-space indent, UTF-8, trailing newline."""
    from ..files import dumps_strict

    return dumps_strict(plan.to_json(), indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def validate_plan(plan: object, where: str) -> Plan:
    """Check a plan document (untrusted JSON: a file's, a caller's) — its version, schema, task
    references, acyclicity and derived ids — and type it; raises a one-line HandoffError naming
    ``where`` and the JSON path. Every reader of plans goes through here (inspect, publish, check,
    the DAG factory), and compile runs the structural part before writing."""
    if not isinstance(plan, dict):
        raise HandoffError("a plan is a JSON object", where=where, hint="write plans with `handoff compile`")
    version = plan.get("plan_version")
    if not isinstance(version, int) or isinstance(version, bool):
        raise HandoffError(f"plan_version is {version!r}, not an integer", where=where,
                           hint="write plans with `handoff compile`")
    if version > PLAN_VERSION:
        raise HandoffError(f"plan version {version} is newer than this handoff reads ({PLAN_VERSION})",
                           where=where, hint="upgrade handoff where the plan is read, or compile with this version")
    if version < 1:
        raise HandoffError(f"plan version {version} does not exist", where=where)
    if version < PLAN_VERSION:
        raise HandoffError(f"plan version {version} is older than this handoff reads ({PLAN_VERSION}): its tasks "
                           "select dbt nodes by name", where=where, hint="re-compile it with `handoff compile`")
    fast = schemas.fast_check("plan")  # compiled twin: ~11x faster on valid plans (schemas.py)
    error = None if fast is not None and fast(plan) else jsonschema.exceptions.best_match(
        schemas.validator("plan").iter_errors(plan))
    if error is not None:
        raise HandoffError(f"plan does not match schemas/plan.schema.json at {_location(plan, error.absolute_path)}: "
                           f"{_shorter(error.message)}", where=where, hint="re-compile it with `handoff compile`")
    typed = Plan.from_json(plan)
    check_structure(typed, where)
    _check_derived(typed, where)
    return typed


def _check_derived(plan: Plan, where: str) -> None:
    """What the schema cannot say: ids derived from names, real calendar dates, schedules that fire.

    A dag_id is always ``<domain>__<pipeline>`` (a plan must not claim another domain's DAG, issue
    #12), a sensor's task id is derived from what it waits on, a start date exists in the calendar
    and a schedule fires at least once (Airflow would fail to import the DAG otherwise)."""
    from datetime import date

    from ..alignment import to_cron

    domain = plan.domain.name
    for pipeline in plan.pipelines:
        name = pipeline.name
        expected = dag_id_for(domain, name)
        if pipeline.dag_id != expected:
            raise HandoffError(f"pipeline {name}: dag_id '{pipeline.dag_id}' is not '{expected}' — a dag_id is "
                               "always <domain>__<pipeline>", where=where, hint="re-compile it with `handoff compile`")
        try:
            date.fromisoformat(pipeline.start_date)
        except ValueError:
            raise HandoffError(f"pipeline {name}: start_date '{pipeline.start_date}' is not a date in the calendar",
                               where=where, hint="fix handoff_pipeline.start_date and re-compile") from None
        try:
            to_cron(pipeline.schedule)
        except HandoffError as exc:
            raise HandoffError(f"pipeline {name}: {exc.problem}", where=where,
                               hint=f"{exc.hint or 'fix handoff_pipeline.schedule'}, then re-compile") from None
        for task in pipeline.sensors():
            wanted = sensor_task_id(task.upstream_domain, task.upstream_model)
            identity = f"{task.upstream_domain}\0{task.upstream_model}"
            if task.task_id not in (wanted, suffixed(wanted, identity)):  # suffixed on a collision
                raise HandoffError(f"pipeline {name}: sensor '{task.task_id}' waiting on "
                                   f"{task.upstream_domain}.{task.upstream_model} must be named '{wanted}'",
                                   where=where, hint="re-compile it with `handoff compile`")


def _location(plan: Any, path: Iterable[Any]) -> str:
    """A JSON path with the pipeline's and the task's names: pipelines/0 (daily)/tasks/3 (orders)/pool."""
    parts: list[str] = []
    node = plan
    for part in path:
        try:
            node = node[part]
        except (KeyError, IndexError, TypeError):
            node = None
        label = str(part)
        if isinstance(part, int) and isinstance(node, dict):
            name = node.get("task_id") if "kind" in node else node.get("name")
            if isinstance(name, str) and name.isprintable() and len(name) <= 80:
                label = f"{part} ({name})"
        parts.append(label)
    return "/".join(parts) or "(root)"


def _shorter(message: str) -> str:
    """jsonschema quotes whole sub-documents in some messages; one line stays readable."""
    return message if len(message) <= 300 else message[:297] + "..."


# Bump when validate_plan starts refusing something it used to accept: the DAG factory remembers
# plans that passed validation (airflow/factory.py) and must re-check them under new rules.
VALIDATION_RULES = "references+acyclic+derived"


def check_structure(plan: Plan, where: str) -> None:
    """Task ids unique per pipeline, every upstream id known, no cycle (cheap: O(tasks + edges)).
    The part of validate_plan that JSON Schema cannot express."""
    for pipeline in plan.pipelines:
        ids = Counter(t.task_id for t in pipeline.tasks)
        duplicates = sorted(i for i, n in ids.items() if n > 1)
        if duplicates:
            raise HandoffError(f"pipeline {pipeline.name}: duplicate task id(s) {', '.join(duplicates)}",
                               where=where, hint="re-compile the plan")
        known = set(ids)
        for task in pipeline.tasks:
            missing = sorted(set(task.upstream) - known)
            if missing:
                raise HandoffError(f"task {task.task_id} waits on unknown task(s) {', '.join(missing)}",
                                   where=where, hint="re-compile the plan")
        check_acyclic(pipeline, where)


def check_acyclic(pipeline: PlanPipeline, where: str) -> None:
    """Refuse a pipeline whose tasks wait on each other in a cycle (Airflow would refuse its DAG,
    and nothing in it could ever run); the error names the tasks on one cycle."""
    cycle = find_cycle({t.task_id: t.upstream for t in pipeline.tasks})
    if cycle:
        raise HandoffError(f"pipeline {pipeline.name} ({pipeline.dag_id}): tasks wait on each other in a cycle "
                           f"(each waits on the next): {' -> '.join(cycle)}", where=where,
                           hint="re-compile it with `handoff compile` from the dbt project's manifest")


def load_plan(path: str | Path) -> Plan:
    """Read, validate and type a plan file."""
    from ..files import read_json

    return validate_plan(read_json(path, what="file", hint="write it with `handoff compile`"), str(path))


def load_plans(paths: Iterable[str | Path]) -> list[Plan]:
    """Plans of several files; a folder means every *.plan.json in it."""
    files: list[Path] = []
    for p in map(Path, paths):
        files.extend(sorted(p.glob("*.plan.json")) if p.is_dir() else [p])
    return [load_plan(f) for f in files]


def write_atomically(path: str | Path, text: str) -> None:
    """Write ``text`` to ``path`` whole or not at all (``handoff.files.write_atomically``)."""
    from ..files import write_atomically as write

    write(path, text)
