"""Warm, once, what every dbt task needs, in the process Airflow forks task processes from.

Airflow 3's LocalExecutor and Celery workers fork each task process from a long-lived worker
process (``supervisor.py``: a bare ``os.fork()`` on Linux). Whatever that process imported or
cached, every task inherits for free. Without this, each task pays dbt's import (~1.4 s CPU: dbt
generates the code of ~800 dataclasses at import) and its first-call warm-ups (JSON schemas of
the project and profile, node decoders: ~0.5 s) — measured in docs/benchmarks.md.

Import it from the workers' ``airflow_local_settings.py`` (docs/deployment.md)::

    import handoff.preload  # noqa: F401

``HANDOFF_DBT_ADAPTERS`` names the adapters to load too (comma-separated, default ``duckdb``;
each name must be a dbt adapter plugin installed as ``dbt.adapters.<name>``). Failing to warm
never fails Airflow: a task then simply pays the cost itself.
"""

from __future__ import annotations

import contextlib
import importlib
import os
import re
import warnings

_ADAPTER = re.compile(r"[a-z][a-z0-9_]{0,63}")


def warm(adapters: str | None = None) -> list[str]:
    """Import dbt and the adapters, build dbt's schemas and decoders; returns what was warmed."""
    warmed: list[str] = []
    import dbt.cli.main  # noqa: F401 - the import itself is most of the saving
    import dbt.contracts.graph.nodes as dbt_nodes
    from dbt.contracts.graph.manifest import Manifest
    from dbt.contracts.project import Configuration, PackageConfig, ProfileConfig, Project, ProjectFlags
    from dbt.contracts.selection import SelectorFile

    from .artifact import _NODE_CLASSES

    warmed.append("dbt")
    names = adapters if adapters is not None else os.environ.get("HANDOFF_DBT_ADAPTERS", "duckdb")
    for name in filter(None, (n.strip() for n in names.split(","))):
        if not _ADAPTER.fullmatch(name):
            warnings.warn(f"handoff preload: ignored adapter name {name[:64]!r}", stacklevel=2)
            continue
        try:
            module = importlib.import_module(f"dbt.adapters.{name}")
        except ImportError:
            warnings.warn(f"handoff preload: dbt adapter {name!r} is not installed", stacklevel=2)
            continue
        plugin = getattr(module, "Plugin", None)
        credentials = getattr(plugin, "credentials", None)
        if credentials is not None:
            credentials.json_schema()
        warmed.append(name)
    for contract in (ProfileConfig, ProjectFlags, Project, PackageConfig, SelectorFile, Configuration):
        contract.json_schema()  # dbt validates dbt_project.yml and the profile with these (lru-cached)
    for class_name in ("Manifest", *_NODE_CLASSES):
        cls = Manifest if class_name == "Manifest" else getattr(dbt_nodes, class_name)
        with contextlib.suppress(Exception):  # the refusal of an empty map is expected: the decoder is compiled
            cls.from_msgpack(b"\x80")
    return warmed


try:
    WARMED = warm()
except Exception as exc:  # noqa: BLE001 - never fail an Airflow process over a warm-up
    warnings.warn(f"handoff preload: not warmed ({type(exc).__name__}: {exc})", stacklevel=2)
    WARMED = []
