"""Which model runs are due when (pure: no database, no Airflow).

A model with an SLA (``sla.Sla``: ``available_by`` or ``available_within``) promises, for each
scheduled run of its pipeline, that its data is complete by the run's deadline
(``sla.deadline``, the one function every part of handoff uses). ``due_between`` lists the runs
whose deadline falls in a window — what the SLA watch checks when a deadline passes;
``next_deadline`` says when the watch must wake next. Runs are the pipeline's ticks
(``ticks.ticks_between``, exactly Airflow's ``CronTriggerTimetable``) from its start date on;
manual runs off the schedule carry no SLA.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from .redact import get_logger
from .sla import Sla, deadline
from .ticks import local_aware, schedule_of, ticks_between, zone

log = get_logger(__name__)

# An available_by deadline falls on the run's own (local) day: at most a day after the tick.
_MAX_BY_LAG = timedelta(days=1, hours=2)


@dataclass(frozen=True)
class SlaModel:
    """One published model task (a dbt model run by one Airflow task), its pipeline's schedule,
    timezone and start date, and its SLA: what the SLA watch checks and the SLO history
    (``handoff sla``) judges. ``sla`` is empty (falsy) only for a model the history reports for
    its recorded completions alone; the watch only gets models with an SLA."""

    domain: str
    dag_id: str
    task_id: str
    model: str | None  # the dbt model's name (a version's task id may differ: orders_v2 -> orders)
    schedule: str
    timezone: str
    start_date: str  # YYYY-MM-DD: the pipeline's first day (ticks before it are no runs)
    sla: Sla
    watched_from: datetime | None = None  # the domain's first publication: a run before it without a
    # recorded success is neither a miss nor judged (handoff was not there to record it)

    @classmethod
    def of_row(cls, row: Mapping[str, Any]) -> SlaModel:
        """One row of ``Registry.sla_models()`` / ``Registry.history_models()``."""
        return cls(domain=row["domain"], dag_id=row["dag_id"], task_id=row["task_id"], model=row["model"],
                   schedule=row["schedule"], timezone=row.get("timezone") or "UTC", start_date=row["start_date"],
                   sla=Sla(row.get("available_by"), row.get("available_within_s")),
                   watched_from=row.get("first_published"))

    @property
    def name(self) -> str:
        """``domain.task_id``: the Airflow task, as messages and the watch's report name it."""
        return f"{self.domain}.{self.task_id}"

    @property
    def model_name(self) -> str:
        """``domain.model``: the dbt model, as the SLO history names it."""
        return f"{self.domain}.{self.model or self.task_id}"

    @property
    def start(self) -> datetime:
        """The pipeline's start: midnight of its start date in its timezone (as the DAG factory sets it)."""
        day = date.fromisoformat(self.start_date)
        return local_aware(datetime(day.year, day.month, day.day), zone(self.timezone))

    def promise(self) -> str | None:
        """The promise as people read it: ``available_by 06:30 Europe/Berlin``, ``available_within 45m``;
        None without an SLA."""
        if not self.sla:
            return None
        text = self.sla.describe()
        return f"{text} {self.timezone}" if self.sla.available_by is not None else text

    def lag(self) -> timedelta:
        """The longest a deadline can follow its run's tick."""
        if self.sla.available_within_s is not None:
            return timedelta(seconds=self.sla.available_within_s)
        return _MAX_BY_LAG

    def deadline_of(self, logical_date: datetime) -> datetime:
        found = deadline(logical_date, self.sla, self.schedule, self.timezone)
        if found is None:
            raise ValueError(f"{self.name} has no SLA")
        return found


def models_of(rows: Iterable[Mapping[str, Any]]) -> list[SlaModel]:
    """Rows of ``Registry.sla_models()`` / ``history_models()`` / ``run_slas()`` as ``SlaModel``s.

    A published row is untrusted: one whose SLA cannot be used (``Sla.problem``, e.g. an
    ``available_within_s`` beyond 400 days written by an older handoff) is skipped with one
    logged warning naming it, so it never stops the others' watch, check or history."""
    found: list[SlaModel] = []
    for row in rows:
        model = usable(row)
        if model is not None:
            found.append(model)
    return found


def usable(row: Mapping[str, Any]) -> SlaModel | None:
    """One row as an ``SlaModel``, or None (logged, naming ``domain.task_id``) when its SLA is unusable."""
    problem = Sla(row.get("available_by"), row.get("available_within_s")).problem()
    if problem is None:
        return SlaModel.of_row(row)
    log.warning("handoff: skipping the SLA of %s.%s (dag %s): %s — re-publish its domain with a valid SLA",
                row.get("domain"), row.get("task_id"), row.get("dag_id"), problem)
    return None


@dataclass(frozen=True)
class Due:
    """One run of one model and its deadline."""

    model: SlaModel
    logical_date: datetime
    deadline: datetime


def due_between(models: Iterable[SlaModel], start: datetime, end: datetime) -> list[Due]:
    """Every scheduled run whose deadline is in (start, end], by deadline then model.

    Models sharing a pipeline and an SLA share the work: ticks and deadlines are computed once per
    (dag, schedule, timezone, SLA)."""
    groups: dict[tuple[str, str, str, str, Sla], list[SlaModel]] = {}
    for m in models:
        groups.setdefault((m.dag_id, m.schedule, m.timezone, m.start_date, m.sla), []).append(m)
    found: list[Due] = []
    for (_, schedule, tz, _, _), members in groups.items():
        first = members[0]
        try:
            cadence = schedule_of(schedule, tz)
            begin = max(start - first.lag(), first.start)
            for tick in ticks_between(cadence, begin, end + timedelta(microseconds=1)):
                when = first.deadline_of(tick)
                if start < when <= end:
                    found.extend(Due(m, tick, when) for m in members)
        except (OverflowError, ValueError) as exc:  # one bad published row costs only its own models
            log.warning("handoff: skipping the SLA of %s: %s", ", ".join(m.name for m in members), exc)
    found.sort(key=lambda d: (d.deadline, d.model.dag_id, d.model.task_id))
    return found


def next_deadline(models: Sequence[SlaModel], after: datetime,
                  horizon: timedelta = timedelta(days=2)) -> datetime | None:
    """The first deadline strictly after ``after`` (within ``horizon``), or None."""
    upcoming = due_between(models, after, after + horizon)
    return upcoming[0].deadline if upcoming else None
