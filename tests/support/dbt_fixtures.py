"""Parse the small purpose-built dbt projects under tests/fixtures/dbt with real dbt, in-process."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "dbt"


def parse_fixture(name: str, workdir: Path) -> Path:
    """Copy tests/fixtures/dbt/<name> into ``workdir``, `dbt parse` it, return its manifest.json."""
    from dbt.cli.main import dbtRunner

    project = workdir / name
    if not project.exists():
        shutil.copytree(FIXTURES / name, project, ignore=shutil.ignore_patterns("target", "logs", "dbt_packages"))
    os.environ.setdefault("HANDOFF_DUCKDB_PATH", str(workdir / "fixtures.duckdb"))
    result = dbtRunner().invoke(["--quiet", "--no-send-anonymous-usage-stats", "parse", "--project-dir", str(project), "--profiles-dir", str(project),
                                 "--target-path", str(project / "target"), "--log-path", str(project / "logs")])
    if not result.success:
        pytest.fail(f"dbt parse of fixture {name} failed: {result.exception}")
    return project / "target" / "manifest.json"


@pytest.fixture(scope="session")
def fixture_manifest(tmp_path_factory: pytest.TempPathFactory):
    """Callable: fixture project name -> parsed manifest path (parsed once per session)."""
    workdir = tmp_path_factory.mktemp("dbt-fixtures")
    cache: dict[str, Path] = {}

    def get(name: str) -> Path:
        if name not in cache:
            cache[name] = parse_fixture(name, workdir)
        return cache[name]

    return get
