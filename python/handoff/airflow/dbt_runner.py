"""Runs dbt nodes in-process, parsing each project once per process.

Why in-process: a `dbt build --select x` subprocess pays 3-4 s of start-up and parsing before
any SQL runs; `dbtRunner` reusing an already parsed manifest runs one model in ~0.2 s
(docs/decisions.md has the measurement). dbt is not safe to invoke concurrently inside one
process, so invocations are serialised with a lock; Airflow runs each task in its own process.
"""

from __future__ import annotations

import json
import shutil
import tempfile
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Mapping

from ..errors import HandoffError

_LOCK = threading.RLock()
_MANIFESTS: dict[tuple[str, str, str | None], Any] = {}
_OK = {"success", "pass", "warn"}


@dataclass(frozen=True)
class DbtProject:
    """Where a domain's dbt project lives on the worker."""

    project_dir: str
    profiles_dir: str
    target: str | None = None


@dataclass(frozen=True)
class NodeResult:
    unique_id: str
    status: str
    message: str


class DbtNodeFailed(Exception):
    """The selected dbt node or one of its tests did not succeed."""


def _work_dir(project: DbtProject) -> Path:
    """A per-process target/log folder: parallel task processes never write each other's files."""
    key = (project.project_dir, project.profiles_dir, project.target)
    folder = _WORK_DIRS.get(key)
    if folder is None:
        folder = Path(tempfile.mkdtemp(prefix="handoff-dbt-"))
        seed = Path(project.project_dir) / "target" / "partial_parse.msgpack"
        if seed.is_file():
            shutil.copy2(seed, folder / "partial_parse.msgpack")  # start from the deployed parse
        _WORK_DIRS[key] = folder
    return folder


_WORK_DIRS: dict[tuple[str, str, str | None], Path] = {}


def _common_args(project: DbtProject) -> list[str]:
    work = _work_dir(project)
    args = ["--project-dir", project.project_dir, "--profiles-dir", project.profiles_dir,
            "--target-path", str(work), "--log-path", str(work)]
    if project.target:
        args += ["--target", project.target]
    return args


def parsed_manifest(project: DbtProject) -> Any:
    """dbt's in-memory Manifest of the project, parsed once per process."""
    from dbt.cli.main import dbtRunner

    key = (project.project_dir, project.profiles_dir, project.target)
    with _LOCK:
        if key not in _MANIFESTS:
            if not (Path(project.project_dir) / "dbt_project.yml").is_file():
                raise HandoffError("no dbt_project.yml", where=project.project_dir,
                                   hint="point the deployment's dbt_projects setting at the domain's dbt project")
            result = dbtRunner().invoke(["--quiet", "parse", *_common_args(project)])
            if not result.success or result.result is None:
                raise HandoffError(f"dbt parse failed: {result.exception or 'see the task log'}",
                                   where=project.project_dir)
            _MANIFESTS[key] = result.result
        return _MANIFESTS[key]


def release_connections() -> None:
    """Close the warehouse connections dbt keeps open in-process after an invocation.

    dbt-duckdb keeps its database file open (and locked against every other process) for as
    long as the process lives; a task must not hold the warehouse beyond its own work. Closing
    costs ~15 ms and reopening ~0.1 s (docs/decisions.md)."""
    try:
        from dbt.adapters.factory import FACTORY

        FACTORY.cleanup_connections()
    except Exception:  # noqa: BLE001 - best effort: nothing registered yet
        pass
    try:
        from dbt.adapters.duckdb.connections import DuckDBConnectionManager
    except ImportError:
        return
    environment = DuckDBConnectionManager._ENV
    if environment is not None:
        environment.close()
    DuckDBConnectionManager.close_all_connections()


def run_node(project: DbtProject, *, unique_id: str, select: Iterable[str],
             dbt_vars: Mapping[str, Any] | None = None) -> list[NodeResult]:
    """`dbt build` exactly the selected node and tests; raise DbtNodeFailed unless all succeeded
    and the node itself was among the results (dbt reports success for an empty selection)."""
    from dbt.cli.main import dbtRunner

    selection = list(select)
    args = ["--no-use-colors", "build", *_common_args(project), "--select", *selection,
            "--indirect-selection", "empty", "--no-write-json"]
    if dbt_vars:
        args += ["--vars", json.dumps(dict(dbt_vars), sort_keys=True)]
    with _LOCK:
        manifest = parsed_manifest(project)
        try:
            outcome = dbtRunner(manifest=manifest).invoke(args)
        finally:
            release_connections()
    results = [
        NodeResult(r.node.unique_id, str(getattr(r.status, "value", r.status)), str(r.message or ""))
        for r in (getattr(outcome.result, "results", None) or [])
    ]
    if outcome.exception is not None:
        raise DbtNodeFailed(f"dbt build --select {' '.join(selection)} raised: {outcome.exception}")
    failed = [r for r in results if r.status not in _OK]
    if failed:
        detail = "; ".join(f"{r.unique_id}: {r.status} {r.message}".strip() for r in failed)
        raise DbtNodeFailed(f"dbt build --select {' '.join(selection)} failed: {detail}")
    if unique_id not in {r.unique_id for r in results}:
        raise DbtNodeFailed(f"dbt build --select {' '.join(selection)} did not run {unique_id} "
                            "(the deployed project does not match the plan: redeploy both)")
    if not outcome.success:
        raise DbtNodeFailed(f"dbt build --select {' '.join(selection)} failed (see the log above)")
    return results
