"""Publishing one domain, inside the caller's transaction: lock its row, check its binding to a
dbt project (``binding``), replace its rows in every per-domain table, record the publication.
``Registry.publish`` (store.py) validates the plans and runs this for each domain in one
transaction; ``domain_rows`` is the pure plan -> rows mapping.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import delete, insert, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine import Connection

from ..errors import HandoffError, RuleViolation
from . import binding
from . import schema as s
from .mesh import Domain


@dataclass(frozen=True)
class PublishResult:
    """What publishing one domain did."""

    domain: str
    changed: bool  # False: the registry already held exactly this plan (nothing rewritten)
    pipelines: int
    tasks: int
    sensors: int
    plan_sha256: str
    previous_sha256: str | None  # None: a new domain



def replace_domain(conn: Connection, domain: Domain, *, label: str | None, force: bool,
                    now: datetime, takeover: tuple[str, str] | None = None) -> PublishResult:
    previous = _lock_domain(conn, domain, now)
    _check_binding(conn, domain, now, takeover)
    sensors = sum(1 for t in domain.tasks() if t.is_sensor)
    result = PublishResult(domain.name, True, len(domain.pipelines), domain.task_count, sensors,
                           domain.plan_sha256, previous or None)
    if previous == domain.plan_sha256 and not force:
        insert_rows(conn, s.publications, [_publication(domain, label, now, changed=False)])
        return PublishResult(**{**result.__dict__, "changed": False})
    for table in s.DOMAIN_TABLES:
        conn.execute(delete(table).where(table.c.domain == domain.name))
    conn.execute(update(s.domains).where(s.domains.c.name == domain.name).values(
        **_domain_row(domain, label, now)))
    rows = domain_rows(domain)
    for table in (s.pipelines, s.tasks, s.task_edges, s.cross_edges, s.lineage):
        insert_rows(conn, table, rows[table.name])
    insert_rows(conn, s.publications, [_publication(domain, label, now, changed=True)])
    return result


def _lock_domain(conn: Connection, domain: Domain, now: datetime) -> str:
    """Lock the domain's row for this transaction (creating it if new); its current plan sha ('' if new).

    On SQLite the whole database is already locked (BEGIN IMMEDIATE); on PostgreSQL this row lock
    serializes publishers of the same domain only.
    """
    placeholder = {**_domain_row(domain, None, now), "plan_sha256": ""}
    dialect_insert = pg_insert if conn.dialect.name == "postgresql" else sqlite_insert
    conn.execute(dialect_insert(s.domains).values(**placeholder).on_conflict_do_nothing(index_elements=["name"]))
    found = conn.execute(select(s.domains.c.plan_sha256).where(s.domains.c.name == domain.name)
                         .with_for_update()).scalar_one()
    return str(found)


def _check_binding(conn: Connection, domain: Domain, now: datetime, takeover: tuple[str, str] | None) -> None:
    """Bind a new domain to its project; refuse a publish from another project unless it is a takeover."""
    d = s.domains.c
    bound = conn.execute(select(d.dbt_project).where(d.name == domain.name)).scalar_one()
    held_by = conn.execute(select(d.name).where(d.dbt_project == domain.project, d.name != domain.name)
                           .with_for_update()).scalar_one_or_none()
    published = bound is None and conn.execute(
        select(s.publications.c.domain).where(s.publications.c.domain == domain.name).limit(1)).first() is not None
    problem = binding.conflict(domain.name, domain.project, bound, held_by, published=published)
    if problem is None:
        if bound is None:
            conn.execute(update(s.domains).where(d.name == domain.name).values(dbt_project=domain.project,
                                                                               bound_at=now))
        return
    if takeover is None:
        raise RuleViolation(problem.message(), where=domain.origin, hint=problem.hint())
    reason, who = takeover
    rebind(conn, domain.name, bound, domain.project, reason=reason, actor=who, how="takeover", now=now)


def rebind(conn: Connection, domain: str, from_project: str | None, to_project: str, *, reason: str, actor: str,
            how: str, now: datetime) -> None:
    """Move ``domain``'s binding to ``to_project`` (unbinding the domain that held it) and log it."""
    d = s.domains.c
    held_by = conn.execute(select(d.name).where(d.dbt_project == to_project, d.name != domain)).scalar_one_or_none()
    if held_by is not None:
        conn.execute(update(s.domains).where(d.name == held_by).values(dbt_project=None, bound_at=None))
        reason = f"{reason} (dbt project '{to_project}' was bound to domain {held_by}, now unbound)"
    conn.execute(update(s.domains).where(d.name == domain).values(dbt_project=to_project, bound_at=now))
    conn.execute(insert(s.domain_transfers).values(domain=domain, from_project=from_project, to_project=to_project,
                                                   reason=" ".join(reason.split())[:2000], actor=actor, how=how,
                                                   transferred_at=now))


def insert_rows(conn: Connection, table: Any, rows: list[dict[str, Any]]) -> None:
    """Bulk insert (executemany; PostgreSQL batches it into multi-row INSERTs)."""
    if rows:
        conn.execute(insert(table), rows)


def _domain_row(domain: Domain, label: str | None, now: datetime) -> dict[str, Any]:
    return {"name": domain.name, "owner": domain.owner, "slack": domain.slack, "description": domain.description,
            "project": domain.project, "dbt_version": domain.dbt_version, "handoff_version": domain.handoff_version,
            "plan_sha256": domain.plan_sha256, "manifest_sha256": domain.manifest_sha256, "label": label,
            "published_at": now, "task_count": domain.task_count,
            "mute": json.dumps(sorted(domain.mute)) if domain.mute else None}


def _publication(domain: Domain, label: str | None, now: datetime, *, changed: bool) -> dict[str, Any]:
    return {"domain": domain.name, "published_at": now, "plan_sha256": domain.plan_sha256,
            "manifest_sha256": domain.manifest_sha256, "handoff_version": domain.handoff_version,
            "label": label, "task_count": domain.task_count, "changed": changed}


def domain_rows(domain: Domain) -> dict[str, list[dict[str, Any]]]:
    """The rows of every per-domain table for one domain (pure)."""
    rows: dict[str, list[dict[str, Any]]] = {t.name: [] for t in s.DOMAIN_TABLES}
    name = domain.name
    for p in domain.pipelines:
        rows["pipelines"].append({"dag_id": p.dag_id, "domain": name, "name": p.name, "schedule": p.schedule,
                                  "start_date": p.start_date, "description": p.description,
                                  "timezone": p.timezone})
        for t in p.tasks:
            rows["tasks"].append({"dag_id": t.dag_id, "task_id": t.task_id, "domain": name, "kind": t.kind,
                                  "model": t.model, "unique_id": t.unique_id, "relation": t.relation,
                                  "access": t.access, "owner": t.owner, "slack": t.slack,
                                  "available_by": t.available_by, "available_within_s": t.available_within_s,
                                  "columns": t.columns_json})
            for upstream in t.upstream:
                rows["task_edges"].append({"dag_id": t.dag_id, "upstream_task_id": upstream,
                                           "downstream_task_id": t.task_id, "domain": name})
                rows["lineage"].append({"src_ns": t.dag_id, "src_id": upstream, "dst_ns": t.dag_id,
                                        "dst_id": t.task_id, "kind": "task", "domain": name})
            if t.is_sensor:
                rows["cross_edges"].append({"dag_id": t.dag_id, "sensor_task_id": t.task_id, "domain": name,
                                            "upstream_domain": t.upstream_domain, "upstream_model": t.upstream_model,
                                            "sources": json.dumps(list(t.sources)), "timeout_s": t.timeout_s,
                                            "poke_interval_s": t.poke_interval_s, "mode": t.mode,
                                            "reads": t.reads_json,
                                            "refs": json.dumps(list(t.refs)) if t.refs else None,
                                            "accept": json.dumps([list(a) for a in t.accept])})
                rows["lineage"].append({"src_ns": f"@{t.upstream_domain}", "src_id": t.upstream_model,
                                        "dst_ns": t.dag_id, "dst_id": t.task_id, "kind": "sensor", "domain": name})
            for key in t.model_keys():
                rows["lineage"].append({"src_ns": t.dag_id, "src_id": t.task_id, "dst_ns": f"@{name}",
                                        "dst_id": key, "kind": "export", "domain": name})
    return rows


def plan_files(paths: Iterable[str | Path]) -> list[Path]:
    """The plan files to publish: each file named, and every *.plan.json of each folder named; a
    folder without any, or nothing named, is a one-line HandoffError."""
    files: list[Path] = []
    for p in map(Path, paths):
        if p.is_dir():
            found = sorted(p.glob("*.plan.json"))
            if not found:
                raise HandoffError("no *.plan.json in this folder", where=str(p),
                                   hint="write plans with `handoff compile -o DIR/`")
            files.extend(found)
        else:
            files.append(p)
    if not files:
        raise HandoffError("no plan given", hint="name plan files or folders of *.plan.json")
    return files
