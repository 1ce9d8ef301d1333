"""Every id and name a plan derives from dbt's names: Airflow task ids of models and sensors,
dag ids, and the model keys other domains use for a node (one set of functions for the compiler,
the registry, the snapshot and the DAG factory, so that every reader resolves a name the same way)."""

from __future__ import annotations

import hashlib
import re
from collections import defaultdict
from collections.abc import Mapping

from ..manifest import Node

HOOK_TYPES = ("on-run-start", "on-run-end")  # also the task ids of the DAGs' hook tasks
_INVALID_ID_CHARS = re.compile(r"[^A-Za-z0-9_.-]")
MAX_ID_LENGTH = 250


def task_id_for_node(node: Node) -> str:
    """Airflow task_id of a model/seed/snapshot: its name (+ _v<version>), invalid characters as '_',
    and a leading '.' or '-' too (Airflow ids start with a letter, digit or '_': dbt accepts
    ``-daily``, which becomes ``_daily``)."""
    base = node.name if node.version is None else f"{node.name}_v{node.version}"
    normalised = _INVALID_ID_CHARS.sub("_", base)[:MAX_ID_LENGTH]
    return "_" + normalised[1:] if normalised[:1] in (".", "-") else normalised


def sensor_task_id(domain: str, model: str) -> str:
    """Airflow task_id of the sensor waiting on ``domain``'s ``model``."""
    return _INVALID_ID_CHARS.sub("_", f"wait__{domain}__{model}")[:MAX_ID_LENGTH]


def model_key(name: str, version: str | None) -> str:
    """The name another domain gives one node: its dbt name, or ``<name>_v<version>`` for one
    version of a versioned model (dbt's own default alias of a version)."""
    return name if version is None else f"{name}_v{version}"


def model_keys(name: str, version: str | None, latest_version: str | None) -> tuple[str, ...]:
    """Every name another domain may use for a node: an unversioned model is known by its name;
    a version by ``<name>_v<version>``, and the latest version also by the bare name (what an
    unpinned ``ref()`` resolves to in dbt). One function for the compiler, the registry, the
    snapshot and the DAG factory, so every reader resolves a name the same way (docs/plan.md)."""
    if version is None:
        return (name,)
    pinned = model_key(name, version)
    return (name, pinned) if version == latest_version else (pinned,)


def suffixed(task_id: str, identity: str) -> str:
    """``task_id`` made unique by 8 hex digits of the sha256 of what it stands for (``identity``)."""
    suffix = "__" + hashlib.sha256(identity.encode("utf-8")).hexdigest()[:8]
    return task_id[:MAX_ID_LENGTH - len(suffix)] + suffix


def unique_ids(wanted: Mapping[str, tuple[str, str]]) -> dict[str, str]:
    """Task ids for ``wanted`` (identity -> (normalised id, exact id before normalisation)).

    Ids that collide after normalisation (``my model`` and ``my_model`` both give ``my_model``):
    the one whose exact id needs no normalisation keeps it, every other gets a suffix of 8 hex
    digits of the sha256 of its identity. Deterministic, whatever the order."""
    groups: dict[str, list[str]] = defaultdict(list)
    for identity, (normalised, _) in wanted.items():
        groups[normalised].append(identity)
    found: dict[str, str] = {}
    for normalised, members in groups.items():
        for identity in members:
            if len(members) == 1 or wanted[identity][1] == normalised:
                found[identity] = normalised
            else:
                found[identity] = suffixed(normalised, identity)
    return found


def dag_id_for(domain: str, pipeline: str) -> str:
    """The Airflow dag_id of a domain's pipeline: always derived, never chosen (validate_plan checks it)."""
    return f"{domain}__{pipeline}"

