"""Fixtures of the registry suite: one registry per test on SQLite and on a real PostgreSQL, and
plans compiled by real dbt from the purpose-built projects in tests/registry/projects/.

    def test_x(registry_url, plans):          # runs twice: [sqlite] and [postgresql]
        shop = plans("shop")                  # plan of tests/registry/projects/shop
        bad = plans("billing", {"models/sources.yml": "..."})   # the same project with a file replaced
"""

from __future__ import annotations

import hashlib
import json
import shutil
from collections.abc import Callable, Mapping
from pathlib import Path

import pytest
from handoff.manifest import load_manifest
from handoff.plan import compile_manifest
from handoff.plan_model import Plan

PROJECTS = Path(__file__).resolve().parent / "projects"
BACKENDS = ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)]

PlanFactory = Callable[..., Plan]


@pytest.fixture(params=BACKENDS)
def registry_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """An empty registry: a new SQLite file, or a new database on the session's PostgreSQL."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path}/registry.db"
    return str(request.getfixturevalue("postgres_database"))


@pytest.fixture(scope="session")
def plans(tmp_path_factory: pytest.TempPathFactory) -> PlanFactory:
    """Callable: (project, {relative path: new text, or None to delete}) -> the typed plan `handoff compile`
    writes (frozen: a test edits ``support.documents.editable(plan)`` and types it again).

    The project is copied, the files replaced, `dbt parse` run in process; cached per input.
    """
    from support.examples import check, run_dbt

    workdir = tmp_path_factory.mktemp("registry-projects")
    shutil.copy(PROJECTS / "profiles.yml", workdir / "profiles.yml")
    cache: dict[str, Plan] = {}

    def compile_project(project: str, overrides: Mapping[str, str] | None = None) -> Plan:
        overrides = dict(overrides or {})
        key = hashlib.sha256(json.dumps([project, sorted(overrides.items())]).encode()).hexdigest()[:12]
        if key not in cache:
            dest = workdir / f"{project}-{key}"
            shutil.rmtree(dest, ignore_errors=True)
            shutil.copytree(PROJECTS / project, dest)
            for relative, text in overrides.items():
                target = dest / relative
                if text is None:
                    target.unlink()
                    continue
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_text(text)
            check(run_dbt(["--quiet", "parse"], dest, profiles_dir=workdir))
            cache[key] = compile_manifest(load_manifest(dest / "target" / "manifest.json"))
        return cache[key]

    return compile_project
