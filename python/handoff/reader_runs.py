"""Which downstream runs read an upstream run's data, and whether it was the data that stands now.

When a domain re-runs a past date (a backfill, a cleared task, a rerun), the runs of other
domains that already read that date's output read the *old* data; handoff reports them and
re-runs nothing (other teams' pipelines are theirs to re-run): `handoff who-depends-on
DOMAIN.MODEL --at DATE` and `handoff explain DOMAIN.MODEL --at DATE` (docs/recovery.md, "Re-runs
of past dates").

For the model's run at a date (its schedule's latest tick at or before it), with every recorded
completion of that run (all runs ids and tries of that logical date, oldest first, the last
success standing: handoff.recovery), each sensor waiting on the model in another DAG, and each of
that DAG's runs aligned on the upstream run (docs/alignment.md), one verdict:

* ``read the current data``: its sensor was satisfied with the standing completion (or after it);
* ``read older data``: satisfied with an earlier completion, or before the standing one was
  recorded — the run built its models from data the re-run replaced;
* ``no record``: no resolution of its sensor is recorded (not run yet, or still waiting).

Reads the registry only (no Airflow API); pure apart from the registry reads.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from .alignment import downstream_logical_dates, upstream_logical_date
from .recovery import completion_tries, current_completion
from .registry import Registry

CURRENT = "read the current data"
OLDER = "read older data"
NO_RECORD = "no record"


def reader_runs(registry: Registry, domain: str, model: str, at: datetime) -> dict[str, Any]:
    """The runs of other DAGs that read ``domain.model``'s run at ``at`` (see the module doc).

    Shape: {"model", "dag_id", "task_id", "run_logical_date", "completions": [{id, run_id,
    try_number, state, completed_at, current}], "current": id | None, "readers": [{domain, dag_id,
    sensor_task_id, models, run_logical_date, run_id, verdict, read_completion, resolved_at}],
    "older": count}. Raises HandoffError when the model is not published."""
    explained = registry.explain(domain, model)
    pipeline, task = explained["pipeline"], explained["model"]
    run_date = upstream_logical_date(at, pipeline["schedule"], pipeline.get("timezone"))
    tries = completion_tries(registry, pipeline["dag_id"], task["task_id"], run_date)
    current = current_completion(tries)
    models_by_sensor: dict[tuple[str, str], list[str]] = {}
    for consumer in registry.consumers(domain, task["task_id"], transitive=False):
        models_by_sensor.setdefault((consumer.dag_id, consumer.sensor_task_id), []).append(consumer.task_id)
    readers = []
    for wait in registry.sensors_waiting_on_task(pipeline["dag_id"], task["task_id"]):
        if wait.dag_id == pipeline["dag_id"]:
            continue
        for date in downstream_logical_dates(run_date, wait.upstream_schedule, wait.downstream_schedule,
                                             wait.upstream_timezone, wait.downstream_timezone):
            readers.append(_reader(registry, wait, date, tries, current,
                                   sorted(models_by_sensor.get((wait.dag_id, wait.sensor_task_id), []))))
    return {
        "model": f"{domain}.{task['name']}", "dag_id": pipeline["dag_id"], "task_id": task["task_id"],
        "run_logical_date": run_date.isoformat(),
        "completions": [{"id": c.id, "run_id": c.run_id, "try_number": c.try_number, "state": c.state,
                         "completed_at": c.completed_at.isoformat(),
                         "current": current is not None and c.id == current.id} for c in tries],
        "current": current.id if current is not None else None,
        "readers": readers,
        "older": sum(1 for r in readers if r["verdict"] == OLDER),
    }


def _reader(registry: Registry, wait: Any, date: datetime, tries: Sequence[Any], current: Any,
            models: list[str]) -> dict[str, Any]:
    resolutions = [r for r in registry.resolutions(dag_id=wait.dag_id, run_logical_date=date, limit=1000)
                   if r.sensor_task_id == wait.sensor_task_id and r.status == "done"]
    entry: dict[str, Any] = {"domain": wait.downstream_domain, "dag_id": wait.dag_id,
                             "sensor_task_id": wait.sensor_task_id, "models": models,
                             "run_logical_date": date.isoformat(), "run_id": None, "verdict": NO_RECORD,
                             "read_completion": None, "resolved_at": None}
    if not resolutions:
        return entry
    latest = max(resolutions, key=lambda r: (r.try_number, r.resolved_at))
    entry.update(run_id=latest.run_id, resolved_at=latest.resolved_at.isoformat(),
                 verdict=read_verdict(latest.completion_id, latest.resolved_at, tries, current))
    used = next((c for c in tries if c.id == latest.completion_id), None)
    if used is not None:
        entry["read_completion"] = {"id": used.id, "run_id": used.run_id, "try_number": used.try_number}
    return entry


def read_verdict(completion_id: int | None, resolved_at: datetime, tries: Sequence[Any], current: Any) -> str:
    """CURRENT or OLDER for a sensor satisfied with ``completion_id`` at ``resolved_at``, given the
    upstream run's recorded tries (oldest first) and the standing completion (or None)."""
    if current is None:
        return OLDER if tries else CURRENT  # nothing stands now: whatever was read has been undone
    if completion_id is not None:
        return CURRENT if completion_id == current.id else OLDER
    return CURRENT if resolved_at >= current.completed_at else OLDER


def reader_runs_text(found: Mapping[str, Any]) -> str:
    """reader_runs() for people."""
    lines = [f"\nRuns of other DAGs that read {found['model']} of {found['run_logical_date']} "
             f"({found['dag_id']}.{found['task_id']}):"]
    if not found["completions"]:
        lines.append("  no completion recorded for that run")
    for c in found["completions"]:
        mark = " (standing)" if c["current"] else ""
        lines.append(f"  completion: run {c['run_id']} try {c['try_number']}: {c['state']} at "
                     f"{c['completed_at']}{mark}")
    if not found["readers"]:
        lines.append("  no run of another DAG waits on it")
    for r in found["readers"]:
        read = r["read_completion"]
        how = f" (run {read['run_id']} try {read['try_number']})" if read else ""
        lines.append(f"  {r['dag_id']} @ {r['run_logical_date']} via {r['sensor_task_id']}: {r['verdict']}{how}"
                     + (f" — models {', '.join(r['models'])}" if r["models"] and r["verdict"] == OLDER else ""))
    if found["older"]:
        lines.append(f"  {found['older']} run(s) read data a later run of this date replaced: their owners may "
                     "re-run them (handoff re-runs nothing of another domain)")
    return "\n".join(lines) + "\n"
