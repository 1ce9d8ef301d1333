"""`handoff compile` refuses a manifest that a dbt command rewrote after `handoff package`:
its plan would pass compile/check/publish, then every task would fail at run time as stale."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from support.examples import _DBT_LOCK, _environ, build_mesh, check, run_dbt


def _compile(manifest: Path, out: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "handoff.cli", "compile", str(manifest), "-o", f"{out}/"],
                          capture_output=True, text=True, env=os.environ.copy())


def _package(mesh, project: Path) -> None:
    from handoff.packaging import package_project

    with _DBT_LOCK, _environ({"DBT_SEND_ANONYMOUS_USAGE_STATS": "false", "DO_NOT_TRACK": "1", **mesh.env}):
        package_project(project, profiles_dir=mesh.profiles_dir)


def test_compile_refuses_a_manifest_rewritten_after_packaging(tmp_path):
    mesh = build_mesh(tmp_path, build=False, domains=("marketplace",))
    project = mesh.project_dirs["marketplace"]
    manifest = project / "target" / "manifest.json"
    _package(mesh, project)
    # the README's old order: package, then validate (run-operation rewrites target/manifest.json)
    check(run_dbt(["run-operation", "handoff_validate"], project, mesh.env))
    out = tmp_path / "plans"
    done = _compile(manifest, out)
    assert done.returncode == 2, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, lines
    assert str(manifest) in lines[0] and "not the one `handoff package` wrote" in lines[0]
    assert "before `handoff package`" in lines[0] and "re-run `handoff package`" in lines[0]
    assert not out.exists()  # nothing written

    # the documented order: validate, then package, then compile
    _package(mesh, project)
    done = _compile(manifest, out)
    assert done.returncode == 0, done.stderr
    assert (out / "marketplace.plan.json").is_file()


def test_compile_without_an_artefact_compiles_as_before(tmp_path):
    """CI compiles a PR's manifest (`dbt parse`) without packaging: nothing to compare with."""
    from handoff.artifact import ARTIFACT_NAME

    mesh = build_mesh(tmp_path, build=False, domains=("marketplace",))
    manifest = mesh.manifests["marketplace"]
    assert not (manifest.parent / ARTIFACT_NAME).exists()
    done = _compile(manifest, tmp_path / "plans")
    assert done.returncode == 0, done.stderr


def _sensor_reads(plan_file: Path) -> list[object]:
    import json

    plan = json.loads(plan_file.read_text("utf-8"))
    return [task.get("reads") for pipeline in plan["pipelines"] for task in pipeline["tasks"]
            if task["kind"] == "sensor"]


def test_package_compile_gives_the_deployed_plan_its_read_columns(tmp_path):
    """The deploy flow of docs/ci-example.md: `handoff package --compile` leaves a manifest with every
    model's compiled SQL (a plain package parses only), `handoff compile` accepts it, and the plan's
    sensors carry the columns each reader reads — what column-level impact judges consumers by.
    Packaged without --compile, the same sensors' reads are unknown."""
    import json

    from handoff.packaging import package_project

    mesh = build_mesh(tmp_path, build=False, domains=("finance",))
    project = mesh.project_dirs["finance"]
    manifest = project / "target" / "manifest.json"
    for compile_sql in (False, True):
        with _DBT_LOCK, _environ({"DBT_SEND_ANONYMOUS_USAGE_STATS": "false", "DO_NOT_TRACK": "1", **mesh.env}):
            package_project(project, profiles_dir=mesh.profiles_dir, compile_sql=compile_sql)
        models = [n for n in json.loads(manifest.read_text("utf-8"))["nodes"].values()
                  if n["resource_type"] == "model"]
        assert models and all(bool(n.get("compiled_code")) == compile_sql for n in models)
        out = tmp_path / f"plans-{compile_sql}"
        done = _compile(manifest, out)
        assert done.returncode == 0, done.stderr
        reads = _sensor_reads(out / "finance.plan.json")
        assert reads, "finance reads marketplace: its plan has sensors"
        if compile_sql:
            assert all(r for r in reads), reads
            assert any("amount_cents" in json.dumps(r) for r in reads), reads
        else:
            assert not any(reads), reads
