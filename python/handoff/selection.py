"""How a task tells dbt exactly which nodes to run: by unique_id, never by name (pure).

dbt 1.11 has no ``unique_id:`` selector method, and every name-based method widens on real
projects (measured with `dbt ls`, docs/plan.md "Selection"):

- ``fqn:`` (the default method) is a prefix and glob match: ``shop`` selects the whole project
  ``shop``, ``orders`` also selects an installed package's ``orders``, ``shop.shop`` selects every
  model under the folder ``models/shop/``; dots in names act as separators;
- two generic tests given the same custom ``name:`` in one YAML file have the same fqn, path,
  package and test name: no name-based method tells them apart;
- a selection string is split on spaces and commas, so a name with a space cannot be written.

The one method that matches unique ids exactly is ``result:<status>``: it selects the nodes whose
unique_id has that status in ``<--state dir>/run_results.json``. A task's selection is therefore
a small run_results document listing exactly its unique ids (``state_document``), written into a
folder the runner owns, and the arguments ``--select result:success --state <folder>``.
``--indirect-selection empty`` keeps dbt from adding the tests of the selected nodes on its own (a
multi-parent test belongs to one task only; unit tests are opt-in).

``task_invocation`` is the only place that derives a task's dbt arguments: the worker-side runner
and the `dbt ls` property test (tests/test_selection.py) both call it.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from .plan_model import DbtTask

# The run_results schema dbt-core 1.8-1.11 writes and reads (newer dbt upgrades older artefacts).
RUN_RESULTS_SCHEMA = "https://schemas.getdbt.com/dbt/run-results/v6.json"
RUN_RESULTS_FILE = "run_results.json"
SELECTED_STATUS = "success"


@dataclass(frozen=True)
class DbtInvocation:
    """What one task asks of dbt: the arguments, and the selection file they point at.

    ``args`` go after ``dbt`` (project, profile and target options are the runner's);
    ``state_dir`` must hold ``RUN_RESULTS_FILE`` with the text ``state_text`` before dbt runs.
    """

    unique_ids: tuple[str, ...]
    args: tuple[str, ...]
    state_dir: str
    state_text: str


def task_invocation(task: DbtTask, state_root: str, command: str = "build") -> DbtInvocation:
    """The dbt invocation of one plan task (``kind`` dbt_*): its node and its tests, nothing else.

    ``state_root`` is a folder the caller owns; the selection lives in a sub-folder named by its
    content, so tasks with the same selection share it and different ones never collide.
    """
    return invocation(task_unique_ids(task), state_root, command)


def invocation(unique_ids: Sequence[str], state_root: str, command: str = "build") -> DbtInvocation:
    """The dbt invocation running exactly ``unique_ids``."""
    if not unique_ids:
        raise ValueError("a dbt invocation selects at least one node")
    text = state_text(unique_ids)
    key = hashlib.sha256(text.encode("utf-8")).hexdigest()[:24]
    state_dir = f"{state_root.rstrip('/')}/{key}"
    args = (command, "--select", f"result:{SELECTED_STATUS}", "--state", state_dir, "--indirect-selection", "empty")
    return DbtInvocation(tuple(unique_ids), args, state_dir, text)


def task_unique_ids(task: DbtTask) -> tuple[str, ...]:
    """The unique ids one plan task runs: its node, then its tests (plan order)."""
    return (task.unique_id, *task.tests)


def state_document(unique_ids: Sequence[str]) -> dict[str, Any]:
    """The run_results.json whose ``result:success`` selection is exactly ``unique_ids``."""
    return {
        "metadata": {"dbt_schema_version": RUN_RESULTS_SCHEMA, "invocation_id": "handoff-selection"},
        "results": [
            {"unique_id": uid, "status": SELECTED_STATUS, "timing": [], "thread_id": "handoff",
             "execution_time": 0.0, "adapter_response": {}, "message": None, "failures": None,
             "compiled": None, "compiled_code": None, "relation_name": None}
            for uid in sorted(set(unique_ids))
        ],
        "elapsed_time": 0.0,
        "args": {},
    }


def state_text(unique_ids: Sequence[str]) -> str:
    """``state_document`` as canonical JSON text (what the runner writes)."""
    return json.dumps(state_document(unique_ids), sort_keys=True, ensure_ascii=False) + "\n"
