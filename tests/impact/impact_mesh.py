"""Real dbt manifests for the impact tests: copies of the example domains, edited per case.

A case copies integration_tests/<domain> into a temp dir, applies text edits, and parses it with
dbt in-process (dbtRunner; one invocation at a time). Local packages are linked the way `dbt deps`
links them, so a copy parses without running deps.
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import yaml

REPO = Path(__file__).resolve().parents[2]
EXAMPLES = REPO / "integration_tests"
DOMAINS = ("marketplace", "finance", "marketing")

Edit = Callable[[Path], None]


@dataclass(frozen=True)
class Replace:
    """Replace ``old`` by ``new`` in one file (which must contain ``old`` exactly once)."""

    path: str
    old: str
    new: str

    def __call__(self, project: Path) -> None:
        target = project / self.path
        text = target.read_text("utf-8")
        found = text.count(self.old)
        assert found == 1, f"{self.path} contains {self.old!r} {found} times, not once: the example domain changed"
        target.write_text(text.replace(self.old, self.new), "utf-8")


@dataclass(frozen=True)
class Rename:
    path: str
    new_path: str

    def __call__(self, project: Path) -> None:
        (project / self.path).rename(project / self.new_path)


@dataclass(frozen=True)
class Write:
    path: str
    text: str

    def __call__(self, project: Path) -> None:
        target = project / self.path
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(self.text, "utf-8")


def copy_domain(domain: str, dest: Path) -> Path:
    """A parseable copy of integration_tests/<domain> at ``dest``."""
    source = EXAMPLES / domain
    shutil.copytree(source, dest, ignore=shutil.ignore_patterns("target", "logs", "dbt_packages",
                                                                "package-lock.yml"))
    packages_file = dest / "packages.yml"
    if packages_file.exists():
        packages = yaml.safe_load(packages_file.read_text("utf-8")) or {}
        for package in packages.get("packages") or []:
            if "local" in package:
                location = (source / package["local"]).resolve()
                package["local"] = str(location)
                name = yaml.safe_load((location / "dbt_project.yml").read_text("utf-8"))["name"]
                (dest / "dbt_packages").mkdir(exist_ok=True)
                (dest / "dbt_packages" / name).symlink_to(location, target_is_directory=True)
        packages_file.write_text(yaml.safe_dump(packages, sort_keys=False), "utf-8")
    return dest


def dbt(project: Path, *command: str) -> None:
    """One in-process dbt command on a project copy (DuckDB file next to the copy)."""
    from dbt.cli.main import dbtRunner

    os.environ.setdefault("HANDOFF_DUCKDB_PATH", str(project.parent / "impact.duckdb"))
    result = dbtRunner().invoke(["--quiet", *command, "--project-dir", str(project),
                                 "--profiles-dir", str(EXAMPLES), "--target-path", str(project / "target"),
                                 "--log-path", str(project / "logs")])
    if not result.success:
        raise AssertionError(f"dbt {' '.join(command)} of {project} failed: {result.exception}")


def compile_project(project: Path) -> Path:
    """`dbt compile` (what CI runs for impact: the manifest then holds compiled_code) -> target/manifest.json."""
    dbt(project, "compile", "--no-partial-parse")
    return project / "target" / "manifest.json"


def build(domain: str, dest: Path, edits: tuple[Edit, ...] = (), *, catalog: bool = False) -> Path:
    """Copy, edit and compile one domain; returns its manifest path. ``catalog``: also build it in its own
    DuckDB file and `dbt docs generate` (target/catalog.json holds the warehouse's columns)."""
    project = copy_domain(domain, dest)
    for edit in edits:
        edit(project)
    if not catalog:
        return compile_project(project)
    previous = os.environ.get("HANDOFF_DUCKDB_PATH")
    os.environ["HANDOFF_DUCKDB_PATH"] = str(dest.parent / f"{dest.name}.duckdb")
    try:
        dbt(project, "seed")
        dbt(project, "run", "--exclude", "resource_type:snapshot")
        dbt(project, "docs", "generate")
    finally:
        if previous is None:
            os.environ.pop("HANDOFF_DUCKDB_PATH", None)
        else:
            os.environ["HANDOFF_DUCKDB_PATH"] = previous
    return project / "target" / "manifest.json"
