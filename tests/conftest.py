"""Shared pytest wiring. Fixtures live in tests/support/*; each area may add its own conftest.

Airflow reads its settings when first imported, so the test session's private AIRFLOW_HOME
(SQLite, no examples) is set here, before any test module can import Airflow.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
_AIRFLOW_HOME = Path(tempfile.mkdtemp(prefix="handoff-test-airflow-"))
os.environ["AIRFLOW_HOME"] = str(_AIRFLOW_HOME)
os.environ["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"] = f"sqlite:///{_AIRFLOW_HOME}/airflow.db"
os.environ["AIRFLOW__CORE__LOAD_EXAMPLES"] = "False"
os.environ["AIRFLOW__CORE__DAGS_FOLDER"] = str(_AIRFLOW_HOME / "dags")
os.environ["AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION"] = "False"
os.environ.setdefault("DO_NOT_TRACK", "1")
# dbt would write its anonymous user id (.user.yml) next to each profiles.yml it reads, some of them
# in this repository: forced off, whatever the shell says
os.environ["DBT_SEND_ANONYMOUS_USAGE_STATS"] = "False"

pytest_plugins: list[str] = ["support.dbt_fixtures", "support.airflow_stack", "support.examples", "support.postgres",
                             "support.browser", "support.corpus"]


@pytest.fixture(autouse=True)
def _dbt_plugin_patches_reverted() -> Iterator[None]:
    """dbt-loom wraps dbt functions again on every in-process dbt invocation (handoff.loom): a
    test that invokes dbt directly must not leave the next tests one wrapper deeper."""
    from handoff.loom import plugin_patches_reverted

    with plugin_patches_reverted():
        yield


@pytest.fixture(scope="session")
def airflow_home() -> Path:
    """A migrated Airflow metadata DB and a dags folder holding handoff's one DAG file."""
    dags = _AIRFLOW_HOME / "dags"
    dags.mkdir(exist_ok=True)
    shutil.copy(REPO / "integration_tests" / "airflow" / "dags" / "handoff_dags.py", dags / "handoff_dags.py")
    airflow = Path(sys.executable).with_name("airflow")
    done = subprocess.run([str(airflow), "db", "migrate"], capture_output=True, text=True, env=os.environ.copy())
    if done.returncode != 0:
        pytest.fail(f"airflow db migrate failed:\n{done.stdout[-2000:]}\n{done.stderr[-2000:]}")
    return _AIRFLOW_HOME


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    shutil.rmtree(_AIRFLOW_HOME, ignore_errors=True)
