"""The registry snapshot: what Airflow needs from the registry, as a file next to the plans.

The DAG factory resolves each sensor's upstream (domain, model) to the upstream dag_id, task_id
and schedule from this file, so a DAG parse never queries the database. ``handoff snapshot``
writes it (atomically); schemas/registry_snapshot.schema.json defines it.

Importing this module does not import SQLAlchemy.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Literal

import jsonschema

from .. import __version__, schemas
from ..errors import HandoffError
from ..files import dumps_strict, folder_output, read_json, write_atomically
from ..plan_model import Access, TaskKind
from .mesh import Mesh

SNAPSHOT_VERSION = 1
FILE_NAME = "registry_snapshot.json"


def build_snapshot(mesh: Mesh, *, generated_at: datetime | None = None) -> dict[str, Any]:
    """One entry per (domain, model key) of every published model, seed and snapshot task.

    A name that several versions share is listed only under each version's task id (a sensor
    must name the version, rule HO302).
    """
    moment = (generated_at or datetime.now(timezone.utc)).astimezone(timezone.utc)
    domains = []
    models = []
    for domain in sorted(mesh.domains.values(), key=lambda d: d.name):
        domains.append({
            "name": domain.name, "owner": domain.owner, "slack": domain.slack, "plan_sha256": domain.plan_sha256,
            "published_at": _iso(domain.published_at), "label": domain.label,
            "pipelines": [{"dag_id": p.dag_id, "schedule": p.schedule, "timezone": p.timezone}
                          for p in domain.pipelines],
        })
        keys: dict[str, list[dict[str, Any]]] = {}
        for pipeline in domain.pipelines:
            for task in pipeline.tasks:
                for key in task.model_keys():
                    keys.setdefault(key, []).append({
                        "domain": domain.name, "model": key, "dag_id": task.dag_id, "task_id": task.task_id,
                        "schedule": pipeline.schedule, "timezone": pipeline.timezone, "kind": task.kind,
                        "access": task.access, "available_by": task.available_by,
                        "available_within_s": task.available_within_s})
        for key in sorted(keys):
            entries = keys[key]
            exact = [e for e in entries if e["task_id"] == key]
            if len(entries) == 1 or exact:
                models.append((exact or entries)[0])
    return {
        "snapshot_version": SNAPSHOT_VERSION,
        "handoff_version": __version__,
        "generated_at": _iso(moment),
        "domains": domains,
        "models": models,
    }


def validate_snapshot(document: Any, where: str) -> dict[str, Any]:
    """Check a snapshot document against schemas/registry_snapshot.schema.json."""
    error = jsonschema.exceptions.best_match(schemas.validator("registry_snapshot").iter_errors(document))
    if error is not None:
        location = "/".join(str(p) for p in error.absolute_path) or "(root)"
        raise HandoffError(f"registry snapshot does not match schemas/registry_snapshot.schema.json at "
                           f"{location}: {error.message}", where=where,
                           hint="re-export it with `handoff snapshot --output DIR/`")
    return document  # type: ignore[no-any-return]


def write_snapshot(document: Mapping[str, Any], output: str | Path) -> Path:
    """Validate and write the snapshot atomically; ``output`` may be a folder (then DIR/registry_snapshot.json)."""
    target = Path(output)
    validate_snapshot(document, str(target))
    if target.is_dir() or str(output).endswith(("/", "\\")):
        target = folder_output(output, FILE_NAME)
    write_atomically(target, dumps_strict(document, indent=1, sort_keys=True, ensure_ascii=False) + "\n")
    return target


def read_snapshot(path: str | Path) -> Snapshot:
    """Read and validate a snapshot file."""
    document = read_json(path, what="registry snapshot", hint="re-export it with `handoff snapshot --output DIR/`")
    return Snapshot.from_json(validate_snapshot(document, str(path)))


def _iso(moment: datetime | None) -> str | None:
    if moment is None:
        return None
    return moment.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


# --------------------------------------------------------------------------------------
# The snapshot, typed (tests/test_document_drift.py keeps these and the schema in step)
# --------------------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class SnapshotPipeline:
    dag_id: str
    schedule: str
    timezone: str = "UTC"  # absent in snapshots written before timezones

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> SnapshotPipeline:
        return cls(d["dag_id"], d["schedule"], d.get("timezone", "UTC"))


@dataclass(frozen=True, slots=True)
class SnapshotDomain:
    name: str
    owner: str
    slack: str
    plan_sha256: str
    published_at: str | None  # ISO 8601, UTC
    label: str | None  # `handoff publish --label`
    pipelines: tuple[SnapshotPipeline, ...]

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> SnapshotDomain:
        return cls(d["name"], d["owner"], d["slack"], d["plan_sha256"], d["published_at"], d["label"],
                   tuple(SnapshotPipeline.from_json(p) for p in d["pipelines"]))


@dataclass(frozen=True, slots=True)
class SnapshotModel:
    """Where a sensor finds ``domain.model``: the task that builds it and that task's schedule."""

    domain: str
    model: str  # the model key a sensor names (handoff.plan.model_keys)
    dag_id: str
    task_id: str
    schedule: str
    kind: TaskKind
    access: Access
    available_by: str | None
    timezone: str = "UTC"  # absent in snapshots written before timezones
    available_within_s: int | None = None

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> SnapshotModel:
        return cls(d["domain"], d["model"], d["dag_id"], d["task_id"], d["schedule"], d["kind"], d["access"],
                   d["available_by"], d.get("timezone", "UTC"), d.get("available_within_s"))


@dataclass(frozen=True, slots=True)
class Snapshot:
    """A registry snapshot (schemas/registry_snapshot.schema.json), as ``read_snapshot`` returns it."""

    snapshot_version: Literal[1]
    handoff_version: str
    generated_at: str  # ISO 8601, UTC
    domains: tuple[SnapshotDomain, ...]
    models: tuple[SnapshotModel, ...]

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> Snapshot:
        """The typed form of a document that passed ``validate_snapshot``."""
        return cls(d["snapshot_version"], d["handoff_version"], d["generated_at"],
                   tuple(SnapshotDomain.from_json(x) for x in d["domains"]),
                   tuple(SnapshotModel.from_json(m) for m in d["models"]))

    def lookup(self, domain: str, model: str) -> SnapshotModel | None:
        """The entry of ``domain.model``, or None."""
        return next((m for m in self.models if m.domain == domain and m.model == model), None)
