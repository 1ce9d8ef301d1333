"""The plan: what `handoff compile` writes for one domain and every reader (publish, check, inspect,
the Airflow DAG factory) reads — one file per concern:

- ``compiler``: ``compile_manifest`` (manifest + the meta convention -> a typed ``Plan``);
- ``naming``: task ids, sensor ids, dag ids, model keys;
- ``graph``: topological order, cycles;
- ``document``: the version, ``validate_plan`` (the checks every reader runs), ``load_plan``,
  ``dumps``.

The typed plan itself (``Plan``, ``PlanPipeline``, ``DbtTask``, ``SensorTask``) is
``handoff.plan_model``. Import from here: ``from handoff.plan import compile_manifest, load_plan``.
"""

from __future__ import annotations

from .compiler import compile_manifest
from .document import (
    PLAN_VERSION,
    VALIDATION_RULES,
    check_acyclic,
    check_structure,
    dumps,
    load_plan,
    load_plans,
    validate_plan,
    write_atomically,
)
from .graph import find_cycle, topological_order
from .naming import (
    HOOK_TYPES,
    MAX_ID_LENGTH,
    dag_id_for,
    model_key,
    model_keys,
    sensor_task_id,
    task_id_for_node,
)

__all__ = [
    "HOOK_TYPES",
    "MAX_ID_LENGTH",
    "PLAN_VERSION",
    "VALIDATION_RULES",
    "check_acyclic",
    "check_structure",
    "compile_manifest",
    "dag_id_for",
    "dumps",
    "find_cycle",
    "load_plan",
    "load_plans",
    "model_key",
    "model_keys",
    "sensor_task_id",
    "task_id_for_node",
    "topological_order",
    "validate_plan",
    "write_atomically",
]
