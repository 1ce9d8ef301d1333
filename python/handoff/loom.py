"""Running dbt where the dbt-loom plugin finds its configuration (docs/mesh.md).

dbt-loom reads ``dbt_loom.config.yml`` from the *current directory* (or the file named by
``$DBT_LOOM_CONFIG``) and resolves a relative manifest path in it against the current directory
too, not against ``--project-dir``. handoff runs dbt in-process with ``--project-dir``; around a
parse it therefore enters the project's folder when the project holds that file — exactly what
its engineers do when they run ``dbt parse`` there.

dbt-loom 0.9 also replaces functions of dbt at module level each time dbt instantiates it — on
*every* invocation — and three of those replacements wrap the function that is there at that
moment (``dbt.tracking.track`` among them). In one long-lived process (``dag.test()`` of a large
DAG, a batched run's waves, a test session) the wrappers nest one level per invocation until
Python's recursion limit breaks dbt after ~900 invocations. Every in-process dbt invocation of
handoff therefore runs inside ``plugin_patches_reverted``, which puts those attributes back as
they were before the invocation (docs/mesh.md).
"""

from __future__ import annotations

import contextlib
import importlib
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

CONFIG_FILE = "dbt_loom.config.yml"
CONFIG_ENV = "DBT_LOOM_CONFIG"

#: (module, attribute path) of everything dbt-loom 0.9's plugin object assigns on construction
#: (dbt_loom.dbtLoom._patch_ref_protection and _patch_plugin_telemetry).
PATCHED_BY_LOOM: tuple[tuple[str, str], ...] = (
    ("dbt.tracking", "track"),
    ("dbt.contracts.graph.manifest", "Manifest.is_invalid_protected_ref"),
    ("dbt.contracts.graph.manifest", "Manifest.is_invalid_private_ref"),
    ("dbt.parser.manifest", "ManifestLoader.check_valid_group_config_node"),
    ("dbt.contracts.graph.nodes", "ModelNode.from_args"),
)
_ABSENT = object()


def uses_loom(project_dir: str | Path) -> bool:
    """True when the dbt project has a dbt-loom configuration file."""
    return (Path(project_dir) / CONFIG_FILE).is_file()


@contextlib.contextmanager
def in_project_dir(project_dir: str | Path) -> Iterator[None]:
    """Run the body in ``project_dir`` when it holds a dbt-loom config and ``$DBT_LOOM_CONFIG`` is unset.

    The current directory belongs to the whole process: call it only around a dbt invocation that
    already holds the process's dbt lock (dbt is not safe to invoke concurrently in one process).
    """
    if os.environ.get(CONFIG_ENV) or not uses_loom(project_dir):
        yield
        return
    before = os.getcwd()
    os.chdir(project_dir)
    try:
        yield
    finally:
        os.chdir(before)


@contextlib.contextmanager
def plugin_patches_reverted() -> Iterator[None]:
    """Around one in-process dbt invocation: afterwards every attribute in ``PATCHED_BY_LOOM`` is
    the object it was before (restored from the owner's ``__dict__``, so a classmethod stays one;
    an attribute the owner did not have is removed again). Without dbt-loom installed nothing
    changes and this is a no-op. Call it under the process's dbt lock, like the invocation."""
    saved: list[tuple[Any, str, Any]] = []
    for module_name, path in PATCHED_BY_LOOM:
        owner: Any = importlib.import_module(module_name)
        *parents, attribute = path.split(".")
        for parent in parents:
            owner = getattr(owner, parent)
        saved.append((owner, attribute, vars(owner).get(attribute, _ABSENT)))
    try:
        yield
    finally:
        for owner, attribute, value in saved:
            if value is _ABSENT:
                if attribute in vars(owner):
                    delattr(owner, attribute)
            else:
                setattr(owner, attribute, value)
