"""Run dbt on the example domains of integration_tests/, in process, and pytest fixtures for them.

    from support.examples import build_mesh, run_dbt

    mesh = build_mesh(tmp_path)                  # deps + seed/build of marketplace -> finance -> marketing
    mesh.manifests["finance"]                    # Path to that domain's target/manifest.json
    result = run_dbt(["run-operation", "handoff_validate"], mesh.project_dirs["finance"], mesh.env)
    assert result.success, result.output

Fixtures (session scope; each builds its own copy under pytest's tmp dir):
    example_manifests   deps + parse of the three domains (no database writes)
    example_mesh        deps + build of the three domains into one DuckDB file

The projects are copied (with the package: dbt_project.yml, macros/) into a tmp dir before dbt
runs, so target/, dbt_packages/, logs/ and package-lock.yml never land in the repository and
parallel sessions cannot collide; the copies keep the committed relative `local:` paths.
dbt is not safe to invoke concurrently in one process: every call here takes one lock.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import threading
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from handoff.loom import in_project_dir, plugin_patches_reverted

REPO = Path(__file__).resolve().parents[2]
INTEGRATION = REPO / "integration_tests"
DOMAINS = ("marketplace", "finance", "marketing")  # build order: each reads the ones before it
BROKEN = INTEGRATION / "broken"
_IGNORED = shutil.ignore_patterns("target", "dbt_packages", "logs", "package-lock.yml", ".user.yml", "*.duckdb*")
_DBT_LOCK = threading.Lock()
# A plain `dbt build` of a microbatch model builds every day from its `begin` to now (marketing's
# events pipeline: ~1,000 batches); the example data spans these days. handoff's own runs pass
# each run's interval instead (docs/plan.md).
EXAMPLE_EVENT_TIME = ("--event-time-start", "2024-03-01", "--event-time-end", "2024-03-13")


@dataclass
class DbtRun:
    """The outcome of one in-process dbt invocation."""

    args: list[str]
    success: bool
    result: Any
    exception: BaseException | None
    messages: list[str] = field(default_factory=list)  # every event's message, in order
    printed: list[str] = field(default_factory=list)  # what macros print() ed

    @property
    def output(self) -> str:
        return "\n".join(self.messages)


@dataclass
class Mesh:
    """Copies of the example domains, built (or parsed) into one DuckDB file."""

    root: Path
    duckdb_path: Path
    profiles_dir: Path
    project_dirs: dict[str, Path]
    manifests: dict[str, Path]

    @property
    def env(self) -> dict[str, str]:
        return {"HANDOFF_DUCKDB_PATH": str(self.duckdb_path)}


@contextlib.contextmanager
def _environ(env: Mapping[str, str]) -> Iterator[None]:
    saved = {key: os.environ.get(key) for key in env}
    os.environ.update(env)
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def run_dbt(args: Sequence[str], project_dir: Path, env: Mapping[str, str] | None = None,
            profiles_dir: Path | None = None) -> DbtRun:
    """Invoke dbt in this process (``dbt.cli.main.dbtRunner``) on one project; never raises on failure.

    ``--project-dir`` and ``--profiles-dir`` are added (profiles default to integration_tests/
    next to the project: the copy's, when the project is a copy). ``env`` is set while dbt runs.
    """
    from dbt.cli.main import dbtRunner

    project_dir = Path(project_dir)
    if profiles_dir is None:
        profiles_dir = next(p for p in project_dir.parents if (p / "profiles.yml").exists())
    messages: list[str] = []
    printed: list[str] = []

    def collect(event: Any) -> None:
        msg = event.info.msg
        if event.info.name == "PrintEvent":
            printed.append(str(msg))
        if msg:
            messages.append(str(msg))

    full = [*args, "--project-dir", str(project_dir), "--profiles-dir", str(profiles_dir)]
    settings = {"DBT_SEND_ANONYMOUS_USAGE_STATS": "false", "DO_NOT_TRACK": "1", **(env or {})}
    # dbt-loom reads its config there; its per-invocation patches of dbt are undone afterwards
    with _DBT_LOCK, _environ(settings), in_project_dir(project_dir), plugin_patches_reverted():
        try:
            res = dbtRunner(callbacks=[collect]).invoke(full)
        finally:
            release_connections()
    return DbtRun(full, bool(res.success), res.result, res.exception, messages, printed)


def release_connections() -> None:
    """Close the DuckDB file dbt keeps open in-process: dbt-duckdb holds it, locked against every
    other process, for as long as this process lives (docs/decisions.md D6)."""
    from dbt.adapters.factory import FACTORY

    FACTORY.cleanup_connections()
    from dbt.adapters.duckdb.connections import DuckDBConnectionManager

    if DuckDBConnectionManager._ENV is not None:
        DuckDBConnectionManager._ENV.close()
    DuckDBConnectionManager.close_all_connections()


def check(run: DbtRun) -> DbtRun:
    """``run`` if it succeeded, else an AssertionError carrying dbt's output."""
    if not run.success:
        raise AssertionError(f"dbt {' '.join(run.args[:2])} failed ({run.exception!r}):\n{run.output}")
    return run


def copy_examples(dest: Path) -> Path:
    """Copy the package (dbt_project.yml, macros/) and integration_tests/ under ``dest``; returns
    the copy of integration_tests/. Relative `local:` package paths stay valid in the copy."""
    dest.mkdir(parents=True, exist_ok=True)
    shutil.copy2(REPO / "dbt_project.yml", dest / "dbt_project.yml")
    shutil.copytree(REPO / "macros", dest / "macros", ignore=_IGNORED, dirs_exist_ok=True)
    shutil.copytree(INTEGRATION, dest / "integration_tests", ignore=_IGNORED, dirs_exist_ok=True)
    return dest / "integration_tests"


def build_mesh(tmp_path: Path, build: bool = True, domains: Sequence[str] = DOMAINS) -> Mesh:
    """Copy the example domains under ``tmp_path`` and run ``dbt deps`` then ``dbt build`` (or only
    ``dbt parse`` when ``build`` is false) on each, in order, against one DuckDB file."""
    integration = copy_examples(Path(tmp_path) / "mesh")
    mesh = Mesh(
        root=integration,
        duckdb_path=Path(tmp_path) / "mesh" / "mesh.duckdb",
        profiles_dir=integration,
        project_dirs={d: integration / d for d in domains},
        manifests={d: integration / d / "target" / "manifest.json" for d in domains},
    )
    for domain in domains:
        check(run_dbt(["deps"], mesh.project_dirs[domain], mesh.env))
        check(run_dbt(["build", *EXAMPLE_EVENT_TIME] if build else ["parse"], mesh.project_dirs[domain], mesh.env))
        assert mesh.manifests[domain].exists(), f"dbt wrote no manifest for {domain}"
    return mesh


def broken_cases() -> list[str]:
    """Names of the deliberately broken projects under integration_tests/broken/."""
    return sorted(p.name for p in BROKEN.iterdir() if (p / "dbt_project.yml").exists())


@pytest.fixture(scope="session")
def example_manifests(tmp_path_factory: pytest.TempPathFactory) -> Mesh:
    """The three example domains after ``dbt deps`` + ``dbt parse`` (manifests only, empty database)."""
    return build_mesh(tmp_path_factory.mktemp("example_manifests"), build=False)


@pytest.fixture(scope="session")
def example_mesh(tmp_path_factory: pytest.TempPathFactory) -> Mesh:
    """The three example domains after ``dbt deps`` + ``dbt build`` into one DuckDB file."""
    return build_mesh(tmp_path_factory.mktemp("example_mesh"), build=True)


def deploy_plans(mesh: Mesh, dest: Path, domains: Sequence[str], *, publish: bool = True,
                 adjust: Any = None, registry_url: str | None = None) -> tuple[Path, str]:
    """Deploy each domain as docs/deployment.md says: `handoff package` its project (one dbt parse
    writing target/manifest.json and the artefact its tasks run from), compile that manifest into
    ``dest/plans`` (``adjust(domain, plan)`` may edit a plan first: test-sized timeouts), then
    publish them to ``registry_url`` (default ``dest/registry.db``) and write the registry snapshot
    next to the plans, through the real CLI. Returns (plans folder, registry URL)."""
    import subprocess
    import sys

    from handoff.cross_project import find_refs
    from handoff.manifest import load_manifest
    from handoff.packaging import package_project
    from handoff.plan import compile_manifest

    from .documents import plan_text

    plans = Path(dest) / "plans"
    plans.mkdir(parents=True, exist_ok=True)
    registry_url = registry_url or f"sqlite:///{Path(dest) / 'registry.db'}"
    env = {**os.environ, "HANDOFF_REGISTRY_URL": registry_url}

    def cli(*args: str) -> None:
        done = subprocess.run([sys.executable, "-m", "handoff.cli", *args], capture_output=True, text=True, env=env)
        assert done.returncode == 0, f"handoff {args[0]} failed: {done.stderr}"

    for domain in domains:
        with _DBT_LOCK, _environ({"DBT_SEND_ANONYMOUS_USAGE_STATS": "false", "DO_NOT_TRACK": "1", **mesh.env}):
            package_project(mesh.project_dirs[domain], profiles_dir=mesh.profiles_dir)
        manifest = load_manifest(mesh.manifests[domain])
        if find_refs(manifest):  # dbt Mesh refs: the registry maps their projects to domains (docs/mesh.md)
            assert publish, f"{domain} has cross-project refs: its upstream projects must be published first"
            cli("publish", *sorted(str(p) for p in plans.glob("*.plan.json")))
            compiled = Path(dest) / f"{domain}.compiled.json"
            cli("compile", str(mesh.manifests[domain]), "-o", str(compiled))
            plan = json.loads(compiled.read_text("utf-8"))
        else:
            plan = compile_manifest(manifest).to_json()  # the document: ``adjust`` edits it
        if adjust is not None:
            adjust(domain, plan)
        (plans / f"{plan['domain']['name']}.plan.json").write_text(plan_text(plan))  # <domain>.plan.json
    if publish:
        cli("publish", str(plans))
        cli("snapshot", "--output", f"{plans}/")
    return plans, registry_url
