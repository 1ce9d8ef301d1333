"""Running dbt where the dbt-loom plugin finds its configuration (docs/mesh.md).

dbt-loom reads ``dbt_loom.config.yml`` from the *current directory* (or the file named by
``$DBT_LOOM_CONFIG``) and resolves a relative manifest path in it against the current directory
too, not against ``--project-dir``. handoff runs dbt in-process with ``--project-dir``; around a
parse it therefore enters the project's folder when the project holds that file — exactly what
its engineers do when they run ``dbt parse`` there.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path

CONFIG_FILE = "dbt_loom.config.yml"
CONFIG_ENV = "DBT_LOOM_CONFIG"


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
