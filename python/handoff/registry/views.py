"""The registry's read views, typed: what ``explain``, ``pipeline_waits``, ``domain_pipelines`` and
``model_view`` return, and what the CLI (``--format json``), the text renderer, ``explain --at``
and the web pages read. They are JSON-ready dicts on purpose — a feature adds a key (``run``,
``readers``, ``all_consumers``) and every renderer shows keys it does not know — so they are
``TypedDict``s: mypy checks every key a reader uses, and nothing is copied at run time.
"""

from __future__ import annotations

from typing import Any, TypedDict, final


class DomainView(TypedDict):
    name: str
    owner: str
    slack: str
    description: str
    project: str
    published_at: str | None  # ISO 8601, UTC
    label: str | None
    plan_sha256: str


class DomainName(TypedDict):
    name: str


class PipelineView(TypedDict):
    """One published pipeline (an Airflow DAG)."""

    name: str
    dag_id: str
    schedule: str
    start_date: str
    timezone: str


class PipelineSummary(TypedDict):
    name: str
    dag_id: str
    schedule: str


class TaskView(TypedDict):
    """One published model task (``model`` of ``explain``)."""

    name: str | None
    task_id: str
    kind: str
    unique_id: str | None
    relation: str | None
    access: str | None
    owner: str | None
    slack: str | None
    available_by: str | None
    available_within_s: int | None


class UpstreamView(TypedDict):
    """The task a sensor waits on, as published."""

    dag_id: str
    task_id: str
    schedule: str
    timezone: str
    owner: str | None
    slack: str | None
    access: str | None
    available_by: str | None
    available_within_s: int | None


class WaitView(TypedDict):
    """One sensor upstream of a model (or of a DAG), resolved to the task it waits on."""

    sensor_task_id: str
    direct: bool  # upstream of the model itself, not only of its ancestors
    upstream_domain: str
    upstream_model: str
    sources: list[str]
    refs: list[str]
    timeout_s: int | None
    poke_interval_s: int | None
    mode: str | None
    upstream: UpstreamView | None  # None: not published (``problem`` says why)
    problem: str | None
    alignment_warning: str | None
    accepted: dict[str, str]  # rule code -> the reader's reason


class _ExplainedExtras(TypedDict, total=False):
    """Keys features add to an explained model."""

    run: dict[str, Any]  # explain --at: the run's sensors and SLA verdicts (explain_run.run_state)
    readers: dict[str, Any]  # explain --at: which downstream runs read this run (reader_runs)
    all_consumers: list[dict[str, Any]]  # the model page's JSON: every consumer


class Explained(_ExplainedExtras):
    """One model explained (``registry.explain.explain``)."""

    domain: DomainView
    pipeline: PipelineView
    model: TaskView
    upstream_tasks: list[str]
    downstream_tasks: list[str]
    waits_on: list[WaitView]
    consumers: list[dict[str, Any]]  # ``Consumer.as_dict()`` of the direct consumers
    transitive_consumers: int


@final  # so that `"model" in view` tells an Explained from it
class PipelineWaits(TypedDict):
    """Every sensor of one DAG, in ``explain``'s ``waits_on`` shape (``overview.pipeline_waits``)."""

    domain: DomainName
    pipeline: PipelineView
    waits_on: list[WaitView]
