"""Warehouse connections dbt keeps open in this process (docs/decisions.md D6)."""

from __future__ import annotations


def release_connections() -> None:
    """Close the warehouse connections dbt keeps open in-process after an invocation.

    dbt-duckdb keeps its database file open (and locked against every other process) for as
    long as the process lives; a task must not hold the warehouse beyond its own work. Closing
    costs ~15 ms and reopening ~0.1 s (docs/decisions.md D6). A no-op before dbt was used."""
    import sys

    if "dbt.adapters.factory" not in sys.modules:
        return
    try:
        from dbt.adapters.factory import FACTORY

        FACTORY.cleanup_connections()  # type: ignore[no-untyped-call]
    except Exception:  # noqa: S110, BLE001 - best effort: nothing registered yet
        pass
    try:
        from dbt.adapters.duckdb.connections import DuckDBConnectionManager
    except ImportError:
        return
    environment = DuckDBConnectionManager._ENV
    if environment is not None:
        environment.close()  # type: ignore[no-untyped-call]
    DuckDBConnectionManager.close_all_connections()  # type: ignore[no-untyped-call]
