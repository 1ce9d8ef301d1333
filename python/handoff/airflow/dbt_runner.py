"""Runs one task's dbt nodes in-process from the deployed artefact: never a parse on a worker.

A task loads its *slice* of the domain's artefact (`handoff package`, handoff/artifact.py: the
node, the tests reading it, the parents their refs resolve to, every macro) and hands it to
``dbtRunner(manifest=…)``: dbt neither parses the project nor links the whole graph (the two
costs that grew with the project: docs/decisions.md D13, docs/benchmarks.md). A missing or
stale artefact, or a worker profile whose target differs from the deploy's, fails the task at
once with one line naming the deploy step.

Everything the invocation writes (compiled SQL, graph summary) goes to a temporary folder that
is removed when the task's dbt call returns; dbt's log goes to the task log (stdout), not to a
file. dbt is not safe to invoke concurrently inside one process, so invocations hold a lock;
Airflow runs each task in its own process.
"""

from __future__ import annotations

import json
import tempfile
import threading
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..argv import option
from ..artifact import artifact_path, open_artifact
from ..errors import HandoffError
from ..warehouse import release_connections

__all__ = ["DbtNodeFailed", "DbtProject", "NodeResult", "build_args", "release_connections", "run_node"]

_LOCK = threading.RLock()
_OK = {"success", "pass", "warn"}


@dataclass(frozen=True)
class DbtProject:
    """Where a domain's dbt project lives on the worker, and the manifest digest its plan was
    compiled from (the deployed artefact must carry the same)."""

    project_dir: str
    profiles_dir: str
    target: str | None = None
    manifest_sha256: str | None = None

    @property
    def artifact(self) -> Path:
        return artifact_path(self.project_dir)


@dataclass(frozen=True)
class NodeResult:
    unique_id: str
    status: str
    message: str
    execute_s: float = 0.0  # the node's own SQL: dbt's "execute" timing, wall seconds


class DbtNodeFailed(Exception):
    """The selected dbt node or one of its tests did not succeed."""


def build_args(project: DbtProject, select: Sequence[str], *, work_dir: str | Path,
               dbt_vars: Mapping[str, Any] | None = None) -> list[str]:
    """The one place a task's dbt invocation is built: `dbt build` of exactly ``select`` (no
    indirect selection of tests), writing nothing outside ``work_dir`` and no log file."""
    # every value through handoff.argv.option: plan text is never read by dbt as an option (#12)
    args = ["--no-use-colors", "--no-send-anonymous-usage-stats", *option("--log-level-file", "none"),
            "build", *option("--project-dir", project.project_dir), *option("--profiles-dir", project.profiles_dir),
            *option("--target-path", str(work_dir)), *option("--log-path", str(work_dir)),
            *option("--select", *select), *option("--indirect-selection", "empty"), "--no-write-json"]
    if project.target:
        args += option("--target", project.target)
    if dbt_vars:
        args += option("--vars", json.dumps(dict(dbt_vars), sort_keys=True))
    return args


def load_task_manifest(project: DbtProject, roots: Iterable[str]) -> Any:
    """The slice of the deployed artefact a task runs on, after checking the artefact belongs to
    the plan and to the deployed project (HandoffError otherwise)."""
    with open_artifact(project.artifact) as artefact:
        artefact.check(manifest_sha256=project.manifest_sha256,
                       project_file=Path(project.project_dir) / "dbt_project.yml")
        manifest = artefact.load_slice(roots)
        expected = artefact.info.target
    from ..packaging import target_identity

    worker = target_identity(project.project_dir, profiles_dir=project.profiles_dir, target=project.target)
    if worker != expected:
        raise HandoffError(
            f"the worker's dbt profile targets {worker.describe()}, the artefact was parsed for "
            f"{expected.describe()} (dbt writes these into every relation name)", where=str(project.artifact),
            hint="package with a profile whose type, database and schema match the workers' "
                 "(connection details and credentials may differ)")
    return manifest


def run_node(project: DbtProject, *, unique_id: str, select: Iterable[str],
             dbt_vars: Mapping[str, Any] | None = None) -> list[NodeResult]:
    """`dbt build` exactly the selected node and tests on the task's slice; raise DbtNodeFailed
    unless all succeeded and the node itself was among the results (dbt reports success for an
    empty selection), HandoffError when the deployed artefact is missing, stale or foreign."""
    from dbt.cli.main import dbtRunner

    selection = list(select)
    with _LOCK:
        manifest = load_task_manifest(project, [unique_id])
        with tempfile.TemporaryDirectory(prefix="handoff-dbt-") as work:
            try:
                outcome = dbtRunner(manifest=manifest).invoke(
                    build_args(project, selection, work_dir=work, dbt_vars=dbt_vars))
            finally:
                release_connections()
    results = [
        NodeResult(r.node.unique_id, str(getattr(r.status, "value", r.status)), str(r.message or ""),
                   sum((t.completed_at - t.started_at).total_seconds() for t in (r.timing or [])
                       if t.name == "execute" and t.started_at and t.completed_at))
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
