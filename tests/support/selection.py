"""The `dbt ls` property: what dbt lists for each task's own arguments (handoff.selection).

    listed = dbt_ls_per_task(project_dir, profiles_dir, env, work)   # parse once, one `dbt ls` per task
    for task_id, (expected, got) in listed.items(): assert got == expected

dbt parses the project once (in process); every `dbt ls` then reuses that parsed manifest
(`dbtRunner(manifest=...)`), with exactly the selection arguments the worker's `dbt build` gets,
``build`` replaced by ``ls``.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from handoff.loom import plugin_patches_reverted
from handoff.manifest import load_manifest
from handoff.plan import compile_manifest
from handoff.plan_model import Plan
from handoff.selection import RUN_RESULTS_FILE, task_invocation

from .examples import _DBT_LOCK, _environ, check, release_connections, run_dbt


@dataclass
class Listed:
    """One project: its plan, and per dbt task (pipeline dag_id, task_id) what the plan says the
    task runs and what `dbt ls` lists for the task's arguments."""

    plan: Plan
    per_task: dict[tuple[str, str], tuple[set[str], set[str]]]

    def mismatches(self) -> list[str]:
        return [f"{dag}.{task}: plan {sorted(want)} but dbt ls {sorted(got)}"
                for (dag, task), (want, got) in sorted(self.per_task.items()) if want != got]


def dbt_ls_per_task(project_dir: Path, profiles_dir: Path, env: Mapping[str, str], work: Path,
                    plan: Plan | None = None) -> Listed:
    """Parse ``project_dir``, compile its plan (unless given), and run `dbt ls` with every dbt
    task's selection arguments; nothing is built."""
    from dbt.cli.main import dbtRunner

    parsed = check(run_dbt(["--quiet", "parse"], project_dir, env, profiles_dir=profiles_dir)).result
    if plan is None:
        plan = compile_manifest(load_manifest(project_dir / "target" / "manifest.json"))
    state_root = work / "selection"
    per_task: dict[tuple[str, str], tuple[set[str], set[str]]] = {}
    common = ["--project-dir", str(project_dir), "--profiles-dir", str(profiles_dir), "--quiet",
              "--output", "json", "--output-keys", "unique_id"]
    with _DBT_LOCK, _environ({"DBT_SEND_ANONYMOUS_USAGE_STATS": "false", **env}):
        for pipeline in plan.pipelines:
            for task in pipeline.dbt_tasks():
                call = task_invocation(task, str(state_root), command="ls")
                Path(call.state_dir).mkdir(parents=True, exist_ok=True)
                (Path(call.state_dir) / RUN_RESULTS_FILE).write_text(call.state_text, "utf-8")
                with plugin_patches_reverted():
                    res = dbtRunner(manifest=parsed).invoke([call.args[0], *common, *call.args[1:]])
                assert res.success, f"dbt ls for {task.task_id} failed: {res.exception}"
                got = {json.loads(line)["unique_id"] for line in res.result}
                per_task[(pipeline.dag_id, task.task_id)] = (set(call.unique_ids), got)
        release_connections()
    return Listed(plan, per_task)
