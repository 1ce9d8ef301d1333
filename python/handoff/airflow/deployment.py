"""What the DAG file finds in a deployment, checked plan by plan: one bad input costs only itself.

``read_deployment`` reads the plans folder the way the DAG factory needs it and refuses, each with
one warning that names the file and says what to do, while every other plan still loads:

- a plan that cannot be read or does not validate (``handoff.plan.validate_plan``);
- a file not named ``<domain>.plan.json`` after the domain it holds (workers, which read only the
  file of the DAG they run, would never find it);
- a dag_id not derived from the plan's domain and pipeline, and the same dag_id in two files
  (checked even with validation off: both files are refused, none silently wins);
- a dbt project folder that is missing, not ``<HANDOFF_DBT_PROJECTS_DIR>/<dbt project name>``
  with a ``dbt_project.yml`` naming that project, or that resolves (links) outside the projects
  folder;
- a registry snapshot that cannot be read or does not validate: sensors to other domains then
  stay unresolved (a warning, never an import error).

Nothing here imports Airflow; the factory turns the accepted plans into DAGs (and contains
failures of that step per plan too).
"""

from __future__ import annotations

import contextlib
import functools
import re
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import HandoffError
from ..files import decode_json, read_regular_bytes
from ..plan import PLAN_VERSION, check_structure, dag_id_for, model_keys, validate_plan
from ..plan_model import Plan, PlanTask, SensorTask
from ..redact import get_logger, redact
from .dbt_runner import DbtProject
from .validity_cache import remember, validity_marker

if TYPE_CHECKING:
    from ..registry.snapshot import Snapshot

PLAN_SUFFIX = ".plan.json"
SNAPSHOT_NAME = "registry_snapshot.json"
_DOMAIN = re.compile(r"[a-z](_?[a-z0-9]){0,62}")
_PROJECT_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,127}")
_YAML_NAME = re.compile(r"""name\s*:\s*(?P<q>['"]?)(?P<name>[^'"#\s]+)(?P=q)\s*(#.*)?""")

log = get_logger(__name__)
Warn = Callable[[str], None]


@dataclass(frozen=True, slots=True)
class UpstreamTask:
    """The task a sensor waits on: from the registry snapshot, or from a plan deployed alongside."""

    dag_id: str
    task_id: str
    schedule: str
    timezone: str = "UTC"


Upstreams = dict[tuple[str, str], UpstreamTask]


@dataclass(frozen=True)
class DeployedPlan:
    """A plan that passed every check, and where its dbt project is on this machine."""

    path: Path
    plan: Plan
    project: DbtProject


@dataclass
class Deployment:
    plans: list[DeployedPlan] = field(default_factory=list)
    upstreams: Upstreams = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)


def warn(message: str) -> None:
    """A DAG-file warning: Airflow shows warnings raised while importing a DAG file; the log keeps it too."""
    line = redact(message)
    log.warning("%s", line)
    warnings.warn(line, stacklevel=3)


def read_deployment(plans_dir: str | Path, *, dbt_projects_dir: str | Path, profiles_dir: str | Path | None = None,
                    snapshot_path: str | Path | None = None, only_dag_id: str | None = None,
                    only_task_id: str | None = None, validate: bool = True, report: Warn = warn) -> Deployment:
    """The plans of ``plans_dir`` that can be turned into DAGs, with their projects and upstreams.

    Raises HandoffError only when the plans folder itself is unusable (there is nothing to load);
    every other problem is reported through ``report`` and costs only the plan or snapshot concerned.
    """
    folder = Path(plans_dir)
    if not folder.is_dir():
        raise HandoffError("plans folder not found", where=str(folder),
                           hint="set HANDOFF_PLANS_DIR to the folder holding <domain>.plan.json files")
    try:
        files = sorted(p for p in folder.glob(f"*{PLAN_SUFFIX}") if not p.name.startswith("."))
    except OSError as exc:
        raise HandoffError(f"cannot list the plans folder: {exc.strerror or exc}", where=str(folder)) from None
    deployment = Deployment()

    def skip(path: Path, reason: str) -> None:
        line = f"handoff: skipped {path.name}: {reason}"
        deployment.warnings.append(line)
        report(line)

    wanted_domain = only_dag_id.split("__", 1)[0] if only_dag_id is not None else None
    projects_root = _projects_root(dbt_projects_dir)
    read: list[tuple[Path, Plan]] = []
    for path in files:
        domain_of_file = path.name[: -len(PLAN_SUFFIX)]
        if not _DOMAIN.fullmatch(domain_of_file):
            skip(path, f"'{domain_of_file}' is not a domain name — name plan files <domain>{PLAN_SUFFIX} "
                       "(lower_snake_case), as `handoff compile -o DIR/` does")
            continue
        if wanted_domain is not None and domain_of_file != wanted_domain:
            continue
        try:
            plan = read_plan(path, validate)
            _check_shape(plan, path, domain_of_file)
        except HandoffError as exc:
            skip(path, exc.one_line())
            continue
        read.append((path, plan))

    for path, plan in _without_duplicate_dag_ids(read, skip):
        try:
            project = _project(plan, projects_root, profiles_dir)
        except HandoffError as exc:
            skip(path, exc.one_line())
            continue
        deployment.plans.append(DeployedPlan(path, plan, project))

    deployment.upstreams = _upstreams(deployment, folder, files, snapshot_path, only_dag_id, only_task_id, report)
    return deployment


def _check_shape(plan: Plan, path: Path, domain_of_file: str) -> None:
    """What the factory relies on, checked even with validation off: the domain named by the file
    and dag_ids derived from it (the keys it reads were there: ``read_plan`` typed it)."""
    where = str(path)
    domain, project_name = plan.domain.name, plan.dbt.project_name
    names = [(p.name, p.dag_id) for p in plan.pipelines]
    if domain != domain_of_file:
        raise HandoffError(f"the file holds domain {domain!r} but is named after {domain_of_file!r}", where=where,
                           hint=f"rename it {domain}{PLAN_SUFFIX} (workers read the file named after the DAG's domain)")
    for name, dag_id in names:
        if not isinstance(name, str) or dag_id != dag_id_for(domain, name):
            raise HandoffError(f"pipeline {name!r}: dag_id {dag_id!r} is not {domain}__{name} — a plan only "
                               "schedules its own domain's DAGs", where=where,
                               hint="re-compile it with `handoff compile`")
    if not isinstance(project_name, str) or not _PROJECT_NAME.fullmatch(project_name):
        raise HandoffError(f"dbt.project_name {project_name!r} is not a dbt project name", where=where,
                           hint="re-compile it with `handoff compile`")


def _without_duplicate_dag_ids(read: list[tuple[Path, Plan]],
                               skip: Callable[[Path, str], None]) -> list[tuple[Path, Plan]]:
    owners: dict[str, list[Path]] = {}
    for path, plan in read:
        for pipeline in plan.pipelines:
            owners.setdefault(pipeline.dag_id, []).append(path)
    clashing = {dag_id: paths for dag_id, paths in owners.items() if len(set(paths)) > 1}
    refused: set[Path] = set()
    for dag_id, paths in sorted(clashing.items()):
        for path in paths:
            others = ", ".join(p.name for p in paths if p != path)
            if path not in refused:
                skip(path, f"dag_id {dag_id} is also in {others}; neither is loaded — keep one plan per domain "
                           "in the plans folder")
            refused.add(path)
    return [(path, plan) for path, plan in read if path not in refused]


def _projects_root(dbt_projects_dir: str | Path) -> Path:
    try:
        return Path(dbt_projects_dir).resolve(strict=False)
    except (OSError, RuntimeError) as exc:
        raise HandoffError(f"cannot resolve the dbt projects folder: {exc}", where=str(dbt_projects_dir),
                           hint="set HANDOFF_DBT_PROJECTS_DIR to the folder holding <dbt project name>/") from None


def _project(plan: Plan, root: Path, profiles_dir: str | Path | None) -> DbtProject:
    """``<root>/<project name>``, resolved, inside ``root``, holding the dbt_project.yml of that project."""
    name = plan.dbt.project_name
    candidate = root / name
    try:
        folder = candidate.resolve(strict=True)
    except (OSError, RuntimeError):
        raise HandoffError(f"dbt project folder {candidate} not found", where="HANDOFF_DBT_PROJECTS_DIR",
                           hint=f"deploy dbt project '{name}' as {candidate} (the folder is named after the dbt "
                                "project, docs/deployment.md)") from None
    if folder != root and root not in folder.parents:
        raise HandoffError(f"dbt project folder {candidate} resolves to {folder}, outside {root}",
                           where="HANDOFF_DBT_PROJECTS_DIR", hint="deploy the project inside the projects folder")
    found = _declared_project_name(folder / "dbt_project.yml")
    if found is None:
        raise HandoffError(f"{folder} has no readable dbt_project.yml", where="HANDOFF_DBT_PROJECTS_DIR",
                           hint=f"deploy dbt project '{name}' there, readable by the Airflow user")
    if found != name:
        raise HandoffError(f"{folder}/dbt_project.yml is dbt project {found!r}, not {name!r}",
                           where="HANDOFF_DBT_PROJECTS_DIR",
                           hint=f"deploy dbt project '{name}' as {candidate} (folders are named after the dbt "
                                f"project they hold; this one holds '{found}', so it belongs at {root / found})")
    sha = plan.dbt.manifest_sha256
    return DbtProject(project_dir=str(folder), profiles_dir=str(profiles_dir) if profiles_dir else str(folder),
                      manifest_sha256=sha if isinstance(sha, str) else None)


@functools.lru_cache(maxsize=512)
def _declared_name_cached(path: str, mtime_ns: int, size: int) -> str | None:
    try:
        lines = read_regular_bytes(path).decode("utf-8").splitlines()
    except (OSError, UnicodeDecodeError):
        return None
    for line in lines:
        match = _YAML_NAME.fullmatch(line.rstrip())
        if match:  # a top-level key (no indentation): dbt's project name
            return match.group("name")
    return ""


def _declared_project_name(path: Path) -> str | None:
    """The top-level ``name:`` of a dbt_project.yml ('' when it has none; None when unreadable).
    A line match, not a YAML parse: this runs at every DAG-file parse."""
    try:
        stat = path.stat()
    except OSError:
        return None
    return _declared_name_cached(str(path), stat.st_mtime_ns, stat.st_size)


# --------------------------------------------------------------------------------------
# Upstreams: the registry snapshot, else the plans side by side
# --------------------------------------------------------------------------------------

def plan_upstreams(plans: Sequence[Plan]) -> Upstreams:
    """(domain, model key) -> the task building it, derived from plans deployed side by side, under
    every model key of each task (``handoff.plan.model_keys``: a bare name is the latest version)."""
    found: Upstreams = {}
    for plan in plans:
        for pipeline in plan.pipelines:
            for task in pipeline.dbt_tasks():
                target = UpstreamTask(pipeline.dag_id, task.task_id, pipeline.schedule, pipeline.timezone)
                for key in model_keys(task.name, task.version, task.latest_version):
                    found[(plan.domain.name, key)] = target
    return found


def snapshot_upstreams(snapshot: Snapshot | None) -> Upstreams:
    """(domain, model) -> the task building it, from a registry snapshot."""
    if snapshot is None:
        return {}
    return {(m.domain, m.model): UpstreamTask(m.dag_id, m.task_id, m.schedule, m.timezone) for m in snapshot.models}


def _upstreams(deployment: Deployment, folder: Path, files: list[Path], snapshot_path: str | Path | None,
               only_dag_id: str | None, only_task_id: str | None, report: Warn) -> Upstreams:
    """Other domains' models: the snapshot's, else the plans side by side (on a worker, the sibling
    plans read unvalidated). When no DAG (or worker task) built here has a sensor, nothing is read:
    a worker's dbt task, a domain that reads no other (``builds_a_sensor``).

    The factory lays each plan's own models over this map (``plan_upstreams([plan])``), so the
    scheduler's parse (every plan) and a worker's (one plan) wire every sensor to the same task
    (docs/plan.md, versions): no other plan's content reaches a DAG when there is a snapshot."""
    accepted = [d.plan for d in deployment.plans]
    upstreams: Upstreams = {}
    if not any(builds_a_sensor(plan, only_dag_id, only_task_id) for plan in accepted):
        return upstreams  # nothing to resolve: the snapshot is not even read
    snapshot_file = Path(snapshot_path) if snapshot_path else folder / SNAPSHOT_NAME
    if not snapshot_file.exists() and not snapshot_path:
        upstreams.update(plan_upstreams(accepted if only_dag_id is None else _all_plans(files, accepted)))
        return upstreams
    from ..registry.snapshot import validate_snapshot

    try:
        raw = read_regular_bytes(snapshot_file)
    except OSError as exc:
        reason = ("registry snapshot not found" if isinstance(exc, FileNotFoundError)
                  else f"cannot read the registry snapshot ({exc.strerror or exc})")
        _snapshot_unusable(deployment, report, snapshot_file, reason)
        return upstreams
    try:
        snapshot = validate_snapshot(decode_json(raw, str(snapshot_file), what="registry snapshot"),
                                     str(snapshot_file))
        upstreams.update(snapshot_upstreams(snapshot))
    except HandoffError as exc:
        _snapshot_unusable(deployment, report, snapshot_file, exc.problem)
    return upstreams


def builds_a_sensor(plan: Plan, only_dag_id: str | None = None, only_task_id: str | None = None) -> bool:
    """Whether the DAGs of ``plan`` built here (all, or ``only_dag_id``; with ``only_task_id``
    just that task, as ``factory.build_dag`` builds it, or the whole DAG when it has no such task)
    hold a sensor: only then do upstreams need resolving."""
    for pipeline in plan.pipelines:
        if only_dag_id is not None and pipeline.dag_id != only_dag_id:
            continue
        tasks: Sequence[PlanTask] = pipeline.tasks
        if only_task_id is not None:
            tasks = [t for t in tasks if t.task_id == only_task_id] or tasks
        if any(isinstance(t, SensorTask) for t in tasks):
            return True
    return False


def _snapshot_unusable(deployment: Deployment, report: Warn, path: Path, reason: str) -> None:
    line = (f"handoff: ignored {path.name}: {path}: {reason}; sensors on other domains stay unresolved (their "
            "tasks fail with what to do) — re-export it with `handoff snapshot --output DIR/`")
    deployment.warnings.append(line)
    report(line)


def _all_plans(files: list[Path], accepted: list[Plan]) -> list[Plan]:
    """On a worker without a snapshot: sibling plans resolve sensors (read unvalidated, bad ones ignored)."""
    plans = list(accepted)
    names = {p.domain.name for p in accepted}
    for path in files:
        if path.name[: -len(PLAN_SUFFIX)] in names:
            continue
        try:
            plan = read_plan(path, False)
            _check_shape(plan, path, path.name[: -len(PLAN_SUFFIX)])
        except HandoffError:
            continue
        plans.append(plan)
    return plans


# --------------------------------------------------------------------------------------
# Reading one plan (with the validity cache)
# --------------------------------------------------------------------------------------

def read_plan(path: Path, validate: bool) -> Plan:
    """One plan file, validated (or, with validation off, only its version, structure and keys
    checked), typed."""
    try:
        raw = read_regular_bytes(path)  # a FIFO named *.plan.json is refused, never read (blocking the parse)
    except FileNotFoundError:
        raise HandoffError("file not found", where=str(path)) from None
    except OSError as exc:
        raise HandoffError(f"cannot read: {exc.strerror or exc}", where=str(path),
                           hint="make plan files readable by the Airflow user (docs/deployment.md)") from None
    document = decode_json(raw, str(path), hint="re-write it with `handoff compile`")
    if validate:
        marker = validity_marker(raw)
        if marker is not None and marker.is_file() and isinstance(document, dict):
            return _typed(document, path)  # these exact bytes passed validate_plan before (validity_cache)
        plan = validate_plan(document, str(path))
        remember(marker)
        return plan
    if not isinstance(document, dict) or document.get("plan_version") != PLAN_VERSION:
        validate_plan(document, str(path))  # for its precise message
    plan = _typed(document, path)
    with contextlib.suppress(TypeError):  # unhashable ids in a malformed plan: the factory contains it per plan
        check_structure(plan, str(path))  # a cyclic plan never reaches Airflow, even unvalidated
    return plan


def _typed(document: Any, path: Path) -> Plan:
    """The typed plan; a document read with validation off that lacks a key costs only itself."""
    try:
        return Plan.from_json(document)
    except (KeyError, TypeError, AttributeError) as exc:
        raise HandoffError(f"the plan lacks {exc} (or has the wrong type there)", where=str(path),
                           hint="re-compile it with `handoff compile`; keep HANDOFF_VALIDATE_PLANS=1") from None
