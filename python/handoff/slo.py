"""SLO history: how often a promise was kept, from the completions the registry recorded (pure:
no database, no Airflow; ``handoff sla``, docs/notifications.md "SLO history").

A model run is judged once it is *due* (its deadline has passed) or has completed. Per model:

* ``on_time`` — runs whose first successful try ended at or before the run's deadline
  (``sla.deadline``: the one deadline function); ``on_time_rate`` = on_time / runs due. A run
  due without any recorded success counts as not on time (``missing``).
* ``median_s`` / ``p95_s`` — completion relative to the run: seconds from the run's scheduled
  time (its logical date) to the end of its first successful try, over the completed runs.
  The median is the middle value (the mean of the two middle values for an even count); p95 is
  the nearest-rank percentile (the value at rank ceil(0.95 n) of the sorted values), so it is
  always a completion that happened.
* ``worst_miss_s`` — the latest completion past its deadline, in seconds after the deadline.
* ``suggested`` — a promise the history supports: the p95 completion rounded up to the next
  quarter hour, as ``available_by HH:MM`` (the pipeline's timezone) when the pipeline runs at most
  once a day and that time falls on the run's local day after the run starts, else as
  ``available_within``. It is valid for the schedule (rule HO208).

Per cross-domain edge (a consumer DAG reading an upstream model): for each scheduled run of the
consumer, the upstream run it reads (``alignment.upstream_logical_date``) and whether that run
had completed when the consumer run started (``ready_at_start``), else how long the consumer
waited (``wait_p95_s``, nearest rank; a run whose upstream never completed counts as ``missing``).
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta
from typing import Any

from .alignment import upstream_logical_date
from .sla import daily_time_of, deadline, format_duration, sla_form_problem
from .sla_runs import SlaModel
from .ticks import schedule_of, ticks_between, utc, wall_clock

QUARTER_HOUR = 900


def percentile(values: Sequence[float], p: float) -> float:
    """The nearest-rank ``p``-th percentile (0 < p <= 100) of non-empty ``values``."""
    if not values:
        raise ValueError("percentile of no values")
    ordered = sorted(values)
    rank = max(1, math.ceil(p / 100 * len(ordered)))
    return ordered[rank - 1]


@dataclass(frozen=True)
class ModelSlo:
    """One model's record over the window (seconds are relative to each run's scheduled time)."""

    domain: str
    model: str
    dag_id: str
    task_id: str
    promise: str | None
    runs: int  # scheduled runs in the window that are due (or completed)
    completed: int
    missing: int  # due runs with no recorded success
    on_time: int | None  # None: no SLA
    on_time_rate: float | None
    median_s: float | None
    p95_s: float | None
    worst_miss_s: float | None  # latest completion past its deadline (seconds after it); None: none late
    suggested: str | None

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class EdgeSlo:
    """One consumer DAG reading one upstream model: was the data there when its runs started?"""

    upstream: str  # domain.model
    consumer_domain: str
    consumer_dag_id: str
    runs: int  # the consumer's scheduled runs in the window whose upstream run is due or done
    ready_at_start: int
    missing: int  # upstream run never completed
    ready_rate: float | None
    wait_p95_s: float | None  # over the consumer runs that waited on a completed upstream run

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class DomainSlo:
    domain: str
    models: int
    with_sla: int
    runs: int  # due runs of models with an SLA
    on_time_rate: float | None
    worst: str | None  # the model with the lowest on-time rate, "name (rate)"

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class SloReport:
    since: datetime
    until: datetime
    models: list[ModelSlo] = field(default_factory=list)
    domains: list[DomainSlo] = field(default_factory=list)
    edges: list[EdgeSlo] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {"since": self.since.isoformat(), "until": self.until.isoformat(),
                "models": [m.as_dict() for m in self.models], "domains": [d.as_dict() for d in self.domains],
                "edges": [e.as_dict() for e in self.edges]}


def runs_of(model: SlaModel, since: datetime, until: datetime) -> list[datetime]:
    """The model's scheduled runs (ticks) in [max(since, model.start), until]."""
    cadence = schedule_of(model.schedule, model.timezone)
    begin = max(utc(since), utc(model.start))
    return ticks_between(cadence, begin, utc(until) + timedelta(microseconds=1))


def model_slo(model: SlaModel, done: Mapping[datetime, datetime], since: datetime, until: datetime) -> ModelSlo:
    """Judge ``model`` over its runs in [since, until] (``until``: now). ``done``: logical date ->
    end of that run's first successful try."""
    now = utc(until)
    offsets: list[float] = []
    runs = on_time = missing = 0
    worst: float | None = None
    scheduled = runs_of(model, since, now)
    for run in scheduled:
        due = deadline(run, model.sla, model.schedule, model.timezone) if model.sla else None
        ended = done.get(run)
        if ended is None:
            if due is not None and due <= now and (model.watched_from is None or run >= model.watched_from):
                runs += 1
                missing += 1
            continue
        runs += 1
        offsets.append((ended - run).total_seconds())
        if due is not None:
            if ended <= due:
                on_time += 1
            else:
                late = (ended - due).total_seconds()
                worst = late if worst is None else max(worst, late)
    has_sla = bool(model.sla)
    return ModelSlo(
        domain=model.domain, model=model.model or model.task_id, dag_id=model.dag_id, task_id=model.task_id,
        promise=model.promise(), runs=runs, completed=len(offsets), missing=missing,
        on_time=on_time if has_sla else None,
        on_time_rate=(on_time / runs if runs else None) if has_sla else None,
        median_s=float(statistics.median(offsets)) if offsets else None,
        p95_s=percentile(offsets, 95) if offsets else None, worst_miss_s=worst,
        suggested=suggest(model, percentile(offsets, 95), scheduled[-1]) if offsets else None)


def suggest(model: SlaModel, p95_s: float, sample_run: datetime) -> str:
    """A promise that ``p95_s`` supports (module docstring): ``available_by HH:MM`` or
    ``available_within 1h15m``-style (as ``sla.format_duration`` writes it)."""
    seconds = max(QUARTER_HOUR, math.ceil(p95_s / QUARTER_HOUR) * QUARTER_HOUR)
    within = f"available_within {format_duration(seconds)}"
    runs_at = daily_time_of(model.schedule)
    if runs_at is None:
        return within
    cadence = schedule_of(model.schedule, model.timezone)
    start, end = wall_clock(sample_run, cadence), wall_clock(sample_run + timedelta(seconds=seconds), cadence)
    if end.date() != start.date():
        return within
    by = f"{end:%H:%M}"
    if sla_form_problem(model.schedule, by, None) is not None:
        return within
    return f"available_by {by}"


def edge_slo(upstream: SlaModel, upstream_done: Mapping[datetime, datetime], consumer_domain: str,
             consumer_dag_id: str, consumer_schedule: str, consumer_timezone: str, since: datetime,
             until: datetime) -> EdgeSlo:
    """How often the consumer DAG's runs found ``upstream``'s run complete when they started."""
    now = utc(until)
    cadence = schedule_of(consumer_schedule, consumer_timezone)
    upstream_cadence = schedule_of(upstream.schedule, upstream.timezone)
    runs = ready = missing = 0
    waits: list[float] = []
    for tick in ticks_between(cadence, max(utc(since), utc(upstream.start)), now + timedelta(microseconds=1)):
        read = upstream_logical_date(tick, upstream_cadence)
        if read < utc(upstream.start):
            continue
        ended = upstream_done.get(read)
        if ended is None:
            if upstream.watched_from is not None and read < upstream.watched_from:
                continue
            runs += 1  # the consumer run started and its upstream never completed
            missing += 1
            continue
        runs += 1
        if ended <= tick:
            ready += 1
        else:
            waits.append((ended - tick).total_seconds())
    return EdgeSlo(upstream=upstream.model_name, consumer_domain=consumer_domain, consumer_dag_id=consumer_dag_id,
                   runs=runs, ready_at_start=ready, missing=missing, ready_rate=ready / runs if runs else None,
                   wait_p95_s=percentile(waits, 95) if waits else None)


def domain_slos(models: Iterable[ModelSlo]) -> list[DomainSlo]:
    """Per domain: how many models, how many with an SLA, their pooled on-time rate, the weakest."""
    by: dict[str, list[ModelSlo]] = {}
    for m in models:
        by.setdefault(m.domain, []).append(m)
    found = []
    for domain in sorted(by):
        rows = by[domain]
        promised = [m for m in rows if m.on_time is not None and m.runs]
        runs = sum(m.runs for m in promised)
        kept = sum(m.on_time or 0 for m in promised)
        weakest = min(promised, key=lambda m: (m.on_time_rate or 0.0, m.model), default=None)
        found.append(DomainSlo(
            domain=domain, models=len(rows), with_sla=sum(1 for m in rows if m.promise is not None), runs=runs,
            on_time_rate=kept / runs if runs else None,
            worst=f"{weakest.model} ({_rate(weakest.on_time_rate)})" if weakest is not None else None))
    return found


# -- text -------------------------------------------------------------------------------------------

def _rate(value: float | None) -> str:
    return "-" if value is None else f"{100 * value:.1f}%"


def _span(seconds: float | None) -> str:
    """1h05m, 45m, 30s; '-' for None."""
    if seconds is None:
        return "-"
    whole = round(seconds)
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours}h{minutes:02d}m"
    if minutes:
        return f"{minutes}m{secs:02d}s" if secs else f"{minutes}m"
    return f"{secs}s"


def render(report: SloReport) -> str:
    """The text ``handoff sla`` prints."""
    lines = [f"SLO history {report.since:%Y-%m-%d %H:%M} .. {report.until:%Y-%m-%d %H:%M} UTC "
             "(completion: time from the run's scheduled time to its first success)"]
    if not report.models:
        lines.append("no model with an SLA or a recorded completion in this window")
        return "\n".join(lines)
    header = ("model", "promise", "runs", "on time", "median", "p95", "worst miss", "missing", "suggested")
    rows = [header] + [(m.domain + "." + m.model, m.promise or "none", str(m.runs),
                        _rate(m.on_time_rate) if m.on_time is not None else "-", _span(m.median_s),
                        _span(m.p95_s), _span(m.worst_miss_s) if m.worst_miss_s is not None else "-",
                        str(m.missing), m.suggested or "-") for m in report.models]
    widths = [max(len(r[i]) for r in rows) for i in range(len(header))]
    lines += ["  ".join(cell.ljust(widths[i]) for i, cell in enumerate(r)).rstrip() for r in rows]
    lines.append("")
    lines.append("per domain:")
    for d in report.domains:
        lines.append(f"  {d.domain}: {d.models} model(s), {d.with_sla} with an SLA, {d.runs} run(s) due, "
                     f"on time {_rate(d.on_time_rate)}" + (f"; weakest {d.worst}" if d.worst else ""))
    if report.edges:
        lines.append("")
        lines.append("per cross-domain edge (was the upstream's data there when the consumer's run started?):")
        for e in report.edges:
            lines.append(f"  {e.upstream} -> {e.consumer_dag_id}: {e.runs} run(s), ready at start "
                         f"{_rate(e.ready_rate)}, p95 wait {_span(e.wait_p95_s)}"
                         + (f", {e.missing} never arrived" if e.missing else ""))
    return "\n".join(lines)
