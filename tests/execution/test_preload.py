"""handoff.preload: what a worker process warms once for every task it forks."""

from __future__ import annotations

import subprocess
import sys

import pytest


def test_preload_warms_dbt_and_the_named_adapters_only():
    from handoff.preload import warm

    with pytest.warns(UserWarning) as caught:
        warmed = warm("duckdb, Bad-Name;rm, not_installed_adapter")
    assert warmed == ["dbt", "duckdb"]
    messages = " ".join(str(w.message) for w in caught)
    assert "ignored adapter name 'Bad-Name;rm'" in messages and "'not_installed_adapter' is not installed" in messages


def test_importing_preload_leaves_dbt_warm_for_forked_children():
    code = ("import os, sys\nimport handoff.preload as p\nassert p.WARMED == ['dbt', 'duckdb'], p.WARMED\n"
            "pid = os.fork()\n"
            "if pid == 0:\n"
            "    from dbt.contracts.project import Project\n"
            "    inherited = 'dbt.cli.main' in sys.modules and 'dbt.adapters.duckdb' in sys.modules\n"
            "    cached = Project.json_schema.cache_info().currsize >= 6\n"
            "    os._exit(0 if inherited and cached else 3)\n"
            "_, status = os.waitpid(pid, 0)\nsys.exit(os.waitstatus_to_exitcode(status))\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-2000:]
