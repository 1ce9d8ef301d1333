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
  (1 to ``MAX_TASKS`` items, at most ``MAX_BODY`` bytes; dates ISO 8601 strings with a timezone,
  optional). Each task instance (map_index -1) is set **only if it has no state** — one
  ``UPDATE … WHERE state IS NULL`` per task, so a person's mark made at any moment wins on
  PostgreSQL and SQLite alike — with its start/end dates (dbt's timing, kept within [the DAG run's
  start, now]) and note. An item that is not valid costs only itself.
  Answers 200 ``{"results": {key: "ok" | "already <state>" | "not found" | "refused: <why>"}}``
  (key: the task id, or ``#<index>`` for an item without a valid one); 400 for a body that is not
  that shape or bad ids in the path, 413 above ``MAX_BODY``, 404 for an unknown DAG run.

Unlike Airflow's PATCH it does **not** clear the failed / upstream_failed tasks downstream of what
it sets (that side effect resumes tasks after a *person's* "success"; for the batch it erased
people's marks, #20 review B1/B2). Like it, it fires Airflow's listener hooks
(``on_task_instance_success`` / ``_failed``) for what it set, and clears the task state store on
success when ``[state_store] clear_on_success`` asks. Airflow's scheduler then schedules the
dependants as after any state change.
"""

# no "from __future__ import annotations": FastAPI reads the routes' annotations, local names included
import json
import logging
import re
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, Literal

from fastapi import APIRouter, Depends, HTTPException, Request
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

log = logging.getLogger(__name__)

MAX_TASKS = 1000  # task instances per settle request
MAX_BODY = 8 * 1024 * 1024  # bytes of a settle request's body (1,000 items with 1,000-character notes fit)
NOTE_MAX = 1000  # characters: Airflow's task_instance_note.content column
_ID_PATTERN = r"[A-Za-z0-9_.\-]{1,250}"  # Airflow's task id characters (KEY_REGEX) and length
_UNPRINTABLE = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\ud800-\udfff]")  # newline and tab are text


class SettleItem(BaseModel):
    """One task instance to settle: strict types (no number read as a date, no date without a timezone)."""

    model_config = ConfigDict(extra="forbid", strict=True)

    task_id: str = Field(pattern=f"^{_ID_PATTERN}$")
    state: Literal["success", "failed"]
    note: str | None = Field(default=None, max_length=NOTE_MAX)
    start_date: str | None = Field(default=None, max_length=40)
    end_date: str | None = Field(default=None, max_length=40)

    @field_validator("start_date", "end_date")
    @classmethod
    def _iso_with_zone(cls, value: str | None) -> str | None:
        if value is not None:
            moment = datetime.fromisoformat(value)  # ValueError: not ISO 8601
            if moment.utcoffset() is None:
                raise ValueError("give a timezone (ISO 8601 with an offset or Z)")
        return value

    @field_validator("note")
    @classmethod
    def _printable(cls, value: str | None) -> str | None:
        if value is not None and _UNPRINTABLE.search(value):
            raise ValueError("a note may not hold control characters or lone surrogates")
        return value

    def start(self) -> datetime | None:
        return None if self.start_date is None else datetime.fromisoformat(self.start_date)

    def end(self) -> datetime | None:
        return None if self.end_date is None else datetime.fromisoformat(self.end_date)


@dataclass
class Parsed:
    """A settle body read item by item: the valid items, and the refusal of each invalid one."""

    items: list[SettleItem]
    refused: dict[str, str]


def parse_body(raw: bytes) -> Parsed:
    """The settle body: HTTPException 400 (one line) unless it is ``{"task_instances": [1..MAX_TASKS
    objects]}``; then each item on its own — an invalid one, or a task id given twice, is refused
    under its task id (or ``#<index>``), the others are kept."""
    try:
        data = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        raise HTTPException(400, "the body is not JSON") from None
    tasks = data.get("task_instances") if isinstance(data, dict) and set(data) == {"task_instances"} else None
    if not isinstance(tasks, list) or not 0 < len(tasks) <= MAX_TASKS:
        raise HTTPException(400, f'the body must be {{"task_instances": [...]}} with 1 to {MAX_TASKS} items')
    items: dict[str, SettleItem] = {}
    refused: dict[str, str] = {}
    for index, raw_item in enumerate(tasks):
        task_id = raw_item.get("task_id") if isinstance(raw_item, dict) else None
        key = task_id if isinstance(task_id, str) and re.fullmatch(_ID_PATTERN, task_id) else f"#{index}"
        try:
            item = SettleItem.model_validate(raw_item)
        except ValidationError as exc:
            first = exc.errors(include_input=False, include_url=False)[0]
            where = ".".join(str(part) for part in first.get("loc", ())) or "item"
            refused[key] = f"refused: {where}: {first.get('msg', 'invalid')}"
            continue
        if key in items or key in refused:
            refused[key] = "refused: task_id given more than once"
            items.pop(key, None)
            continue
        items[key] = item
    return Parsed(list(items.values()), refused)


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
    # a run id may hold ':' and '+' (scheduled__2026-11-30T00:00:00+00:00); ids never hold control characters
    if not re.fullmatch(r"[^\x00-\x1f\x7f-\x9f\ud800-\udfff]{1,250}", value):
        raise HTTPException(400, f"bad {what}: 1 to 250 characters, no control characters")


def settle(session: Any, dag_id: str, run_id: str, items: list[SettleItem], user_id: str | None,
           user_name: str | None = None) -> dict[str, str]:
    """Set each item's task instance of (``dag_id``, ``run_id``, map_index -1) to its state if it has none.

    One transaction on ``session`` (committed here). The rows are locked in task id order
    (``SELECT … FOR UPDATE`` on PostgreSQL: no deadlock between two settles), and each is set by an
    ``UPDATE … WHERE state IS NULL`` whose row count says whether it was still stateless — the
    compare-and-set holds on SQLite too, where ``FOR UPDATE`` is a no-op. Returns {task_id: "ok" |
    "already <state>" | "not found"}. What it set is recorded in Airflow's audit log (event
    ``handoff_batch_settle``, by ``user_name``; ``extra``: the task ids per state, and under
    ``dates`` each task's [start, end] as written). Raises
    HTTPException 404 when the DAG run does not exist."""
    from airflow.models.dagrun import DagRun
    from airflow.models.log import Log
    from airflow.models.taskinstance import TaskInstance as TI
    from sqlalchemy import select, update
    from sqlalchemy.orm import selectinload

    run = session.execute(select(DagRun.id, DagRun.start_date)
                          .where(DagRun.dag_id == dag_id, DagRun.run_id == run_id)).first()
    if run is None:
        raise HTTPException(404, f"no DAG run {run_id} of DAG {dag_id}")
    now = _now()
    run_start = run.start_date or now
    wanted = {item.task_id: item for item in items}
    rows = session.execute(
        select(TI.id, TI.task_id, TI.state)
        .where(TI.dag_id == dag_id, TI.run_id == run_id, TI.map_index == -1, TI.task_id.in_(list(wanted)))
        .order_by(TI.task_id)
        .with_for_update()
    ).all()
    found = {row.task_id: row for row in rows}
    results: dict[str, str] = {}
    set_ids: dict[Any, SettleItem] = {}
    for task_id in sorted(wanted):
        item, row = wanted[task_id], found.get(task_id)
        if row is None:
            results[task_id] = "not found"
            continue
        # dbt's timing, kept inside [the DAG run's start, now]: a task cannot end in the future or
        # start before its run did (a skewed clock or a bad client shows as a clamp, not a wrong Gantt)
        end = min(max(item.end() or now, run_start), now)
        start = min(max(item.start() or end, run_start), end)
        done = session.execute(
            update(TI).where(TI.id == row.id, TI.state.is_(None))
            .values(state=item.state, start_date=start, end_date=end, duration=(end - start).total_seconds())
            .execution_options(synchronize_session=False))
        if done.rowcount != 1:
            state = session.scalar(select(TI.state).where(TI.id == row.id))
            results[task_id] = f"already {getattr(state, 'value', state)}"
            continue
        results[task_id] = "ok"
        set_ids[row.id] = item
    changed: list[tuple[Any, str]] = []
    if set_ids:
        tis = session.scalars(select(TI).where(TI.id.in_(list(set_ids)))
                              .options(selectinload(TI.task_instance_note))
                              .execution_options(populate_existing=True)).all()
        for ti in tis:
            item = set_ids[ti.id]
            if item.note is not None:
                if ti.task_instance_note is None:
                    ti.note = (item.note, user_id)
                else:
                    ti.task_instance_note.content = item.note
                    ti.task_instance_note.user_id = user_id
            changed.append((ti, item.state))
        audit: dict[str, Any] = {}
        for ti, state in sorted(changed, key=lambda pair: pair[0].task_id):
            audit.setdefault(state, []).append(ti.task_id)
            # the dates it wrote (a person may settle a task too: a back-dated end is on the record)
            audit.setdefault("dates", {})[ti.task_id] = [ti.start_date.isoformat(), ti.end_date.isoformat()]
        session.add(Log(event="handoff_batch_settle", owner=user_name, dag_id=dag_id, run_id=run_id,
                        extra=json.dumps(audit)))
    session.commit()
    _after_commit(changed, session)
    return results


def _now() -> datetime:
    return datetime.now(timezone.utc)


def _after_commit(changed: list[tuple[Any, str]], session: Any) -> None:
    """What Airflow's own state PATCH does after setting a state: listener hooks, the state store.
    Nothing here can undo the commit; a failure is logged (the states are set)."""
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
            # Airflow's own helper (private; Airflow 3.3's task state store): clear on success if configured
            from airflow.api_fastapi.core_api.services.public.task_instances import (
                _clear_task_state_store_on_success,
            )

            _clear_task_state_store_on_success(successes, session)
            session.commit()
        except Exception:
            session.rollback()
            log.exception("handoff batch settle: clearing the task state store on success failed")


async def _read_body(request: Request) -> bytes:
    """The request body, at most MAX_BODY bytes (413 beyond, without reading the rest)."""
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > MAX_BODY:
            raise HTTPException(413, f"the body is larger than {MAX_BODY} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


def router() -> APIRouter:
    """The routes above, authenticated by Airflow's own ``get_user`` (Bearer JWT or the UI's cookie)."""
    from airflow.api_fastapi.core_api.security import get_user
    from airflow.utils.session import create_session
    from fastapi.security import HTTPBearer
    from starlette.concurrency import run_in_threadpool

    async def user(request: Request) -> Any:
        bearer = await HTTPBearer(auto_error=False)(request)
        return await get_user(request, None, bearer)

    routes = APIRouter(prefix="/api/batch")

    @routes.get("/dags/{dag_id}")
    def can_settle(dag_id: str, who: Any = Depends(user)) -> dict[str, bool]:  # noqa: B008 - FastAPI's way
        _check_id(dag_id, "dag_id")
        _authorize(who, dag_id)
        return {"settle": True}

    @routes.post("/dags/{dag_id}/dagRuns/{run_id}/settle")
    async def settle_route(dag_id: str, run_id: str, request: Request,
                           who: Any = Depends(user)) -> dict[str, Any]:  # noqa: B008 - FastAPI's way
        _check_id(dag_id, "dag_id")
        _check_id(run_id, "run_id")
        await run_in_threadpool(_authorize, who, dag_id)
        parsed = parse_body(await _read_body(request))
        get_id, get_name = getattr(who, "get_id", None), getattr(who, "get_name", None)

        def write() -> dict[str, str]:
            if not parsed.items:
                return {}
            with create_session(scoped=False) as session:
                return settle(session, dag_id, run_id, parsed.items,
                              str(get_id()) if callable(get_id) else None,
                              str(get_name()) if callable(get_name) else None)

        return {"results": {**await run_in_threadpool(write), **parsed.refused}}

    return routes
