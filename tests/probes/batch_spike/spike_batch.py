"""Spike: model tasks that start in the triggerer and end from their trigger (Airflow 3.3.2).

Importable by every Airflow process of the spike stack (PYTHONPATH).

- ResultTrigger: waits for the result of its task, from a file (source="file") or from XCom chunks
  of a batch task (source="xcom"), then ends the task (TaskSuccessEvent / TaskFailedEvent) or, for a
  try > 1, resumes it on a worker (plain TriggerEvent) to run alone.
- SpikeModel: start_from_trigger=True; execute_alone runs on a worker.
- SpikeBatch: a worker task that publishes results as XCom chunks on a schedule.
"""

from __future__ import annotations

import asyncio
import json
import os
import time
from pathlib import Path
from typing import Any

from airflow.sdk import BaseOperator
from airflow.triggers.base import (
    BaseTrigger,
    StartTriggerArgs,
    TaskFailedEvent,
    TaskSuccessEvent,
    TriggerEvent,
)

TRIG = "spike_batch.ResultTrigger"


class _Hub:
    """One poller per (dag_id, run_id, batch_task_id) in the trigger runner process."""

    def __init__(self) -> None:
        self.results: dict[tuple[str, str, str], dict[str, Any]] = {}
        self.events: dict[tuple[str, str, str], asyncio.Event] = {}
        self.pollers: dict[tuple[str, str, str], asyncio.Task] = {}
        self.waiters: dict[tuple[str, str, str], int] = {}
        self.seen: dict[tuple[str, str, str], int] = {}
        self.requests = 0

    async def poll(self, key: tuple[str, str, str], poll_s: float) -> None:
        from asgiref.sync import sync_to_async
        from airflow.sdk.execution_time.xcom import XCom

        dag_id, run_id, batch = key
        while self.waiters.get(key, 0) > 0:
            count = await sync_to_async(XCom.get_one)(key="seq", dag_id=dag_id, task_id=batch, run_id=run_id,
                                                      map_index=-1)
            self.requests += 1
            count = int(count or 0)
            for k in range(self.seen.get(key, 0), count):
                chunk = await sync_to_async(XCom.get_one)(key=f"chunk_{k}", dag_id=dag_id, task_id=batch,
                                                          run_id=run_id, map_index=-1)
                self.requests += 1
                self.results.setdefault(key, {}).update(chunk or {})
            if count > self.seen.get(key, 0):
                self.seen[key] = count
                self.events[key].set()
                self.events[key] = asyncio.Event()
            await asyncio.sleep(poll_s)
        self.pollers.pop(key, None)

    async def wait(self, key: tuple[str, str, str], task_id: str, poll_s: float) -> dict[str, Any]:
        self.waiters[key] = self.waiters.get(key, 0) + 1
        self.events.setdefault(key, asyncio.Event())
        if key not in self.pollers:
            self.pollers[key] = asyncio.create_task(self.poll(key, poll_s))
        try:
            while task_id not in self.results.get(key, {}):
                await self.events[key].wait()
            return self.results[key][task_id]
        finally:
            self.waiters[key] -= 1


HUB = _Hub()


class ResultTrigger(BaseTrigger):
    def __init__(self, source: str = "file", events_dir: str = "", batch_task_id: str = "batch",
                 poll_s: float = 0.2) -> None:
        super().__init__()
        self.source = source
        self.events_dir = events_dir
        self.batch_task_id = batch_task_id
        self.poll_s = poll_s

    def serialize(self) -> tuple[str, dict[str, Any]]:
        return TRIG, {"source": self.source, "events_dir": self.events_dir,
                      "batch_task_id": self.batch_task_id, "poll_s": self.poll_s}

    async def run(self):  # type: ignore[override]
        ti = self.task_instance
        started = time.time()
        self.log.info("trigger of %s try %s started (ti type %s)", ti.task_id, ti.try_number, type(ti).__name__)
        if ti.try_number > 1:
            self.log.info("try %s: resuming on a worker to run alone", ti.try_number)
            yield TriggerEvent({"run": "alone"})
            return
        if self.source == "file":
            path = Path(self.events_dir) / ti.run_id.replace(":", "_").replace("+", "_") / f"{ti.task_id}.json"
            while not path.exists():
                await asyncio.sleep(self.poll_s)
            result = json.loads(path.read_text())
        else:
            result = await HUB.wait((ti.dag_id, ti.run_id, self.batch_task_id), ti.task_id, self.poll_s)
        seen = time.time()
        self.log.info("model %s: %s (%s) published %.3f seen %.3f waited %.2fs; hub requests %d",
                      ti.task_id, result.get("status"), result.get("message", ""),
                      result.get("at", 0), seen, seen - started, HUB.requests)
        for line in result.get("lines", []):
            self.log.info("dbt: %s", line)
        if result.get("status") == "success":
            yield TaskSuccessEvent(xcoms={"seen_at": seen, "published_at": result.get("at", 0)})
        else:
            yield TaskFailedEvent()


class SpikeModel(BaseOperator):
    start_from_trigger = True
    template_fields = ()

    def __init__(self, *, source: str = "file", events_dir: str = "", batch_task_id: str = "batch",
                 poll_s: float = 0.2, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.start_trigger_args = StartTriggerArgs(
            trigger_cls=TRIG, next_method="execute_alone",
            trigger_kwargs={"source": source, "events_dir": events_dir, "batch_task_id": batch_task_id,
                            "poll_s": poll_s},
            next_kwargs=None, timeout=None)

    def execute(self, context: Any) -> None:
        self.log.info("execute() on a worker (not expected with start_from_trigger)")

    def execute_alone(self, context: Any, event: Any = None) -> str:
        self.log.info("running %s alone on a worker (pid %s), event %s", self.task_id, os.getpid(), event)
        return "alone"


class SpikeBatch(BaseOperator):
    """Publishes results: schedule = [[delay_s, {task_id: {status...}}], ...] as XCom chunks."""

    template_fields = ()

    def __init__(self, *, schedule: list, die_after: int | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.schedule = schedule
        self.die_after = die_after

    def execute(self, context: Any) -> None:
        ti = context["ti"]
        t0 = time.time()
        for k, (delay, chunk) in enumerate(self.schedule):
            if self.die_after is not None and k >= self.die_after:
                self.log.info("dying now (SIGKILL self)")
                os.kill(os.getpid(), 9)
            wait = t0 + delay - time.time()
            if wait > 0:
                time.sleep(wait)
            now = time.time()
            for v in chunk.values():
                v["at"] = now
            a = time.perf_counter()
            ti.xcom_push(key=f"chunk_{k}", value=chunk)
            ti.xcom_push(key="seq", value=k + 1)
            self.log.info("published chunk %d (%d results) in %.3fs", k, len(chunk), time.perf_counter() - a)


class SpikeAlone(BaseOperator):
    """A model task that runs alone on a worker when Airflow schedules it (the single-task path)."""

    template_fields = ()

    def execute(self, context: Any) -> str:
        self.log.info("ran %s alone on a worker (pid %s)", self.task_id, os.getpid())
        return "alone"


class SpikeApiBatch(BaseOperator):
    """Marks its downstream model tasks through the public REST API (bulk PATCH) on a schedule."""

    template_fields = ()

    def __init__(self, *, schedule: list, mode: str = "bulk", **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.schedule = schedule
        self.mode = mode

    def execute(self, context: Any) -> None:
        from handoff.airflow_api import AirflowApi, _seg

        api = AirflowApi.from_env()
        ti = context["ti"]
        t0 = time.time()
        base = f"/api/v2/dags/{_seg(ti.dag_id)}/dagRuns/{_seg(ti.run_id)}/taskInstances"
        for k, (delay, chunk) in enumerate(self.schedule):
            wait = t0 + delay - time.time()
            if wait > 0:
                time.sleep(wait)
            now = time.time()
            a = time.perf_counter()
            if self.mode == "bulk":
                entities = [{"task_id": t, "new_state": v["status"], "note": f"published_at={now:.3f}"}
                            for t, v in chunk.items()]
                status, answer = api.request("PATCH", base, body={"actions": [
                    {"action": "update", "entities": entities, "action_on_non_existence": "skip"}]})
                errors = answer.get("update", {}).get("errors") if isinstance(answer, dict) else answer
            else:
                errors = []
                for t, v in chunk.items():
                    status, answer = api.request("PATCH", f"{base}/{_seg(t)}",
                                                 body={"new_state": v["status"], "note": f"published_at={now:.3f}"})
                    if status != 200:
                        errors.append((t, status, str(answer)[:200]))
            self.log.info("chunk %d (%d) %s in %.3fs errors %s", k, len(chunk), self.mode,
                          time.perf_counter() - a, errors)
