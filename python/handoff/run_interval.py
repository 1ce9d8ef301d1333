"""What a dbt task tells dbt about its run: the run's data interval (pure; no Airflow, no dbt).

Every dbt invocation of a handoff task — one model per task, or a wave of a batched pipeline —
passes its DAG run's interval, so that a backfill or a re-run of a past date processes that
date's data, not today's (docs/plan.md, "What a dbt task passes to dbt"):

* dbt vars, always: ``handoff_logical_date``, ``handoff_data_interval_start``,
  ``handoff_data_interval_end`` (ISO 8601 UTC, e.g. ``2024-03-09T00:00:00+00:00``) and
  ``handoff_run_id``; a model reads them with ``var('handoff_data_interval_start')``;
* for a selection holding a microbatch model, ``--event-time-start``/``--event-time-end`` set
  to exactly the interval, so dbt builds the batches of that interval and no other.

The interval is ``handoff.alignment.data_interval``: [the schedule's previous tick, the run's
logical date) — for a run without a logical date, its ``run_after``. Ad-hoc vars from the run's
conf (``{"dbt_vars": {...}}``) are passed too; they may not reuse the names above.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from .alignment import data_interval, reference_date
from .errors import HandoffError

VAR_LOGICAL_DATE = "handoff_logical_date"
VAR_INTERVAL_START = "handoff_data_interval_start"
VAR_INTERVAL_END = "handoff_data_interval_end"
VAR_RUN_ID = "handoff_run_id"
RESERVED_VARS = (VAR_LOGICAL_DATE, VAR_INTERVAL_START, VAR_INTERVAL_END, VAR_RUN_ID)
MAX_CONF_VARS_BYTES = 64_000


@dataclass(frozen=True)
class RunInterval:
    """One DAG run as dbt sees it: its reference date (logical date, else run_after), its data
    interval [start, end) in UTC, and its run id."""

    logical_date: datetime
    start: datetime
    end: datetime
    run_id: str

    def dbt_vars(self) -> dict[str, str]:
        return {VAR_LOGICAL_DATE: self.logical_date.isoformat(), VAR_INTERVAL_START: self.start.isoformat(),
                VAR_INTERVAL_END: self.end.isoformat(), VAR_RUN_ID: self.run_id}

    def event_time_range(self) -> tuple[str, str]:
        """The values of dbt's ``--event-time-start``/``--event-time-end`` for exactly this interval
        (naive UTC: what dbt's CLI parses, and reads as UTC)."""
        return _naive_utc(self.start), _naive_utc(self.end)


def run_interval(*, logical_date: datetime | None, run_after: datetime | None, run_id: str, schedule: str,
                 timezone_name: str | None = None) -> RunInterval:
    """The RunInterval of a DAG run of a pipeline on ``schedule`` (read in ``timezone_name``).

    Raises HandoffError when the run has neither a logical date nor a run_after."""
    moment = logical_date if logical_date is not None else run_after
    if moment is None:
        raise HandoffError(f"run {run_id!r} has neither a logical date nor a run_after",
                           hint="trigger the run with a logical date")
    reference = reference_date(logical_date, moment)
    start, end = data_interval(reference, schedule, timezone_name)
    return RunInterval(reference, start, end, str(run_id))


def interval_of_run(dag_run: Any, schedule: str, timezone_name: str | None = None) -> RunInterval:
    """The RunInterval of an Airflow DAG run (anything with ``logical_date``, ``run_after`` and
    ``run_id``: the task context's ``dag_run``)."""
    return run_interval(logical_date=getattr(dag_run, "logical_date", None),
                        run_after=getattr(dag_run, "run_after", None),
                        run_id=str(getattr(dag_run, "run_id", "") or ""), schedule=schedule,
                        timezone_name=timezone_name)


def conf_vars(conf: Any) -> dict[str, Any]:
    """The ad-hoc ``dbt_vars`` of a run's conf, checked: an object, JSON-serialisable, at most
    MAX_CONF_VARS_BYTES, not redefining handoff's own vars. HandoffError otherwise."""
    if not isinstance(conf, Mapping) or conf.get("dbt_vars") is None:
        return {}
    found = conf["dbt_vars"]
    if not isinstance(found, Mapping):
        raise HandoffError("dag run conf 'dbt_vars' must be an object of dbt vars",
                           hint='trigger with conf {"dbt_vars": {"name": "value"}}')
    try:
        size = len(json.dumps(dict(found), sort_keys=True))
    except (TypeError, ValueError):
        raise HandoffError("dag run conf 'dbt_vars' is not JSON", hint="pass strings, numbers, lists and objects") \
            from None
    if size > MAX_CONF_VARS_BYTES:
        raise HandoffError(f"dag run conf 'dbt_vars' is {size} bytes (at most {MAX_CONF_VARS_BYTES})")
    clash = sorted(set(found) & set(RESERVED_VARS))
    if clash:
        raise HandoffError(f"dag run conf 'dbt_vars' sets {', '.join(clash)}, which handoff sets from the run",
                           hint="trigger a run of the logical date you want instead")
    return {str(k): v for k, v in found.items()}


def dbt_vars_for(interval: RunInterval, conf: Any) -> dict[str, Any]:
    """Every var a task passes to dbt: the run's interval, and the conf's ad-hoc ``dbt_vars``."""
    return {**conf_vars(conf), **interval.dbt_vars()}


def _naive_utc(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%S")
