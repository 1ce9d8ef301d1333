"""The asset registry: every domain's published plan in one database, cross-domain checks and queries.

Modules: ``mesh`` (in-memory model, pure), ``checks`` (HO301–HO306, pure), ``snapshot`` (the file
Airflow reads; no SQLAlchemy), ``engine`` (URLs, transactions, retries), ``schema`` and
``migrations`` (tables), ``queries``, ``run_state`` (recovery's records) and ``store``
(``Registry``). See docs/registry.md.

``from handoff.registry import Registry`` imports SQLAlchemy; the pure modules do not.
"""

from __future__ import annotations

from typing import Any

__all__ = ["Completion", "Consumer", "Notification", "PublishResult", "Refusal", "Registry", "Resolution", "SensorWait",
           "SlaMiss"]


def __getattr__(name: str) -> Any:
    if name in ("Registry", "PublishResult"):
        from . import store

        return getattr(store, name)
    if name in ("Consumer", "SensorWait"):
        from . import queries

        return getattr(queries, name)
    if name in ("Completion", "Resolution", "Refusal"):
        from . import run_state

        return getattr(run_state, name)
    if name in ("Notification", "SlaMiss"):
        from . import notifications

        return getattr(notifications, name)
    raise AttributeError(name)
