"""The batch's state write, served inside Airflow's api-server by handoff's plugin (``/handoff/api/batch``).

Why it exists (docs/execution.md, "The state write"; decision D42): Airflow 3.3.2's public bulk
``PATCH …/taskInstances`` deserializes the whole DAG again for *each* task it sets and builds that
task's downstream sub-DAG to clear failed tasks, so settling the N models of a run costs the
api-server O(N²) — at 1,000 models the states reached Airflow a minute after dbt finished them.
This route settles a whole flush of a batch in **one transaction with one DAG read**:

- ``GET  /handoff/api/batch/dags/{dag_id}`` — 200 ``{"settle": true}`` when the caller may edit the
  DAG's task instances (Airflow's ``is_authorized_dag(PUT, TASK_INSTANCE)``), 401 / 403 otherwise.
  The batch asks once, before any dbt work; a 404 means the api-server has no handoff plugin.
- ``POST /handoff/api/batch/dags/{dag_id}/dagRuns/{run_id}/settle`` — body
  ``{"task_instances": [{"task_id", "state": "success"|"failed", "note", "start_date", "end_date"}]}``
  (at most ``MAX_TASKS``; dates ISO 8601 with a timezone, optional). Each task instance
  (map_index -1) is set **only if it has no state** (compare-and-set under a row lock, so a
  person's mark made at any moment wins), with its start/end dates (dbt's timing, kept within
  [the DAG run's start, now]) and note.
  Answers 200 ``{"results": {task_id: "ok" | "already <state>" | "not found"}}``; 400 for a bad
  body, 404 for an unknown DAG or run.

Unlike Airflow's PATCH it does **not** clear the failed / upstream_failed tasks downstream of what
it sets (that side effect resumes tasks after a *person's* "success"; for the batch it erased
people's marks, #20 review B1/B2). Like it, it fires Airflow's listener hooks
(``on_task_instance_success`` / ``_failed``) for what it set, and clears the task state store on
success when ``[state_store] clear_on_success`` asks. Airflow's scheduler then schedules the
dependants as after any state change.
"""

# no "from __future__ import annotations": FastAPI reads the routes' annotations, local names included
import logging
from datetime import datetime, timezone
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, HTTPException, Request
from pydantic import BaseModel, ConfigDict, Field, field_validator

log = logging.getLogger(__name__)

MAX_TASKS = 1000  # task instances per settle request
NOTE_MAX = 1000  # characters: Airflow's task_instance_note.content column
_ID_PATTERN = r"[A-Za-z0-9_.\-]{1,250}"  # Airflow's task id characters (KEY_REGEX) and length


class SettleItem(BaseModel):
    """One task instance to settle."""

    model_config = ConfigDict(extra="forbid")

    task_id: str = Field(pattern=f"^{_ID_PATTERN}$")
    state: Literal["success", "failed"]
    note: str | None = Field(default=None, max_length=NOTE_MAX)
    start_date: datetime | None = None
    end_date: datetime | None = None

    @field_validator("start_date", "end_date")
    @classmethod
    def _aware(cls, value: datetime | None) -> datetime | None:
        if value is not None and value.utcoffset() is None:
            raise ValueError("give a timezone (ISO 8601 with an offset or Z)")
        return value

    @field_validator("note")
    @classmethod
    def _printable(cls, value: str | None) -> str | None:
        if value is not None and any((ord(c) < 32 and c not in "\n\t") or 127 <= ord(c) < 160 for c in value):
            raise ValueError("a note may not hold control characters")
        return value


class SettleBody(BaseModel):
    """``POST …/settle`` body."""

    model_config = ConfigDict(extra="forbid")

    task_instances: list[SettleItem] = Field(min_length=1, max_length=MAX_TASKS)


def _authorize(user: Any, dag_id: str) -> None:
    """Airflow's own check: may ``user`` edit task instances of ``dag_id``? 403 if not."""
    from airflow.api_fastapi.app import get_auth_manager
    from airflow.api_fastapi.auth.managers.models.resource_details import DagAccessEntity, DagDetails
    from airflow.models.dag import DagModel

    # as Airflow's own requires_access_dag: the DAG's team (multi-team deployments) is part of the check
    details = DagDetails(id=dag_id, team_name=DagModel.get_team_name(dag_id))
    if not get_auth_manager().is_authorized_dag(method="PUT", access_entity=DagAccessEntity.TASK_INSTANCE,
                                                details=details, user=user):
        raise HTTPException(403, f"this Airflow user may not edit task instances of DAG {dag_id}")


def _check_id(value: str, what: str) -> None:
    import re

    # a run id may hold ':' and '+' (scheduled__2026-11-30T00:00:00+00:00); ids never hold control characters
    if not re.fullmatch(r"[^\x00-\x1f\x7f-\x9f]{1,250}", value):
        raise HTTPException(400, f"bad {what}: 1 to 250 characters, no control characters")


def settle(session: Any, dag_id: str, run_id: str, items: list[SettleItem], user_id: str | None,
           user_name: str | None = None) -> dict[str, str]:
    """Set each item's task instance of (``dag_id``, ``run_id``, map_index -1) to its state if it has none.

    One transaction on ``session`` (committed here); the rows are locked (``SELECT … FOR UPDATE``
    on PostgreSQL; SQLite serializes writers). Returns {task_id: "ok" | "already <state>" |
    "not found"}. What it set is recorded in Airflow's audit log (event ``handoff_batch_settle``, by
    ``user_name``, the task ids per state in ``extra``). Raises HTTPException 404 when the DAG run
    does not exist."""
    from airflow.models.dagrun import DagRun
    from airflow.models.taskinstance import TaskInstance as TI
    from sqlalchemy import select
    from sqlalchemy.orm import selectinload

    run = session.execute(select(DagRun.id, DagRun.start_date)
                          .where(DagRun.dag_id == dag_id, DagRun.run_id == run_id)).first()
    if run is None:
        raise HTTPException(404, f"no DAG run {run_id} of DAG {dag_id}")
    now = _now()
    run_start = run.start_date or now
    wanted = {item.task_id: item for item in items}
    rows = session.scalars(
        select(TI)
        .where(TI.dag_id == dag_id, TI.run_id == run_id, TI.map_index == -1, TI.task_id.in_(list(wanted)))
        .options(selectinload(TI.task_instance_note))
        .with_for_update()
    ).all()
    found = {ti.task_id: ti for ti in rows}
    results: dict[str, str] = {}
    changed: list[tuple[Any, str]] = []
    for task_id, item in wanted.items():
        ti = found.get(task_id)
        if ti is None:
            results[task_id] = "not found"
            continue
        if ti.state is not None:
            results[task_id] = f"already {getattr(ti.state, 'value', ti.state)}"
            continue
        # dbt's timing, kept inside [the DAG run's start, now]: a task cannot end in the future or
        # start before its run did (a skewed clock or a bad client shows as a clamp, not a wrong Gantt)
        end = min(max(item.end_date or now, run_start), now)
        start = min(max(item.start_date or end, run_start), end)
        ti.state = item.state
        ti.start_date, ti.end_date = start, end
        ti.duration = (end - start).total_seconds()
        if item.note is not None:
            if ti.task_instance_note is None:
                ti.note = (item.note, user_id)
            else:
                ti.task_instance_note.content = item.note
                ti.task_instance_note.user_id = user_id
        results[task_id] = "ok"
        changed.append((ti, item.state))
    if changed:
        import json

        from airflow.models.log import Log

        by_state: dict[str, list[str]] = {}
        for ti, state in changed:
            by_state.setdefault(state, []).append(ti.task_id)
        session.add(Log(event="handoff_batch_settle", owner=user_name, dag_id=dag_id, run_id=run_id,
                        extra=json.dumps(by_state)))
    session.commit()
    _after_commit(changed, session)
    return results


def _now() -> datetime:
    return datetime.now(timezone.utc)


def _after_commit(changed: list[tuple[Any, str]], session: Any) -> None:
    """What Airflow's own state PATCH does after setting a state: listener hooks, the state store."""
    if not changed:
        return
    try:
        from airflow.listeners.listener import get_listener_manager

        hook = get_listener_manager().hook
    except Exception:
        log.exception("handoff batch settle: Airflow's listener manager is not available")
        return
    for ti, state in changed:
        try:
            if state == "success":
                hook.on_task_instance_success(previous_state=None, task_instance=ti)
            else:
                hook.on_task_instance_failed(previous_state=None, task_instance=ti,
                                             error="set failed by handoff's batch (the model's dbt result)")
        except Exception:
            log.exception("error calling listener")
    successes = [ti for ti, state in changed if state == "success"]
    if successes:
        try:
            from airflow.api_fastapi.core_api.services.public.task_instances import (
                _clear_task_state_store_on_success,
            )
        except ImportError:  # another Airflow version without a task state store
            return
        _clear_task_state_store_on_success(successes, session)
        session.commit()


def router() -> APIRouter:
    """The routes above, authenticated by Airflow's own ``get_user`` (Bearer JWT or the UI's cookie)."""
    from airflow.api_fastapi.common.db.common import SessionDep
    from airflow.api_fastapi.core_api.security import get_user
    from fastapi.security import HTTPBearer

    async def user(request: Request) -> Any:
        bearer = await HTTPBearer(auto_error=False)(request)
        return await get_user(request, None, bearer)

    routes = APIRouter(prefix="/api/batch")
    User = Annotated[Any, Depends(user)]

    @routes.get("/dags/{dag_id}")
    def can_settle(dag_id: str, who: User) -> dict[str, bool]:
        _check_id(dag_id, "dag_id")
        _authorize(who, dag_id)
        return {"settle": True}

    @routes.post("/dags/{dag_id}/dagRuns/{run_id}/settle")
    def settle_route(dag_id: str, run_id: str, body: SettleBody, who: User, session: SessionDep) -> dict[str, Any]:
        _check_id(dag_id, "dag_id")
        _check_id(run_id, "run_id")
        _authorize(who, dag_id)
        get_id, get_name = getattr(who, "get_id", None), getattr(who, "get_name", None)
        return {"results": settle(session, dag_id, run_id, body.task_instances,
                                  str(get_id()) if callable(get_id) else None,
                                  str(get_name()) if callable(get_name) else None)}

    return routes
