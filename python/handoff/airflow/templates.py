"""Model tasks copied from a template: Airflow's constructor once per distinct task settings.

``BaseOperator.__init__`` costs ~70 µs a task on this machine: ``apply_defaults`` (merged default
args, a deep copy of the DAG's params, a signature walk), ~67 ``__setattr__`` calls with converter
lookups, a type check of ~40 arguments. The model tasks of one DAG differ only in their ids when
their settings (owner, retries, retry delay, timeout, pool) are the same, which is nearly always.
So the factory builds the first task of each settings group with the constructor, and every other
task of the group as a copy of that *template*: the template's attributes, with fresh containers,
its own ids, then registered in the task group and the DAG as the constructor registers it
(``TaskGroup.add``, ``DAG.add_task``). That is ~4 times cheaper a task (docs/benchmarks.md,
docs/decisions.md D38).

A template is used only when every attribute is of a kind this copy handles: immutable values
(shared), lists/sets/dicts (copied), the DAG's params (deep-copied, as Airflow does per task), the
DAG and its root task group. Anything else — a new kind of attribute in a later Airflow, a task
group, a mapped task, a setup/teardown context — or a text attribute equal to the template's
task_id (derived from it, so it would be wrong on a copy) means no template: every task of the
group is then built by the constructor. tests/airflow/test_factory_templates.py proves a copy
equals a constructed task, attribute by attribute and in Airflow's serialized DAG.
"""

from __future__ import annotations

import copy
import enum
from collections.abc import Sequence
from datetime import datetime, timedelta
from types import FunctionType

from airflow.sdk import DAG
from airflow.sdk.definitions._internal.node import validate_key
from airflow.sdk.definitions._internal.setup_teardown import SetupTeardownContext
from airflow.sdk.definitions.param import ParamsDict
from airflow.sdk.definitions.taskgroup import TaskGroup

from .dbt_runner import DbtProject
from .operators import DbtNodeOperator

# attribute values a copy may share with its template (immutable, or the DAG every task points to)
_SHARED: tuple[type, ...] = (str, int, float, bool, type(None), timedelta, datetime, enum.Enum, tuple, frozenset,
                             FunctionType, DbtProject, DAG)
_COPIED: frozenset[type] = frozenset({list, set, dict, ParamsDict})
_GROUP = "task_group"
_INIT_KWARGS = "_BaseOperator__init_kwargs"
# what each copy sets for itself (DbtNodeOperator.for_node's own attributes and the id)
_OWN = frozenset({"task_id", "unique_id", "tests", "microbatch"})


def usable(template: DbtNodeOperator) -> bool:
    """Whether copies of ``template`` (built by the constructor) equal constructed tasks (module doc)."""
    if SetupTeardownContext.active or template.is_setup or template.is_teardown:
        return False
    state = vars(template)
    if state.get("_BaseOperator__from_mapped") or not isinstance(state.get(_INIT_KWARGS), dict):
        return False
    group = state.get(_GROUP)
    if not isinstance(group, TaskGroup) or not group.is_root:
        return False
    for name, value in state.items():
        if name == _GROUP or name in _OWN:
            continue
        if type(value) in _COPIED:  # exactly these: a subclass may carry more than its items
            continue
        if not isinstance(value, _SHARED):
            return False
        if isinstance(value, str) and value == template.task_id:  # derived from the id
            return False
    return True


def copy_of(template: DbtNodeOperator, dag: DAG, *, task_id: str, unique_id: str, tests: Sequence[str],
            microbatch: bool) -> DbtNodeOperator:
    """A task equal to ``DbtNodeOperator.for_node`` with the template's settings and these ids,
    added to ``dag`` (the template's). Only for a template that is ``usable``."""
    validate_key(task_id)
    state = dict(vars(template))
    group = state.pop(_GROUP)
    for name, value in state.items():
        kind = type(value)
        if kind is list or kind is set or kind is dict:
            state[name] = kind(value)
        elif kind is ParamsDict:
            state[name] = copy.deepcopy(value)
    state[_INIT_KWARGS]["task_id"] = task_id
    state.update(upstream_task_ids=set(), downstream_task_ids=set())  # as constructed: no edges yet
    state.update(task_id=task_id, unique_id=unique_id, tests=tuple(tests), microbatch=microbatch)
    task: DbtNodeOperator = object.__new__(type(template))
    task.__dict__.update(state)
    group.add(task)  # what BaseOperator.__init__ does with the task group, then it keeps the group
    task.__dict__[_GROUP] = group
    dag.add_task(task)  # and what setting task.dag does: start/end dates, task_dict, duplicate ids
    return task

