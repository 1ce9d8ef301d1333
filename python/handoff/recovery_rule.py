"""The recovery rule: may handoff satisfy this downstream sensor? Pure (no I/O, no Airflow import).

handoff satisfies a sensor that is still **waiting**, or that **failed by its own timeout**; it
never overrides a person. Who set a state comes from Airflow's event log (``GET /api/v2/eventLogs``),
as measured on Airflow 3.3.2 (docs/recovery.md, "Who set it"):

* a task's own process reports each state it ends in: an event named after the state ("failed",
  "success", "deferred"...) carrying that try's ``try_number``; the sensor's timeout is one;
* every REST API call that changes something — the UI uses the same API — writes an event named
  after the endpoint, with the user as ``owner`` and the request body in ``extra``:
  ``patch_task_instance`` {"new_state": "skipped"}, ``patch_dag_run`` {"state": "failed"},
  ``bulk_dag_runs`` {"actions": [{"entities": [{"dag_run_id", "state"}]}]}.

``decide`` turns (the sensor's task instance, its DAG run, those events, the sensor's timeout) into a
``Verdict``: satisfy, already satisfied, or leave alone with a reason code and one sentence.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

# The sensor has not finished: satisfying it is what recovery is for. None: not started yet.
WAITING = frozenset({None, "none", "scheduled", "queued", "running", "up_for_reschedule", "up_for_retry",
                     "deferred", "restarting"})
# Events written by the REST API when a person changes a state (Airflow 3.3.2 endpoint names).
SENSOR_STATE_EVENTS = frozenset({"patch_task_instance"})
RUN_STATE_EVENTS = frozenset({"patch_dag_run", "bulk_dag_runs"})
# A try that lasted at least its timeout, minus this, ended by the timeout (seconds).
TIMEOUT_TOLERANCE_S = 1.0

# Reason codes (stored in sensor_refusals.reason; docs/recovery.md has the table).
REASONS = {
    "skipped": "the sensor is skipped (by a person, or by a run a person failed): never touched",
    "failed_by_person": "a person set the sensor to failed",
    "run_failed_by_person": "a person marked the run failed",
    "failed_not_timeout": "the sensor failed by an error before its timeout",
    "failed_unknown": "the sensor failed but Airflow's event log has no failure of that try by the sensor itself",
    "event_log_unreadable": "Airflow's event log could not be read, so who failed it is unknown",
    "other_state": "a state recovery does not change (upstream_failed, removed...)",
    "marked_below_by_person": "a task below the sensor is failed: nothing below an unsatisfied sensor can have "
                              "run, so a person marked it; satisfying the sensor would make Airflow clear that mark",
    "tasks_unreadable": "the run's tasks could not be read, so whether a person marked one below the sensor is unknown",
}


@dataclass(frozen=True)
class Verdict:
    """What recovery does with one sensor: ``action`` "satisfy", "already_satisfied" or "leave"."""

    action: str
    reason: str  # a REASONS code when left; "waiting" / "timed_out" / "success" otherwise
    detail: str  # one sentence for logs and `handoff explain --at`
    actor: str | None = None  # the person whose decision is respected
    acted_at: datetime | None = None


@dataclass(frozen=True)
class PersonAction:
    """A state change a person made through the REST API or the UI, read from the event log."""

    event_id: int
    when: datetime
    who: str
    scope: str  # "sensor" | "run"
    state: str

    def sentence(self, sensor_state: str | None = None) -> str:
        at = when_text(self.when)
        if self.scope == "run":
            if sensor_state == "skipped":
                return f"skipped when {self.who} marked the run {self.state} at {at}"
            return f"{self.who} marked the run {self.state} at {at}"
        return f"{self.state} by {self.who} at {at}"


def needs_events(sensor_state: str | None, run_state: str | None) -> bool:
    """Whether ``decide`` needs the event log for this sensor (most waiting sensors do not)."""
    return sensor_state in ("failed", "skipped") or (sensor_state in WAITING and run_state == "failed")


def decide(sensor: Mapping[str, Any], run: Mapping[str, Any], events: Sequence[Mapping[str, Any]], *,
           timeout_s: float | None, below: Mapping[str, str | None] | None = None) -> Verdict:
    """The verdict for one sensor task instance (its API form) in one DAG run (its API form).

    ``events``: the event log rows of this run's sensor and of this DAG's run-state changes (any
    order; others are ignored). ``timeout_s``: the sensor's timeout (None: unknown). ``below``: the
    states of every task downstream of the sensor in this run, when known: a ``failed`` one there
    was marked by a person (nothing below an unsatisfied sensor runs), and Airflow's state write
    that satisfies the sensor would clear it — so the sensor is left alone.
    """
    verdict = _decide(sensor, run, events, timeout_s=timeout_s)
    if verdict.action != "satisfy" or not below:
        return verdict
    marked = sorted(t for t, state in below.items() if state == "failed")
    if not marked:
        return verdict
    return _leave("marked_below_by_person",
                  f"{', '.join(marked[:3])}{' …' if len(marked) > 3 else ''} below the sensor "
                  f"{'is' if len(marked) == 1 else 'are'} failed — a person's mark (nothing below an unsatisfied "
                  "sensor runs); satisfying the sensor would make Airflow clear it, so it is left for a person", None)


def _decide(sensor: Mapping[str, Any], run: Mapping[str, Any], events: Sequence[Mapping[str, Any]], *,
            timeout_s: float | None) -> Verdict:
    state = sensor.get("state")
    run_id, task_id = str(sensor.get("dag_run_id") or run.get("dag_run_id")), str(sensor.get("task_id"))
    if state == "success":
        return Verdict("already_satisfied", "success", "the sensor is already success")
    actions = person_actions(events, run_id=run_id, task_id=task_id)
    run_failed = _latest(a for a in actions if a.scope == "run" and a.state == "failed")
    if state in WAITING:
        if run.get("state") == "failed" and run_failed is not None:
            return _leave("run_failed_by_person", run_failed.sentence(), run_failed)
        return Verdict("satisfy", "waiting", f"the sensor was {state or 'not started'}")
    if state == "skipped":
        person = _latest(a for a in actions if (a.scope == "sensor" and a.state == "skipped") or a is run_failed)
        detail = person.sentence("skipped") if person else "skipped, by no person's action in Airflow's event log"
        return _leave("skipped", detail + "; handoff never satisfies a skipped sensor", person)
    if state == "failed":
        return _failed(sensor, events, actions, try_number=int(sensor.get("try_number") or 0), timeout_s=timeout_s)
    return _leave("other_state", f"the sensor is {state}: not a state recovery changes", None)


def _failed(sensor: Mapping[str, Any], events: Sequence[Mapping[str, Any]], actions: list[PersonAction], *,
            try_number: int, timeout_s: float | None) -> Verdict:
    def failing(a: PersonAction) -> bool:
        return (a.scope == "run" and a.state == "failed") or (a.scope == "sensor" and a.state in ("failed", "skipped"))

    task_id = sensor.get("task_id")
    own = [e for e in events if e.get("event") == "failed" and e.get("task_id") == task_id
           and e.get("try_number") == try_number and e.get("run_id") == sensor.get("dag_run_id")]
    failure = max(own, key=lambda e: int(e["event_log_id"])) if own else None
    if failure is None:
        person = _latest(a for a in actions if failing(a))
        if person is not None:
            code = "run_failed_by_person" if person.scope == "run" else "failed_by_person"
            return _leave(code, person.sentence(), person)
        return _leave("failed_unknown", f"failed, but Airflow's event log holds no failure of try {try_number} "
                      "by the sensor itself (set through a path Airflow does not log?): left for a person", None)
    later = _latest(a for a in actions if a.event_id > int(failure["event_log_id"]) and failing(a))
    if later is not None:
        code = "run_failed_by_person" if later.scope == "run" else "failed_by_person"
        return _leave(code, later.sentence() + " after the sensor failed", later)
    when = parse_time(failure.get("when"))
    lasted = _duration(sensor)
    at = when_text(when) if when else "an unknown time"
    if timeout_s is not None and lasted is not None and lasted >= timeout_s - TIMEOUT_TOLERANCE_S:
        return Verdict("satisfy", "timed_out", f"the sensor timed out at {at} after {lasted:.0f} s")
    limit = f"its {timeout_s:.0f} s timeout" if timeout_s is not None else "a timeout handoff knows of"
    took = f" after {lasted:.0f} s" if lasted is not None else ""
    return _leave("failed_not_timeout", f"the sensor failed at {at}{took}, before {limit}: an error, not a "
                  "timeout (see its log); clear it to run it again", None)


def person_actions(events: Iterable[Mapping[str, Any]], *, run_id: str, task_id: str) -> list[PersonAction]:
    """The state changes people made to this sensor or its run, oldest first."""
    found = []
    for e in events:
        name, extra = e.get("event"), _extra(e.get("extra"))
        when, who, event_id = parse_time(e.get("when")), str(e.get("owner") or "someone"), int(e["event_log_id"])
        if when is None:
            continue
        if name in SENSOR_STATE_EVENTS and e.get("task_id") == task_id and e.get("run_id") == run_id:
            if isinstance(extra.get("new_state"), str):
                found.append(PersonAction(event_id, when, who, "sensor", extra["new_state"]))
        elif name == "patch_dag_run" and e.get("run_id") == run_id and isinstance(extra.get("state"), str):
            found.append(PersonAction(event_id, when, who, "run", extra["state"]))
        elif name == "bulk_dag_runs":
            for entity in _bulk_entities(extra):
                if entity.get("dag_run_id") == run_id and isinstance(entity.get("state"), str):
                    found.append(PersonAction(event_id, when, who, "run", entity["state"]))
    return sorted(found, key=lambda a: a.event_id)


def _bulk_entities(extra: Mapping[str, Any]) -> Iterable[Mapping[str, Any]]:
    actions = extra.get("actions")
    for action in actions if isinstance(actions, list) else []:
        entities = action.get("entities") if isinstance(action, dict) else None
        for entity in entities if isinstance(entities, list) else []:
            if isinstance(entity, dict):
                yield entity


def _extra(raw: Any) -> dict[str, Any]:
    if isinstance(raw, dict):
        return raw
    try:
        found = json.loads(raw) if isinstance(raw, str) else None
    except ValueError:
        return {}
    return found if isinstance(found, dict) else {}


def _latest(actions: Iterable[PersonAction]) -> PersonAction | None:
    return max(actions, key=lambda a: a.event_id, default=None)


def _leave(reason: str, detail: str, person: PersonAction | None) -> Verdict:
    return Verdict("leave", reason, detail, person.who if person else None, person.when if person else None)


def _duration(sensor: Mapping[str, Any]) -> float | None:
    start, end = parse_time(sensor.get("start_date")), parse_time(sensor.get("end_date"))
    return (end - start).total_seconds() if start and end else None


def parse_time(value: Any) -> datetime | None:
    """An API timestamp ("2026-11-30T04:07:42.39Z") as an aware datetime; None when empty or malformed."""
    if not value:
        return None
    try:
        moment = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)


def when_text(moment: datetime) -> str:
    """``2026-03-02 05:12 UTC``."""
    return f"{moment.astimezone(timezone.utc):%Y-%m-%d %H:%M} UTC"
