"""The plan, typed: what `handoff compile` writes and every reader (publish, check, inspect, the
DAG factory) passes around, as small frozen dataclasses instead of ``dict[str, Any]``.

schemas/plan.schema.json stays the contract a plan file is checked against (full-match patterns,
one-line errors with the JSON path, its compiled fast path; ``handoff.plan.validate_plan``);
these classes are the same document for code. ``Plan.from_json`` takes a *validated* document
(it checks nothing), ``Plan.to_json`` gives back what compile writes. tests/test_document_drift.py
fails when a class and the schema disagree on a key, on which keys are required or on a type
(docs/decisions.md, D37).

A field whose JSON key is not a Python name carries it in ``metadata["json"]``
(``ColumnList.source`` is ``from``, ``Hooks.on_run_start`` is ``on-run-start``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, TypeAlias

TaskKind = Literal["dbt_model", "dbt_seed", "dbt_snapshot"]
Access = Literal["public", "protected", "private"]
SensorMode = Literal["deferrable", "poke", "reschedule"]
Execution = Literal["batched", "per_task"]
ColumnsFrom = Literal["catalog", "contract", "sql"]
AcceptedCode = Literal["HO306"]
MutedKind = Literal["blocked", "resumed", "sla_miss"]


@dataclass(frozen=True, slots=True)
class PlanDomain:
    """The domain that owns the plan (``handoff_domain`` of the dbt project)."""

    name: str
    owner: str
    slack: str  # "#channel"
    description: str
    mute: tuple[MutedKind, ...] = ()  # message kinds the domain's channel does not receive (written when any)

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> PlanDomain:
        return cls(d["name"], d["owner"], d["slack"], d["description"], tuple(d.get("mute", ())))

    def to_json(self) -> dict[str, Any]:
        found: dict[str, Any] = {"name": self.name, "owner": self.owner, "slack": self.slack,
                                 "description": self.description}
        if self.mute:
            found["mute"] = list(self.mute)
        return found


@dataclass(frozen=True, slots=True)
class PlanDbt:
    """The dbt project the plan was compiled from."""

    project_name: str
    dbt_version: str
    manifest_sha256: str  # "" when unknown

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> PlanDbt:
        return cls(d["project_name"], d["dbt_version"], d["manifest_sha256"])

    def to_json(self) -> dict[str, Any]:
        return {"project_name": self.project_name, "dbt_version": self.dbt_version,
                "manifest_sha256": self.manifest_sha256}


@dataclass(frozen=True, slots=True)
class Column:
    name: str
    type: str | None  # the data type as dbt or the warehouse names it; None when unknown


@dataclass(frozen=True, slots=True)
class ColumnList:
    """A public model's columns and where the list came from (docs/impact.md)."""

    source: ColumnsFrom = field(metadata={"json": "from"})
    columns: tuple[Column, ...] = field(metadata={"json": "list"})

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> ColumnList:
        return cls(d["from"], tuple(Column(c["name"], c["type"]) for c in d["list"]))

    def to_json(self) -> dict[str, Any]:
        return {"from": self.source, "list": [{"name": c.name, "type": c.type} for c in self.columns]}


@dataclass(frozen=True, slots=True)
class ReadColumns:
    """What one downstream task reads of a sensor's upstream model: ``columns``, or with ``all``
    every column except ``columns``."""

    all: bool
    columns: tuple[str, ...]

    @classmethod
    def from_json(cls, d: Mapping[str, Any] | None) -> ReadColumns | None:
        return None if d is None else cls(d["all"], tuple(d["columns"]))

    def to_json(self) -> dict[str, Any]:
        return {"all": self.all, "columns": list(self.columns)}


@dataclass(frozen=True, slots=True)
class Acceptance:
    """A warning of `handoff check` the reading domain acknowledged (``handoff_upstream.accept``)."""

    code: AcceptedCode
    reason: str


@dataclass(frozen=True, slots=True)
class DbtTask:
    """One Airflow task building one dbt model, seed or snapshot (selected by ``unique_id``)."""

    task_id: str
    kind: TaskKind
    unique_id: str
    name: str
    tests: tuple[str, ...]  # unique_ids of the tests the task runs after building its node
    relation: str | None
    access: Access
    owner: str
    slack: str  # "" when none
    available_by: str | None  # HH:MM in the pipeline's timezone
    available_within_s: int | None  # seconds after the run's scheduled time
    microbatch: bool
    retries: int
    retry_delay_s: int
    timeout_s: int | None
    pool: str | None
    upstream: tuple[str, ...]  # task ids of the same pipeline
    columns: ColumnList | None = None
    version: str | None = None  # the dbt model version it builds (None: not versioned)
    latest_version: str | None = None  # the model's latest version, when it builds a version

    @property
    def is_sensor(self) -> bool:
        return False

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> DbtTask:
        columns = d.get("columns")
        return cls(
            task_id=d["task_id"], kind=d["kind"], unique_id=d["unique_id"], name=d["name"], tests=tuple(d["tests"]),
            relation=d["relation"], access=d["access"], owner=d["owner"], slack=d["slack"],
            available_by=d["available_by"], available_within_s=d["available_within_s"], microbatch=d["microbatch"],
            retries=d["retries"], retry_delay_s=d["retry_delay_s"], timeout_s=d["timeout_s"], pool=d["pool"],
            upstream=tuple(d["upstream"]), columns=None if columns is None else ColumnList.from_json(columns),
            version=d.get("version"), latest_version=d.get("latest_version"))

    def to_json(self) -> dict[str, Any]:
        found: dict[str, Any] = {
            "task_id": self.task_id, "kind": self.kind, "unique_id": self.unique_id, "name": self.name,
            "version": self.version, "latest_version": self.latest_version, "tests": list(self.tests),
            "relation": self.relation, "access": self.access, "owner": self.owner, "slack": self.slack,
            "available_by": self.available_by, "available_within_s": self.available_within_s,
            "microbatch": self.microbatch, "retries": self.retries, "retry_delay_s": self.retry_delay_s,
            "timeout_s": self.timeout_s, "pool": self.pool, "upstream": list(self.upstream),
        }
        if self.columns is not None:
            found["columns"] = self.columns.to_json()
        return found


@dataclass(frozen=True, slots=True)
class SensorTask:
    """One Airflow sensor waiting on a model of another domain (or another pipeline of this one)."""

    task_id: str
    kind: Literal["sensor"]
    upstream_domain: str
    upstream_model: str  # a model key of upstream_domain (handoff.plan.model_keys)
    sources: tuple[str, ...]  # the dbt sources it stands for
    timeout_s: int
    poke_interval_s: int
    mode: SensorMode
    accept: tuple[Acceptance, ...]
    upstream: tuple[str, ...]
    refs: tuple[str, ...] | None = None  # dbt Mesh cross-project refs it stands for (absent for sources)
    # per downstream task id, the upstream model's columns it reads; None: unknown (parsed-only manifest)
    reads: Mapping[str, ReadColumns | None] | None = None

    @property
    def is_sensor(self) -> bool:
        return True

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> SensorTask:
        refs, reads = d.get("refs"), d.get("reads")
        return cls(
            task_id=d["task_id"], kind="sensor", upstream_domain=d["upstream_domain"],
            upstream_model=d["upstream_model"], sources=tuple(d["sources"]), timeout_s=d["timeout_s"],
            poke_interval_s=d["poke_interval_s"], mode=d["mode"],
            accept=tuple(Acceptance(a["code"], a["reason"]) for a in d["accept"]), upstream=tuple(d["upstream"]),
            refs=None if refs is None else tuple(refs),
            reads=None if reads is None else {k: ReadColumns.from_json(v) for k, v in reads.items()})

    def to_json(self) -> dict[str, Any]:
        found: dict[str, Any] = {
            "task_id": self.task_id, "kind": "sensor", "upstream_domain": self.upstream_domain,
            "upstream_model": self.upstream_model, "sources": list(self.sources), "timeout_s": self.timeout_s,
            "poke_interval_s": self.poke_interval_s, "mode": self.mode,
            "accept": [{"code": a.code, "reason": a.reason} for a in self.accept], "upstream": list(self.upstream),
        }
        if self.refs is not None:
            found["refs"] = list(self.refs)
        if self.reads is not None:
            found["reads"] = {k: None if v is None else v.to_json() for k, v in self.reads.items()}
        return found


PlanTask: TypeAlias = DbtTask | SensorTask


def task_from_json(d: Mapping[str, Any]) -> PlanTask:
    return SensorTask.from_json(d) if d["kind"] == "sensor" else DbtTask.from_json(d)


@dataclass(frozen=True, slots=True)
class PlanPipeline:
    """One Airflow DAG of the domain: ``dag_id`` is always ``<domain>__<pipeline>``."""

    name: str
    dag_id: str
    schedule: str  # a cron expression or an Airflow preset
    start_date: str  # YYYY-MM-DD
    description: str
    tasks: tuple[PlanTask, ...]  # sorted by task_id
    timezone: str  # the IANA timezone the schedule and available_by are read in
    max_active_runs: int = 1
    execution: Execution = "per_task"

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> PlanPipeline:
        return cls(name=d["name"], dag_id=d["dag_id"], schedule=d["schedule"], start_date=d["start_date"],
                   description=d["description"], tasks=tuple(task_from_json(t) for t in d["tasks"]),
                   timezone=d["timezone"], max_active_runs=d.get("max_active_runs", 1),
                   execution=d.get("execution", "per_task"))

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "dag_id": self.dag_id, "schedule": self.schedule, "start_date": self.start_date,
                "description": self.description, "max_active_runs": self.max_active_runs,
                "execution": self.execution, "timezone": self.timezone, "tasks": [t.to_json() for t in self.tasks]}

    def dbt_tasks(self) -> list[DbtTask]:
        return [t for t in self.tasks if isinstance(t, DbtTask)]

    def sensors(self) -> list[SensorTask]:
        return [t for t in self.tasks if isinstance(t, SensorTask)]


@dataclass(frozen=True, slots=True)
class Hooks:
    """The dbt project hooks (unique_ids, in the order dbt runs them), run once per DAG run."""

    on_run_start: tuple[str, ...] = field(default=(), metadata={"json": "on-run-start"})
    on_run_end: tuple[str, ...] = field(default=(), metadata={"json": "on-run-end"})

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> Hooks:
        return cls(tuple(d.get("on-run-start", ())), tuple(d.get("on-run-end", ())))

    def to_json(self) -> dict[str, Any]:
        return {"on-run-start": list(self.on_run_start), "on-run-end": list(self.on_run_end)}


@dataclass(frozen=True, slots=True)
class Plan:
    """One domain's plan (schemas/plan.schema.json)."""

    plan_version: Literal[2]  # handoff.plan.PLAN_VERSION: readers refuse every other version
    handoff_version: str
    domain: PlanDomain
    dbt: PlanDbt
    pipelines: tuple[PlanPipeline, ...]
    notes: tuple[str, ...]
    hooks: Hooks | None = None  # absent in plans compiled before hooks were recorded

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> Plan:
        """The typed form of a plan document that passed ``handoff.plan.validate_plan``."""
        hooks = d.get("hooks")
        return cls(plan_version=d["plan_version"], handoff_version=d["handoff_version"],
                   domain=PlanDomain.from_json(d["domain"]), dbt=PlanDbt.from_json(d["dbt"]),
                   pipelines=tuple(PlanPipeline.from_json(p) for p in d["pipelines"]), notes=tuple(d["notes"]),
                   hooks=None if hooks is None else Hooks.from_json(hooks))

    def to_json(self) -> dict[str, Any]:
        found: dict[str, Any] = {
            "plan_version": self.plan_version, "handoff_version": self.handoff_version,
            "domain": self.domain.to_json(), "dbt": self.dbt.to_json(),
            "pipelines": [p.to_json() for p in self.pipelines], "notes": list(self.notes),
        }
        if self.hooks is not None:
            found["hooks"] = self.hooks.to_json()
        return found

    def pipeline(self, name: str) -> PlanPipeline | None:
        return next((p for p in self.pipelines if p.name == name), None)
