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
from ..loom import plugin_patches_reverted
from ..run_interval import RunInterval
from ..selection import RUN_RESULTS_FILE, invocation
from ..warehouse import release_connections

__all__ = ["DbtNodeFailed", "DbtProject", "NodeResult", "build_args", "release_connections", "run_hooks",
           "run_node", "vars_args"]

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


def build_args(project: DbtProject, unique_ids: Sequence[str], *, work_dir: str | Path,
               dbt_vars: Mapping[str, Any] | None = None, run: RunInterval | None = None,
               microbatch: bool = False) -> list[str]:
    """The one place a task's dbt invocation is built: `dbt build` of exactly ``unique_ids``
    (selected by identity: ``handoff.selection``, whose selection file is written under
    ``work_dir`` here), writing nothing outside ``work_dir`` and no log file.

    ``run``: the DAG run's interval, passed as handoff's dbt vars (with the ad-hoc ``dbt_vars``)
    and, when the selection holds a ``microbatch`` model, as ``--event-time-start/--event-time-end``
    (handoff.run_interval)."""
    call = invocation(unique_ids, str(Path(work_dir) / "selection"))
    Path(call.state_dir).mkdir(parents=True, exist_ok=True)
    (Path(call.state_dir) / RUN_RESULTS_FILE).write_text(call.state_text, "utf-8")
    command, *selection = call.args  # "build", then --select result:success --state DIR --indirect-selection empty
    # every value through handoff.argv.option: plan text is never read by dbt as an option (#12); the
    # unique ids themselves never reach the command line (they are in the selection file)
    args = ["--no-use-colors", "--no-send-anonymous-usage-stats", *option("--log-level-file", "none"),
            command, *option("--project-dir", project.project_dir), *option("--profiles-dir", project.profiles_dir),
            *option("--target-path", str(work_dir)), *option("--log-path", str(work_dir)),
            *option(selection[0], selection[1]), *option(selection[2], selection[3]),
            *option(selection[4], selection[5]), "--no-write-json"]
    if project.target:
        args += option("--target", project.target)
    args += vars_args(dbt_vars, run)
    if run is not None and microbatch:
        start, end = run.event_time_range()
        args += [*option("--event-time-start", start), *option("--event-time-end", end)]
    return args


def load_task_manifest(project: DbtProject, roots: Iterable[str], *, hooks: bool = False,
                       whole: bool = False) -> Any:
    """The slice of the deployed artefact a task runs on (``whole``: the full manifest), after
    checking the artefact belongs to the plan and to the deployed project (HandoffError otherwise).
    Without ``hooks`` the project hooks are left out: handoff runs them once per DAG run, in the
    DAG's hook tasks (``run_hooks``), not at every task's dbt invocation (docs/plan.md)."""
    with open_artifact(project.artifact) as artefact:
        artefact.check(manifest_sha256=project.manifest_sha256,
                       project_file=Path(project.project_dir) / "dbt_project.yml")
        # nodes' root_path point at the folder the worker runs the project from, not where it was packaged
        manifest = (artefact.load_manifest(project_dir=project.project_dir) if whole
                    else artefact.load_slice(roots, hooks=hooks, project_dir=project.project_dir))
        expected = artefact.info.target
    if not hooks:
        manifest.nodes = {uid: n for uid, n in manifest.nodes.items() if n.resource_type != "operation"}
    from ..packaging import target_identity

    worker = target_identity(project.project_dir, profiles_dir=project.profiles_dir, target=project.target)
    if worker != expected:
        raise HandoffError(
            f"the worker's dbt profile targets {worker.describe()}, the artefact was parsed for "
            f"{expected.describe()} (dbt writes these into every relation name)", where=str(project.artifact),
            hint="package with a profile whose type, database and schema match the workers' "
                 "(connection details and credentials may differ)")
    return manifest


def run_node(project: DbtProject, *, unique_id: str, tests: Iterable[str] = (),
             dbt_vars: Mapping[str, Any] | None = None, run: RunInterval | None = None,
             microbatch: bool = False) -> list[NodeResult]:
    """`dbt build` exactly ``unique_id`` and ``tests`` (unique ids, selected by identity) on the
    task's slice; raise DbtNodeFailed unless every one of them ran and succeeded and nothing else
    ran, HandoffError when the deployed artefact is missing, stale or foreign. ``run`` and
    ``microbatch`` as in ``build_args``."""
    from dbt.cli.main import dbtRunner

    wanted = [unique_id, *tests]
    label = f"dbt build of {unique_id}" + (f" and {len(wanted) - 1} test(s)" if len(wanted) > 1 else "")
    with _LOCK:
        manifest = load_task_manifest(project, wanted)
        with tempfile.TemporaryDirectory(prefix="handoff-dbt-") as work:
            try:
                with plugin_patches_reverted():
                    outcome = dbtRunner(manifest=manifest).invoke(
                        build_args(project, wanted, work_dir=work, dbt_vars=dbt_vars, run=run, microbatch=microbatch))
            finally:
                release_connections()
    results = [
        NodeResult(r.node.unique_id, str(getattr(r.status, "value", r.status)), str(r.message or ""),
                   sum((t.completed_at - t.started_at).total_seconds() for t in (r.timing or [])
                       if t.name == "execute" and t.started_at and t.completed_at))
        for r in (getattr(outcome.result, "results", None) or [])
    ]
    if outcome.exception is not None:
        raise DbtNodeFailed(f"{label} raised: {outcome.exception}")
    failed = [r for r in results if r.status not in _OK]
    if failed:
        detail = "; ".join(f"{r.unique_id}: {r.status} {r.message}".strip() for r in failed)
        raise DbtNodeFailed(f"{label} failed: {detail}")
    ran = {r.unique_id for r in results}
    missing, extra = sorted(set(wanted) - ran), sorted(ran - set(wanted))
    if missing or extra:
        raise DbtNodeFailed(
            f"{label} ran {', '.join(extra) or 'nothing else'} but not {', '.join(missing) or '-'}: "
            "the deployed dbt project does not match the plan; redeploy both")
    if not outcome.success:
        raise DbtNodeFailed(f"{label} failed (see the log above)")
    return results


def vars_args(dbt_vars: Mapping[str, Any] | None, run: RunInterval | None) -> list[str]:
    """``--vars`` for a dbt invocation: the run conf's ad-hoc ``dbt_vars`` and the run's interval
    (``RunInterval.dbt_vars``, which win on a clash; ``conf_vars`` refuses one beforehand); none
    when both are empty."""
    variables = {**(dbt_vars or {}), **(run.dbt_vars() if run is not None else {})}
    return option("--vars", json.dumps(variables, sort_keys=True)) if variables else []


def run_hooks(project: DbtProject, *, hook_ids: Sequence[str], node_ids: Sequence[str] = (),
              dbt_vars: Mapping[str, Any] | None = None, run: RunInterval | None = None) -> None:
    """Run project hooks once, in the given order, through the handoff package's macro
    (`dbt run-operation handoff.handoff_run_hooks`); ``node_ids`` (the DAG's dbt nodes) give the
    ``schemas`` and ``database_schemas`` an on-run-end hook reads (then the whole manifest is
    loaded, once per DAG run). ``dbt_vars`` and ``run`` as in ``build_args``: a hook reads the
    run's interval with ``var('handoff_data_interval_start')`` as a model does. Raise
    DbtNodeFailed on failure."""
    from dbt.cli.main import dbtRunner

    hooks = list(hook_ids)
    with _LOCK:
        manifest = load_task_manifest(project, hooks, hooks=True, whole=bool(node_ids))
        manifest.build_flat_graph()  # the macro finds the hooks in dbt's `graph` (a loaded artefact has none)
        pairs = sorted({(str(n.database), str(n.schema)) for uid in node_ids
                        if (n := manifest.nodes.get(uid)) is not None and getattr(n, "schema", None)})
        arguments = {"hook_ids": hooks, "schemas": sorted({schema for _, schema in pairs}),
                     "database_schemas": [list(p) for p in pairs]}
        with tempfile.TemporaryDirectory(prefix="handoff-dbt-") as work:
            args = ["--no-use-colors", "--no-send-anonymous-usage-stats", *option("--log-level-file", "none"),
                    "run-operation", "handoff.handoff_run_hooks",
                    *option("--args", json.dumps(arguments, sort_keys=True)),
                    *option("--project-dir", project.project_dir), *option("--profiles-dir", project.profiles_dir),
                    *option("--target-path", work), *option("--log-path", work), *vars_args(dbt_vars, run)]
            if project.target:
                args += option("--target", project.target)
            try:
                with plugin_patches_reverted():
                    outcome = dbtRunner(manifest=manifest).invoke(args)
            finally:
                release_connections()
    if not outcome.success:
        raise DbtNodeFailed(f"project hooks {', '.join(hooks)} failed: {outcome.exception or 'see the log above'}")
