"""The trigger a batch defers on while nothing is ready (docs/execution.md).

It watches a few task instances of the batch's run (the sensors and other tasks that may
release batched models) through the Task SDK's ``get_task_states`` and fires when any of them
changed state, or when a retry is due. It holds no worker slot and imports neither dbt nor
handoff's factory.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import Any

from airflow.triggers.base import BaseTrigger, TriggerEvent

POLL_S = 2.0


class WaitForTasksTrigger(BaseTrigger):
    """Fires ``{"changed": {task_id: state}}`` when a watched task's state differs from
    ``states``, or ``{"due": True}`` at ``until`` (epoch seconds)."""

    def __init__(self, dag_id: str, run_id: str, task_ids: list[str], states: dict[str, str | None],
                 until: float | None = None, poll_s: float = POLL_S) -> None:
        super().__init__()  # type: ignore[no-untyped-call]
        self.dag_id, self.run_id = dag_id, run_id
        self.task_ids, self.states = list(task_ids), dict(states)
        self.until, self.poll_s = until, poll_s

    def serialize(self) -> tuple[str, dict[str, Any]]:
        return ("handoff.airflow.batch_trigger.WaitForTasksTrigger",
                {"dag_id": self.dag_id, "run_id": self.run_id, "task_ids": self.task_ids, "states": self.states,
                 "until": self.until, "poll_s": self.poll_s})

    async def run(self) -> AsyncIterator[TriggerEvent]:
        from airflow.sdk.execution_time.task_runner import RuntimeTaskInstance
        from asgiref.sync import sync_to_async

        while True:
            if self.task_ids:
                answer = await sync_to_async(RuntimeTaskInstance.get_task_states)(
                    dag_id=self.dag_id, run_ids=[self.run_id], task_ids=self.task_ids)
                now = answer.get(self.run_id, {}) if isinstance(answer, dict) else {}
                changed = {t: (None if now.get(t) is None else str(getattr(now[t], "value", now[t])))
                           for t in self.task_ids}
                changed = {t: s for t, s in changed.items() if s != self.states.get(t)}
                if changed:
                    yield TriggerEvent({"changed": changed})  # type: ignore[no-untyped-call]
                    return
            if self.until is not None and time.time() >= self.until:
                yield TriggerEvent({"due": True})  # type: ignore[no-untyped-call]
                return
            await asyncio.sleep(self.poll_s)
