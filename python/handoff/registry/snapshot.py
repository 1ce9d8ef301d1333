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
from typing import Any, Final, Literal, get_args

import jsonschema

from .. import __version__, schemas
from ..errors import HandoffError
from ..files import dumps_strict, folder_output, read_json, write_atomically
from ..plan_model import Access, TaskKind
from .mesh import Mesh, Task

SNAPSHOT_VERSION: Final = 1
FILE_NAME = "registry_snapshot.json"
_TASK_KINDS = frozenset(get_args(TaskKind))
_ACCESS = frozenset(get_args(Access))


def build_snapshot(mesh: Mesh, *, generated_at: datetime | None = None) -> Snapshot:
    """One entry per (domain, model key) of every published model, seed and snapshot task.

    A name that several versions share is listed only under each version's task id (a sensor
    must name the version, rule HO302).
    """
    moment = (generated_at or datetime.now(timezone.utc)).astimezone(timezone.utc)
    domains = []
    models = []
    for domain in sorted(mesh.domains.values(), key=lambda d: d.name):
        domains.append(SnapshotDomain(
            name=domain.name, owner=domain.owner, slack=domain.slack, plan_sha256=domain.plan_sha256,
            published_at=_iso(domain.published_at), label=domain.label,
            pipelines=tuple(SnapshotPipeline(p.dag_id, p.schedule, p.timezone) for p in domain.pipelines)))
        keys: dict[str, list[SnapshotModel]] = {}
        for pipeline in domain.pipelines:
            for task in pipeline.tasks:
                for key in task.model_keys():  # none for sensors: every entry is a dbt task
                    keys.setdefault(key, []).append(SnapshotModel(
                        domain=domain.name, model=key, dag_id=task.dag_id, task_id=task.task_id,
                        schedule=pipeline.schedule, timezone=pipeline.timezone, kind=_kind(task),
                        access=_access(task), available_by=task.available_by,
                        available_within_s=task.available_within_s))
        for key in sorted(keys):
            entries = keys[key]
            exact = [e for e in entries if e.task_id == key]
            if len(entries) == 1 or exact:
                models.append((exact or entries)[0])
    return Snapshot(snapshot_version=SNAPSHOT_VERSION, handoff_version=__version__, generated_at=_utc_text(moment),
                    domains=tuple(domains), models=tuple(models))


def _kind(task: Task) -> TaskKind:
    if task.kind not in _TASK_KINDS:  # sensors have no model key: only stored rows edited by hand get here
        raise HandoffError(f"published task {task.ref} has kind {task.kind!r}, not a dbt model's, seed's or "
                           "snapshot's", hint="re-publish the domain with `handoff publish`")
    return task.kind  # type: ignore[return-value]  # narrowed by the membership test above


def _access(task: Task) -> Access:
    if task.access not in _ACCESS:
        raise HandoffError(f"published task {task.ref} has access {task.access!r}, not public, protected or private",
                           hint="re-publish the domain with `handoff publish`")
    return task.access  # type: ignore[return-value]  # narrowed by the membership test above


def validate_snapshot(document: object, where: str) -> Snapshot:
    """Check a snapshot document (untrusted JSON) against schemas/registry_snapshot.schema.json; typed.
    Raises a one-line HandoffError naming ``where`` and the JSON path."""
    error = jsonschema.exceptions.best_match(schemas.validator("registry_snapshot").iter_errors(document))
    if error is not None:
        location = "/".join(str(p) for p in error.absolute_path) or "(root)"
        raise HandoffError(f"registry snapshot does not match schemas/registry_snapshot.schema.json at "
                           f"{location}: {error.message}", where=where,
                           hint="re-export it with `handoff snapshot --output DIR/`")
    return Snapshot.from_json(document)  # type: ignore[arg-type]  # the schema made it an object


def snapshot_text(snapshot: Snapshot, where: str) -> str:
    """The file's text (sorted keys, one-space indent, trailing newline), checked against the schema
    first: a name the schema refuses is a HandoffError naming ``where``, never a written file."""
    document = snapshot.to_json()
    validate_snapshot(document, where)
    return dumps_strict(document, indent=1, sort_keys=True, ensure_ascii=False) + "\n"


def write_snapshot(snapshot: Snapshot, output: str | Path) -> Path:
    """Validate and write the snapshot atomically; ``output`` may be a folder (then DIR/registry_snapshot.json)."""
    target = Path(output)
    text = snapshot_text(snapshot, str(target))
    if target.is_dir() or str(output).endswith(("/", "\\")):
        target = folder_output(output, FILE_NAME)
    write_atomically(target, text)
    return target


def read_snapshot(path: str | Path) -> Snapshot:
    """Read and validate a snapshot file."""
    document = read_json(path, what="registry snapshot", hint="re-export it with `handoff snapshot --output DIR/`")
    return validate_snapshot(document, str(path))


def _iso(moment: datetime | None) -> str | None:
    return None if moment is None else _utc_text(moment)


def _utc_text(moment: datetime) -> str:
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

    def to_json(self) -> dict[str, Any]:
        return {"dag_id": self.dag_id, "schedule": self.schedule, "timezone": self.timezone}


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

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "owner": self.owner, "slack": self.slack, "plan_sha256": self.plan_sha256,
                "published_at": self.published_at, "label": self.label,
                "pipelines": [p.to_json() for p in self.pipelines]}


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

    def to_json(self) -> dict[str, Any]:
        return {"domain": self.domain, "model": self.model, "dag_id": self.dag_id, "task_id": self.task_id,
                "schedule": self.schedule, "timezone": self.timezone, "kind": self.kind, "access": self.access,
                "available_by": self.available_by, "available_within_s": self.available_within_s}


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

    def to_json(self) -> dict[str, Any]:
        """The document ``handoff snapshot`` writes (``snapshot_text``)."""
        return {"snapshot_version": self.snapshot_version, "handoff_version": self.handoff_version,
                "generated_at": self.generated_at, "domains": [d.to_json() for d in self.domains],
                "models": [m.to_json() for m in self.models]}

    def lookup(self, domain: str, model: str) -> SnapshotModel | None:
        """The entry of ``domain.model``, or None."""
        return next((m for m in self.models if m.domain == domain and m.model == model), None)
