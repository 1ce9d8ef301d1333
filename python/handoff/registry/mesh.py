"""The mesh: every published domain's pipelines and tasks, in memory (pure, no database).

A ``Mesh`` is built from plans (``domain_from_plan``) or loaded from the registry
(``Registry.mesh()``); ``handoff check`` substitutes the plans under review for their domains
(``Mesh.with_domains``) and runs ``checks.check_mesh`` over the result.

A model is found in its domain by its *model key* (``handoff.plan.model_keys``): an unversioned
model by its dbt name; a version by ``<name>_v<version>``, and the latest version also by the bare
name, as an unpinned dbt ``ref()`` resolves. A sensor's ``upstream_model`` is such a key. Only data
published before versions were recorded can make a name ambiguous (republish the domain).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from ..errors import HandoffError
from ..plan import dag_id_for, dumps, model_keys
from ..plan_model import Plan, PlanTask, SensorTask

SENSOR = "sensor"


@dataclass(frozen=True)
class Task:
    """One Airflow task: a dbt model/seed/snapshot, or a sensor waiting on another DAG's model."""

    domain: str
    dag_id: str
    task_id: str
    kind: str  # dbt_model | dbt_seed | dbt_snapshot | sensor
    upstream: tuple[str, ...] = ()  # task ids in the same DAG
    model: str | None = None  # the dbt name (None for sensors)
    unique_id: str | None = None
    relation: str | None = None
    access: str | None = None  # public | protected | private (None for sensors)
    owner: str | None = None
    slack: str | None = None
    available_by: str | None = None  # HH:MM in the pipeline's timezone (handoff.sla)
    available_within_s: int | None = None  # seconds after the run's scheduled time (handoff.sla)
    upstream_domain: str | None = None  # sensors only
    upstream_model: str | None = None  # sensors only: a model key of upstream_domain
    sources: tuple[str, ...] = ()  # sensors only: the dbt sources it stands for
    timeout_s: int | None = None  # sensors only
    poke_interval_s: int | None = None  # sensors only
    mode: str | None = None  # sensors only
    columns_json: str | None = None  # models only: the plan's ``columns`` ({"from", "list"}) as JSON, if known
    reads_json: str | None = None  # sensors only: the plan's ``reads`` (task id -> columns read) as JSON
    refs: tuple[str, ...] = ()  # sensors only: the other dbt project's nodes it stands for (cross-project refs)
    # How other domains name it: from the plan (version, latest_version) or as the registry recorded
    # the keys at publish time (keys). Not compared: a published task equals its plan's task when
    # their model_keys() agree (the registry stores the keys, not the versions).
    version: str | None = field(default=None, compare=False)  # dbt model version (None: not versioned)
    latest_version: str | None = field(default=None, compare=False)
    keys: tuple[str, ...] | None = field(default=None, compare=False)  # None: derive from the versions
    accept: tuple[tuple[str, str], ...] = ()  # sensors only: (rule code, reason) acknowledged by the reader

    @property
    def is_sensor(self) -> bool:
        return self.kind == SENSOR

    @property
    def ref(self) -> str:
        """``domain.dag_id.task_id``: how messages name a task."""
        return f"{self.domain}.{self.dag_id}.{self.task_id}"

    def model_keys(self) -> tuple[str, ...]:
        """The names other domains may use for this model (empty for sensors)."""
        if self.is_sensor or self.model is None:
            return ()
        if self.keys is not None:
            return self.keys
        return model_keys(self.model, self.version, self.latest_version)


@dataclass(frozen=True)
class Pipeline:
    """One Airflow DAG of a domain."""

    domain: str
    name: str
    dag_id: str
    schedule: str
    start_date: str
    description: str = ""
    tasks: tuple[Task, ...] = ()
    timezone: str = "UTC"  # IANA name the schedule and available_by are read in


@dataclass(frozen=True)
class Domain:
    """One domain as published (or as a plan under review)."""

    name: str
    owner: str
    slack: str
    description: str = ""
    project: str = ""
    dbt_version: str = ""
    handoff_version: str = ""
    plan_sha256: str = ""
    manifest_sha256: str = ""
    origin: str = "registry"  # where it came from: "registry" or a plan file's path
    published_at: datetime | None = None  # registry only
    label: str | None = None  # registry only: `handoff publish --label`
    pipelines: tuple[Pipeline, ...] = ()
    bound_project: str | None = None  # registry only: the dbt project the domain is bound to (registry.binding)
    mute: tuple[str, ...] = ()  # message kinds the domain's channel does not receive (handoff_domain.mute)

    def tasks(self) -> Iterator[Task]:
        for pipeline in self.pipelines:
            yield from pipeline.tasks

    @property
    def task_count(self) -> int:
        return sum(len(p.tasks) for p in self.pipelines)


@dataclass(frozen=True)
class Resolution:
    """What a (domain, model key) pair points at: a task, or why not."""

    task: Task | None
    problem: str | None = None  # "unknown_domain" | "unknown_model" | "ambiguous"
    candidates: tuple[Task, ...] = ()  # the versions an ambiguous name matches


@dataclass
class Mesh:
    """Domains by name, with indexes built once."""

    domains: Mapping[str, Domain]
    _pipelines: dict[str, Pipeline] = field(init=False, repr=False)
    _tasks: dict[tuple[str, str], Task] = field(init=False, repr=False)
    _keys: dict[tuple[str, str], list[Task]] = field(init=False, repr=False)
    _pipeline_of: dict[str, Pipeline] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self._pipelines = {}
        self._tasks = {}
        self._keys = {}
        for domain in self.domains.values():
            for pipeline in domain.pipelines:
                self._pipelines.setdefault(pipeline.dag_id, pipeline)
                for task in pipeline.tasks:
                    self._tasks[(task.dag_id, task.task_id)] = task
                    for key in task.model_keys():
                        self._keys.setdefault((domain.name, key), []).append(task)

    def with_domains(self, replacements: Iterable[Domain]) -> Mesh:
        """This mesh with each given domain replacing (or joining) its namesake."""
        merged = dict(self.domains)
        for domain in replacements:
            merged[domain.name] = domain
        return Mesh(merged)

    def pipeline(self, dag_id: str) -> Pipeline | None:
        return self._pipelines.get(dag_id)

    def task(self, dag_id: str, task_id: str) -> Task | None:
        return self._tasks.get((dag_id, task_id))

    def tasks(self) -> Iterator[Task]:
        for domain in self.domains.values():
            yield from domain.tasks()

    def resolve(self, domain: str, model: str) -> Resolution:
        """The task a sensor waiting on ``domain``.``model`` waits for."""
        if domain not in self.domains:
            return Resolution(None, "unknown_domain")
        found = self._keys.get((domain, model), [])
        if not found:
            return Resolution(None, "unknown_model")
        exact = [t for t in found if t.task_id == model]
        if len(exact) == 1:
            return Resolution(exact[0])
        if len(found) > 1:
            return Resolution(None, "ambiguous", tuple(sorted(found, key=lambda t: t.task_id)))
        return Resolution(found[0])

    def model_keys(self, domain: str) -> list[str]:
        """Every model key of a domain (for 'did you mean' hints)."""
        return sorted(key for (d, key) in self._keys if d == domain)


def plan_sha256(plan: Plan) -> str:
    """The sha256 of a plan's canonical text (what `handoff publish` records)."""
    return hashlib.sha256(dumps(plan).encode("utf-8")).hexdigest()


def domain_from_plan(plan: Plan, origin: str = "plan") -> Domain:
    """A plan as a Domain (validated or not: a plan never publishes another domain's DAG)."""
    name = plan.domain.name
    pipelines = []
    for p in plan.pipelines:
        if p.dag_id != dag_id_for(name, p.name):  # also when the caller skipped validation
            raise HandoffError(f"pipeline {p.name}: dag_id '{p.dag_id}' is not {dag_id_for(name, p.name)}: "
                               "a domain only publishes its own DAGs", where=origin,
                               hint="re-compile the plan with `handoff compile`")
        tasks = tuple(_task_from_plan(name, p.dag_id, t) for t in p.tasks)
        pipelines.append(Pipeline(domain=name, name=p.name, dag_id=p.dag_id, schedule=p.schedule,
                                  start_date=p.start_date, description=p.description, tasks=tasks,
                                  timezone=p.timezone))
    return Domain(
        name=name,
        owner=plan.domain.owner,
        slack=plan.domain.slack,
        description=plan.domain.description,
        mute=plan.domain.mute,
        project=plan.dbt.project_name,
        dbt_version=plan.dbt.dbt_version,
        handoff_version=plan.handoff_version,
        plan_sha256=plan_sha256(plan),
        manifest_sha256=plan.dbt.manifest_sha256,
        origin=origin,
        pipelines=tuple(pipelines),
    )


def _task_from_plan(domain: str, dag_id: str, t: PlanTask) -> Task:
    if isinstance(t, SensorTask):
        reads = None if t.reads is None else {k: None if v is None else v.to_json() for k, v in t.reads.items()}
        return Task(domain=domain, dag_id=dag_id, task_id=t.task_id, kind=SENSOR,
                    upstream=t.upstream, upstream_domain=t.upstream_domain,
                    upstream_model=t.upstream_model, sources=t.sources,
                    timeout_s=t.timeout_s, poke_interval_s=t.poke_interval_s, mode=t.mode,
                    reads_json=_json_or_none(reads), refs=t.refs or (),
                    accept=tuple(sorted((a.code, a.reason) for a in t.accept)))
    return Task(domain=domain, dag_id=dag_id, task_id=t.task_id, kind=t.kind, upstream=t.upstream,
                model=t.name, unique_id=t.unique_id, relation=t.relation, access=t.access,
                owner=t.owner, slack=t.slack, available_by=t.available_by,
                available_within_s=t.available_within_s,
                columns_json=_json_or_none(None if t.columns is None else t.columns.to_json()),
                version=t.version, latest_version=t.latest_version)


def _json_or_none(value: Any) -> str | None:
    return None if value is None else json.dumps(value, sort_keys=True, separators=(",", ":"))

