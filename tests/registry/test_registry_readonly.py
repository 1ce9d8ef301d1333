"""Read commands open the registry read-only: a SQLite registry in a read-only folder and a
PostgreSQL role that may only SELECT can check, ask and export, never write (issue #12)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from registry_helpers import run_cli, write_plans
from support.unprivileged import read_only_folder

from handoff.registry import Registry
from handoff.registry.engine import open_engine


def _run(wrap: Any, *args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("HANDOFF_")}
    return subprocess.run(wrap([sys.executable, "-m", "handoff.cli", *args]), capture_output=True, text=True,
                          env=env, cwd=cwd, timeout=120, check=False)


def _read_commands(url: str, plan: Path, out: Path) -> dict[str, list[str]]:
    return {
        "check": ["check", str(plan), "--registry", url],
        "who-depends-on": ["who-depends-on", "shop.orders", "--registry", url],
        "explain": ["explain", "shop.orders", "--registry", url, "--format", "json"],
        "explain --at": ["explain", "billing.invoices", "--at", "2026-11-24", "--registry", url],
        "registry status": ["registry", "status", "--registry", url],
        "registry history": ["registry", "history", "--registry", url],
        "snapshot": ["snapshot", "--output", str(out / "registry_snapshot.json"), "--registry", url],
        "map": ["map", "--format", "mermaid", "--registry", url],
    }


def test_a_sqlite_registry_in_a_read_only_folder_is_readable(plans, tmp_path):
    folder = tmp_path / "registry"
    folder.mkdir()
    url = f"sqlite:///{folder / 'registry.db'}"
    files = write_plans(tmp_path / "plans", plans("shop"), plans("billing"))
    assert run_cli("publish", *map(str, files), "--registry", url).returncode == 0
    out = tmp_path / "out"
    out.mkdir()
    before = sorted(p.name for p in folder.iterdir())
    with read_only_folder(folder) as wrap:
        for name, args in _read_commands(url, files[1], out).items():
            done = _run(wrap, *args, cwd=tmp_path)
            assert done.returncode == 0, (name, done.stderr)
            assert "Traceback" not in done.stderr
        refused = _run(wrap, "publish", str(files[0]), "--force", "--registry", url, cwd=tmp_path)
    assert refused.returncode == 2 and len(refused.stderr.strip().splitlines()) == 1, refused.stderr
    assert "Traceback" not in refused.stderr and "registry" in refused.stderr
    assert (out / "registry_snapshot.json").is_file()
    assert sorted(p.name for p in folder.iterdir()) == before  # nothing written next to the registry


def test_an_outdated_registry_is_not_migrated_by_a_read_command(plans, tmp_path):
    from sqlalchemy import delete

    from handoff.registry import migrations
    from handoff.registry import schema as s

    url = f"sqlite:///{tmp_path / 'registry.db'}"
    with Registry(url) as registry:
        registry.publish([plans("shop")])
    engine = open_engine(url)
    with engine.begin() as conn:
        conn.execute(delete(s.schema_version).where(s.schema_version.c.version == migrations.LATEST))
    engine.dispose()
    done = run_cli("who-depends-on", "shop.orders", "--registry", url)
    assert done.returncode == 2 and "handoff registry upgrade" in done.stderr, done.stderr
    assert run_cli("registry", "upgrade", "--registry", url).returncode == 0
    assert run_cli("who-depends-on", "shop.orders", "--registry", url).returncode == 0


@pytest.mark.postgres
def test_a_postgresql_role_that_may_only_select_can_run_every_read_command(plans, postgres_server,
                                                                            postgres_database, tmp_path):
    files = write_plans(tmp_path / "plans", plans("shop"), plans("billing"))
    assert run_cli("publish", *map(str, files), "--registry", postgres_database).returncode == 0
    database = postgres_database.rsplit("/", 1)[1]
    role = f"reader_{database}"
    postgres_server.admin(f"CREATE ROLE {role} LOGIN")
    import psycopg2

    conn = psycopg2.connect(postgres_database)
    try:
        conn.autocommit = True
        with conn.cursor() as cur:
            cur.execute(f"GRANT SELECT ON ALL TABLES IN SCHEMA public TO {role}")
    finally:
        conn.close()
    url = postgres_database.replace(f"//{postgres_server.superuser}@", f"//{role}@", 1)
    out = tmp_path / "out"
    out.mkdir()
    for name, args in _read_commands(url, files[1], out).items():
        done = run_cli(*args)
        assert done.returncode == 0, (name, done.stderr)
    refused = run_cli("publish", str(files[0]), "--force", "--registry", url)
    assert refused.returncode == 2 and len(refused.stderr.strip().splitlines()) == 1, refused.stderr
    assert "permission denied" in refused.stderr and "Traceback" not in refused.stderr
