"""`handoff package`: parse a domain's dbt project once, at deploy, and write its artefact.

The deploy step (docs/deployment.md): ``dbt deps`` → ``handoff package <project>`` (one
in-process ``dbt parse``, and with ``--compile`` a ``dbt compile`` of that parsed Manifest:
``target/manifest.json`` and ``target/handoff-artifact.sqlite`` come from the very same parse)
→ ``handoff compile <project>/target/manifest.json`` (the plan records that manifest's sha256,
which a worker compares with the artefact's).

Also here: the *target identity* of a profile (adapter type, database, schema), read the way dbt
reads it. dbt writes it into every relation name at parse time, so the worker's profile must
agree with the one used at deploy; everything else in the profile (paths, hosts, users,
passwords) may differ and is read on the worker only.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from .argv import option
from .artifact import ArtifactInfo, TargetIdentity, artifact_path, sha256_file, write_artifact
from .errors import HandoffError


def _first_line(exc: BaseException) -> str:
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    text = " ".join(lines[-2:]) if lines else type(exc).__name__
    return text[:300]


def target_identity(project_dir: str | Path, *, profiles_dir: str | Path | None = None, target: str | None = None,
                    dbt_vars: Mapping[str, Any] | None = None) -> TargetIdentity:
    """Adapter type, database and schema of the profile dbt would use for ``project_dir``.

    Reads ``profiles.yml`` with dbt's own loader (env vars rendered from this process's
    environment); a profile dbt cannot load is a one-line HandoffError (no value of it printed).
    """
    from argparse import Namespace

    from dbt.cli.resolvers import default_profiles_dir
    from dbt.config.runtime import load_profile
    from dbt.flags import set_from_args
    from dbt_common.context import set_invocation_context

    folder = str(profiles_dir) if profiles_dir else str(default_profiles_dir())
    set_invocation_context(dict(os.environ))
    set_from_args(Namespace(profiles_dir=folder), {})
    try:
        profile = load_profile(str(project_dir), dict(dbt_vars or {}), None, target)
    except Exception as exc:  # noqa: BLE001 - dbt raises many types for a bad profile: one line for all
        raise HandoffError(f"dbt cannot load the profile: {_first_line(exc)}", where=f"{folder}/profiles.yml",
                           hint="fix the profile (or HANDOFF_DBT_PROFILES_DIR / the env vars it reads)") from None
    credentials = profile.credentials
    database = getattr(credentials, "database", None)
    schema = getattr(credentials, "schema", None)
    return TargetIdentity(str(credentials.type), None if database is None else str(database),
                          None if schema is None else str(schema))


def package_project(project_dir: str | Path, *, profiles_dir: str | Path | None = None, target: str | None = None,
                    dbt_vars: Mapping[str, Any] | None = None,
                    output: str | Path | None = None, compile_sql: bool = False) -> tuple[Path, ArtifactInfo]:
    """`dbt parse` ``project_dir`` in this process (`dbt compile` with ``compile_sql``: the manifest
    then carries every model's compiled SQL, which column-level impact needs — docs/impact.md; it
    connects to the target's warehouse like any compile), then write its artefact (default
    ``<project>/target/handoff-artifact.sqlite``). Returns (artefact path, what it holds)."""
    from dbt.cli.main import dbtRunner
    from dbt.contracts.graph.manifest import Manifest

    project = Path(project_dir)
    project_file = project / "dbt_project.yml"
    if not project_file.is_file():
        raise HandoffError("no dbt_project.yml", where=str(project), hint="pass the folder of the domain's dbt project")
    # values through handoff.argv.option: a name can never reach dbt as an option (#12)
    args = ["--quiet", "--no-send-anonymous-usage-stats", "parse", *option("--project-dir", str(project)),
            *option("--target-path", str(project / "target"))]
    if profiles_dir:
        args += option("--profiles-dir", str(profiles_dir))
    if target:
        args += option("--target", target)
    if dbt_vars:
        args += option("--vars", json.dumps(dict(dbt_vars), sort_keys=True))
    from .loom import in_project_dir, plugin_patches_reverted
    from .warehouse import release_connections

    try:
        # dbt-loom reads its config (and relative manifest paths) from there
        with in_project_dir(project), plugin_patches_reverted():
            result = dbtRunner().invoke(args)
            if compile_sql and result.success and isinstance(result.result, Manifest):
                # compile the parsed Manifest in place: its nodes get their compiled SQL, and dbt
                # writes target/manifest.json again with it
                compiled = dbtRunner(manifest=result.result).invoke(["--quiet", "--no-send-anonymous-usage-stats",
                                                                     "compile", *args[3:]])
                if not compiled.success:
                    result = compiled
    finally:
        release_connections()
    step = "compile" if compile_sql else "parse"
    if not result.success or result.result is None:
        detail = _first_line(result.exception) if result.exception else "see dbt's output above"
        raise HandoffError(f"dbt {step} failed: {detail}", where=str(project))
    manifest_json = project / "target" / "manifest.json"
    if not manifest_json.is_file():
        raise HandoffError(f"dbt {step} wrote no target/manifest.json", where=str(project),
                           hint="do not pass --no-write-json to the parse")
    identity = target_identity(project, profiles_dir=profiles_dir, target=target, dbt_vars=dbt_vars)
    dest = Path(output) if output else artifact_path(project)
    info = write_artifact(result.result, dest, manifest_sha256=sha256_file(manifest_json),
                          project_file_sha256=sha256_file(project_file), target=identity)
    return dest, info
