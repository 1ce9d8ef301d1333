"""Did one run of a model keep its SLA? (pure: no database, no Airflow; docs/notifications.md).

For a DAG run (its logical date, a tick of the pipeline's schedule) each model task with an SLA
gets a verdict — what ``handoff explain --at`` prints and the run-status page shows:

* ``met`` — the run's first successful try ended at or before the deadline (``sla.deadline``,
  the one deadline function; the rule ``slo.model_slo`` and the SLA watch judge by);
* ``missed`` — the SLA watch recorded a miss for the run (``sla_misses``: the verdict that was
  announced; its state at the deadline, and the late completion once there is one), or the first
  success ended after the deadline, or the deadline passed with no success recorded (both before
  the watch recorded it: ``recorded`` is False);
* ``pending`` — no success yet and the deadline is still ahead;
* ``not watched`` — the deadline passed with no success recorded, but the run is older than the
  domain's first publication: handoff was not there to record it (the watch and ``handoff sla``
  do not count it either);
* ``no run`` — the date is before the pipeline's start.

``late_s`` is the first success's end minus the deadline, in seconds (negative: early).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from .sla_runs import SlaModel, usable
from .ticks import utc

Verdict = Literal["met", "missed", "pending", "not watched", "no run"]


@dataclass(frozen=True)
class SlaVerdict:
    """One model task's SLA verdict for one run. Datetimes are UTC."""

    domain: str
    dag_id: str
    task_id: str
    model: str | None
    sla: str  # the promise as the YAML says it: "available_by 04:30 UTC", "available_within 45m"
    logical_date: datetime
    deadline: datetime | None  # None: no run (before the pipeline's start)
    verdict: Verdict
    finished_at: datetime | None  # the end of the run's first successful try
    late_s: float | None  # finished_at - deadline in seconds (negative: early); None: not finished
    recorded: bool  # a miss recorded by the SLA watch (sla_misses)
    detected_at: datetime | None  # when the watch recorded the miss
    state_at_deadline: str | None  # what the watch saw at the deadline ("late", "running", "no run", ...)
    why: str

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready: datetimes as ISO strings."""
        found: dict[str, Any] = {}
        for key in self.__dataclass_fields__:
            value = getattr(self, key)
            found[key] = value.isoformat() if isinstance(value, datetime) else value
        return found


def judge_run(rows: Iterable[Mapping[str, Any]], logical_date: datetime, now: datetime) -> list[SlaVerdict]:
    """The verdicts of the run at ``logical_date`` as of ``now``, one per row of
    ``Registry.run_slas`` (keys of ``sla_models`` plus ``completed_at`` and ``miss``), in row order;
    a row whose SLA cannot be used is left out with one logged line (``sla_runs.usable``)."""
    return [judge(r, logical_date, now) for r in rows if usable(r) is not None]


def judge(row: Mapping[str, Any], logical_date: datetime, now: datetime) -> SlaVerdict:
    """One row of ``Registry.run_slas``: see the module docstring."""
    run, at = utc(logical_date), utc(now)
    model = SlaModel.of_row(row)
    miss = row.get("miss")
    finished: datetime | None = row.get("completed_at")
    if finished is None and miss is not None:
        finished = miss.completed_at
    base: dict[str, Any] = {"domain": model.domain, "dag_id": model.dag_id, "task_id": model.task_id,
                            "model": model.model, "sla": model.promise() or "none", "logical_date": run,
                            "finished_at": finished, "recorded": miss is not None,
                            "detected_at": miss.detected_at if miss is not None else None,
                            "state_at_deadline": miss.state_at_deadline if miss is not None else None}
    if run < model.start:
        return SlaVerdict(**base, deadline=None, verdict="no run", late_s=None,
                          why=f"the pipeline starts on {model.start_date}: there is no run at this date")
    due = model.deadline_of(run)  # ValueError without an SLA: run_slas returns models with one only
    if miss is not None:
        due = miss.deadline  # the deadline the watch judged (the same function; kept as announced)
    late = (finished - due).total_seconds() if finished is not None else None
    if miss is not None:
        why = f"the SLA watch recorded the miss at {_hm(miss.detected_at)} (at the deadline: {miss.state_at_deadline})"
        if finished is not None:
            why += f"; it finished {span(late or 0.0)} after the deadline"
        return SlaVerdict(**base, deadline=due, verdict="missed", late_s=late, why=why)
    if finished is not None and finished <= due:
        return SlaVerdict(**base, deadline=due, verdict="met", late_s=late,
                          why=f"finished {span(-(late or 0.0))} before the deadline" if late else
                          "finished at the deadline")
    if finished is not None:
        return SlaVerdict(**base, deadline=due, verdict="missed", late_s=late,
                          why=f"finished {span(late or 0.0)} after the deadline (the SLA watch has not recorded it)")
    if at < due:
        return SlaVerdict(**base, deadline=due, verdict="pending", late_s=None,
                          why=f"no success yet; due in {span((due - at).total_seconds())}")
    watched_from = model.watched_from
    if watched_from is not None and run < utc(watched_from):
        return SlaVerdict(**base, deadline=due, verdict="not watched", late_s=None,
                          why=f"no success recorded, but the run is older than the domain's first publication "
                              f"({_hm(watched_from)}): handoff was not there to record it")
    return SlaVerdict(**base, deadline=due, verdict="missed", late_s=None,
                      why="no success recorded by the deadline (the SLA watch has not recorded it yet)")


def _hm(moment: datetime) -> str:
    return f"{utc(moment):%Y-%m-%d %H:%M} UTC"


def span(seconds: float) -> str:
    """A duration for people, sign dropped: 3725 -> '1h02m', 90061 -> '1d01h01m', 45 -> '45s' (whole seconds)."""
    whole = round(abs(seconds))
    days, rest = divmod(whole, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    if days:
        return f"{days}d{hours:02d}h{minutes:02d}m"
    if hours:
        return f"{hours}h{minutes:02d}m"
    if minutes:
        return f"{minutes}m{secs:02d}s" if secs else f"{minutes}m"
    return f"{secs}s"
