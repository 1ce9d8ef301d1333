"""The batch task of a batched pipeline: one dbt process per DAG run, a state per model task.

``DbtBatchOperator`` (task id ``handoff__batch``, upstream of every batched model task) runs the
ready models in waves with dbt's own threading, in-process, from the deployed artefact (never a
parse), and settles each model task's state as soon as the model and its tests have finished
(through handoff's own route in the api-server, ``handoff.airflow.batch_api``: one transaction per
flush, compare-and-set), then runs that task's completion callback. When nothing is ready but a
sensor (or a model it does not run) may still release models, or a retry is not yet due, it
defers (``WaitForTasksTrigger``) and resumes with the next wave. The decisions are pure
(handoff.batching); docs/execution.md has the semantics and why this write (measured).
"""

from __future__ import annotations

import queue
import tempfile
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime, timedelta, timezone
from typing import Any

from airflow.sdk import BaseOperator

from .. import batching
from ..batching import BatchModel, Outcome
from ..errors import HandoffError
from ..loom import plugin_patches_reverted
from ..redact import redact
from ..run_interval import conf_vars, interval_of_run
from .dbt_runner import DbtProject

FLUSH_EVERY_S = 0.25  # how often finished models are written to Airflow
SLEEP_BELOW_S = 60.0  # a retry due sooner is waited for in-process; later ones defer
THREADS_ENV = "HANDOFF_DBT_THREADS"
API_TIMEOUT_S = 120.0  # per REST request of the batch (bulk updates of many tasks)
WRITE_CHUNK = 500  # task states per settle request (HANDOFF_BATCH_WRITE_CHUNK), one transaction each
SETTLE_ATTEMPTS = 3  # sends of one settle request's unwritten tasks (0.5 s, then 1 s apart)
SETTLE_BACKOFF_S = 0.5
WRITE_CHUNK_ENV = "HANDOFF_BATCH_WRITE_CHUNK"


NO_API_WARNING = (
    "handoff: batched execution needs the Airflow REST API (HANDOFF_AIRFLOW_API_URL/_USERNAME/_PASSWORD or the "
    "connection handoff_airflow_api; dag.test() has none): the %d models of this run run as one task each "
    "(per_task), ~3 s of overhead per model; set them, or `execution: per_task` (docs/execution.md)")

NO_SETTLE_WARNING = (
    "handoff: batched execution writes task states through handoff's plugin in the Airflow api-server, and the "
    "api-server at %s has none (GET /handoff/api/batch answered 404): the %d models of this run run as one task "
    "each (per_task), ~3 s of overhead per model; install handoff in the api-server's environment "
    "(docs/execution.md)")


class BatchFailed(RuntimeError):
    """The batch could not do its work (configuration, dbt crashed); the message says what to do."""


class _ModelTaskInstance:
    """What a model task's callbacks read from ``context["ti"]`` when the batch settled it."""

    def __init__(self, dag_id: str, run_id: str, task_id: str, state: str) -> None:
        self.dag_id, self.run_id, self.task_id, self.state = dag_id, run_id, task_id, state
        self.map_index = -1
        self.try_number = 0  # the batch settled it: Airflow never started a try of it


class DbtBatchOperator(BaseOperator):
    """Runs a batched pipeline's models in one dbt process per wave; see the module doc."""

    template_fields: Sequence[str] = ()
    ui_color = "#ff9f43"
    ui_fgcolor = "#ffffff"

    def __init__(self, *, project: DbtProject, models: Sequence[BatchModel], schedule: str = "@daily",
                 schedule_timezone: str = "UTC", **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.project = project
        self.models = {m.task_id: m for m in models}
        self.schedule = schedule  # the pipeline's, for the run's data interval (handoff.run_interval)
        self.schedule_timezone = schedule_timezone

    # -- entry points ------------------------------------------------------------------

    def execute(self, context: Any) -> dict[str, int]:
        return self._run(context, {}, {}, 0)

    def resume(self, context: Any, event: Any = None, attempts: Mapping[str, int] | None = None,
               not_before: Mapping[str, float] | None = None, wave: int = 0) -> dict[str, int]:
        self.log.info("resumed: %s", event)
        return self._run(context, dict(attempts or {}), dict(not_before or {}), wave)

    # -- the loop ----------------------------------------------------------------------

    def _run(self, context: Any, attempts: dict[str, int], not_before: dict[str, float],
             wave: int) -> dict[str, int]:
        from .callbacks import api_from_settings

        settings = api_from_settings()
        if settings is None:
            # dag.test() (no REST API) or a deployment without the settings: the batch does nothing and
            # ends; Airflow then runs every model as its own task (the per_task path). One line says so.
            self.log.warning(NO_API_WARNING, len(self.models))
            return {"success": 0, "failed": 0, "retried": 0, "per_task": len(self.models)}
        from ..airflow_api import AirflowApi, AirflowApiConfig

        # the callbacks' client gives up after 5 s; a bulk update of many tasks may take longer
        config = settings.config
        api = AirflowApi(AirflowApiConfig(config.base_url, config.username, config.password,
                                          timeout=API_TIMEOUT_S, attempts=3))
        ti = context["ti"]
        try:
            # settings present but wrong (password, URL, permissions) fail the batch before any dbt work:
            # never build every model here and then again per task because no state could be written
            api.get_dag_run(ti.dag_id, ti.run_id)
        except HandoffError as exc:
            raise BatchFailed(f"the batch cannot use the Airflow REST API: {exc.one_line()}") from None
        try:
            settle = api.can_settle(ti.dag_id)
        except HandoffError as exc:
            raise BatchFailed(f"the batch cannot write task states: {exc.one_line()}") from None
        if not settle:
            self.log.warning(NO_SETTLE_WARNING, config.base_url, len(self.models))
            return {"success": 0, "failed": 0, "retried": 0, "per_task": len(self.models)}
        totals = {"success": 0, "failed": 0, "retried": 0}
        unsettled: set[str] = set()  # ran here, but their state could not be written: never rerun
        active = dict(self.models)  # minus the unsettled models and everything below them (Airflow's now)
        manifest = None
        while True:
            states = self._states(ti.dag_id, ti.run_id)
            now = time.time()
            ready = batching.ready(active, states, not_before=not_before, now=now)
            if ready:
                wave += 1
                if manifest is None:
                    manifest = self._manifest()
                lost = self._wave(context, api, manifest, ready, wave, attempts, not_before, totals)
                if lost:
                    unsettled |= lost
                    left = batching.left_to_airflow(self.models, unsettled)
                    self.log.warning("left to Airflow (each runs as its own task after the batch): %s",
                                     ", ".join(sorted(left & set(active))))
                    active = {t: m for t, m in self.models.items() if t not in left}
                continue
            wait = batching.waiting(active, states, not_before=not_before)
            if wait.done:
                self.log.info("batch done after %d wave(s): %s", wave, totals)
                return totals
            if not wait.tasks and wait.retry_at is not None and wait.retry_at - now <= SLEEP_BELOW_S:
                self.log.info("waiting %.0f s for a retry", max(0.0, wait.retry_at - now))
                time.sleep(max(0.0, wait.retry_at - now))
                continue
            from .batch_trigger import WaitForTasksTrigger

            self.log.info("nothing ready; deferring until one of %s finishes%s", ", ".join(wait.tasks) or "-",
                          f" or {wait.retry_at:.0f} (retry due)" if wait.retry_at else "")
            self.defer(trigger=WaitForTasksTrigger(dag_id=ti.dag_id, run_id=ti.run_id, task_ids=list(wait.tasks),
                                                   states={t: states.get(t) for t in wait.tasks},
                                                   until=wait.retry_at),
                       method_name="resume",
                       kwargs={"attempts": attempts, "not_before": not_before, "wave": wave})

    def _states(self, dag_id: str, run_id: str) -> dict[str, str | None]:
        from airflow.sdk.execution_time.task_runner import RuntimeTaskInstance

        answer = RuntimeTaskInstance.get_task_states(dag_id=dag_id, run_ids=[run_id])
        states = answer.get(run_id, answer) if isinstance(answer, dict) else {}
        return {str(k): (None if v is None else str(getattr(v, "value", v))) for k, v in states.items()}

    def _manifest(self) -> Any:
        from .dbt_runner import load_task_manifest

        try:
            # every id the waves may build: a test placed here may read a model only through an ephemeral one
            return load_task_manifest(self.project, [uid for m in self.models.values() for uid in m.select])
        except HandoffError as exc:
            raise BatchFailed(redact(exc.one_line())) from None

    # -- one wave ----------------------------------------------------------------------

    def _wave(self, context: Any, api: Any, manifest: Any, ready: list[str], wave: int,
              attempts: dict[str, int], not_before: dict[str, float], totals: dict[str, int]) -> set[str]:
        """One dbt invocation over ``ready``; returns the models whose state could not be written."""
        import os
        import re

        from dbt.cli.main import dbtRunner

        from ..warehouse import release_connections
        from .dbt_runner import _LOCK, build_args

        ti = context["ti"]
        models = [self.models[t] for t in ready]
        tracker = batching.WaveTracker(models)
        outcomes: queue.Queue[Outcome | None] = queue.Queue()
        lock = threading.Lock()

        def on_event(event: Any) -> None:  # in dbt's threads: keep it short
            if event.info.name != "NodeFinished":
                return
            data = event.data
            result = data.run_result
            with lock:
                outcome = tracker.finished(data.node_info.unique_id, data.node_info.node_name, str(result.status),
                                           str(result.message or ""), float(result.execution_time or 0.0),
                                           now=time.time())
            if outcome is not None:
                outcomes.put(outcome)

        writer = _Writer(self, context, api, wave, attempts, not_before, totals, outcomes)
        writer.start()
        select = [s for m in models for s in m.select]
        dag_run = context.get("dag_run")
        try:
            run = interval_of_run(dag_run, self.schedule, self.schedule_timezone)
            dbt_vars = conf_vars(getattr(dag_run, "conf", None))
        except HandoffError as exc:
            raise BatchFailed(exc.one_line()) from None
        microbatch = any(m.microbatch for m in models)
        self.log.info("wave %d: dbt build of %d model(s) of %s, data interval %s to %s", wave, len(models),
                      ti.dag_id, run.start.isoformat(), run.end.isoformat())
        started = time.perf_counter()
        try:
            with _LOCK, tempfile.TemporaryDirectory(prefix="handoff-batch-") as work:
                args = build_args(self.project, select, work_dir=work, dbt_vars=dbt_vars, run=run,
                                  microbatch=microbatch)
                threads = os.environ.get(THREADS_ENV, "").strip()
                if threads:
                    if not re.fullmatch(r"[0-9]{1,2}", threads) or not 0 < int(threads) <= 64:
                        raise BatchFailed(f"{THREADS_ENV}={threads!r}: a whole number from 1 to 64")
                    args += ["--threads", threads]
                try:
                    with plugin_patches_reverted():
                        outcome = dbtRunner(manifest=manifest, callbacks=[on_event]).invoke(args)
                finally:
                    release_connections()
            if outcome.exception is not None:
                self.log.error("dbt raised: %s", redact(str(outcome.exception)))
            with lock:
                for rest in tracker.finish(now=time.time()):
                    outcomes.put(rest)
        finally:
            outcomes.put(None)
            writer.join()
        self.log.info("wave %d done in %.1f s: %s", wave, time.perf_counter() - started, totals)
        if writer.error is not None:
            raise BatchFailed(f"could not write task states: {writer.error}")
        return writer.unsettled


class _Writer(threading.Thread):
    """Writes finished models to Airflow every FLUSH_EVERY_S, then runs their success callbacks."""

    def __init__(self, op: DbtBatchOperator, context: Any, api: Any, wave: int, attempts: dict[str, int],
                 not_before: dict[str, float], totals: dict[str, int], outcomes: queue.Queue[Outcome | None]) -> None:
        super().__init__(name="handoff-batch-writer", daemon=True)
        self.op, self.context, self.api, self.wave = op, context, api, wave
        self.attempts, self.not_before, self.totals, self.outcomes = attempts, not_before, totals, outcomes
        self.error: str | None = None
        self.unsettled: set[str] = set()
        self.chunk = write_chunk()

    def run(self) -> None:
        done = False
        while not done:
            pending: list[Outcome] = []
            deadline = time.monotonic() + FLUSH_EVERY_S
            while True:
                try:
                    item = self.outcomes.get(timeout=max(0.0, deadline - time.monotonic()))
                except queue.Empty:
                    break
                if item is None:
                    done = True
                    break
                pending.append(item)
            if pending:
                try:
                    self._write(pending)
                except Exception as exc:  # noqa: BLE001 - reported by the wave, after dbt ends
                    self.error = redact(str(exc))
                    self.op.log.error("writing %d task state(s) failed: %s", len(pending), self.error)

    def _changes(self, outcomes: list[Outcome]) -> list[tuple[Outcome, str]]:
        """The (outcome, note) of each model to set now: logs every model's lines; leaves out the
        skipped ones (Airflow makes them upstream_failed) and failures with retries left (due again
        after their retry_delay)."""
        log = self.op.log
        changes: list[tuple[Outcome, str]] = []
        current: dict[str, str | None] | None = None  # read only when a retry is to be decided
        for o in outcomes:
            model = self.op.models[o.task_id]
            for line in _lines(o):
                log.info("%s: %s", o.task_id, line)
            if o.status == "skipped":
                continue  # an upstream failed: Airflow makes it upstream_failed
            attempt = self.attempts.get(o.task_id, 0) + 1
            if o.status == "failed" and attempt <= model.retries:
                if current is None:
                    ti = self.context["ti"]
                    current = self.op._states(ti.dag_id, ti.run_id)
                if current.get(o.task_id) is not None:  # a person settled it meanwhile: no retry
                    log.info("%s: left %s (set meanwhile, not by the batch)", o.task_id, current[o.task_id])
                    continue
                self.attempts[o.task_id] = attempt
                self.not_before[o.task_id] = time.time() + model.retry_delay_s
                self.totals["retried"] += 1
                log.warning("%s failed (attempt %d of %d); retrying in %.0f s", o.task_id, attempt,
                            model.retries + 1, model.retry_delay_s)
                continue
            changes.append((o, batching.note(o, wave=self.wave, attempt=attempt, attempts=model.retries + 1)))
        return changes

    def _write(self, outcomes: list[Outcome]) -> None:
        """Settle finished models through handoff's route in the api-server (``handoff.airflow.batch_api``):
        compare-and-set (only a task without a state is set, so a person's mark made at any moment
        wins) in one transaction per request, with dbt's timing as the task's start/end, then the
        callbacks of the tasks it set. Unlike Airflow's public PATCH it clears nothing downstream
        (docs/execution.md, "The state write")."""
        log = self.op.log
        items = []
        for o, note in self._changes(outcomes):
            end = datetime.fromtimestamp(o.done_at or time.time(), tz=timezone.utc)
            start = end - timedelta(seconds=max(0.0, o.execution_time_s))
            items.append({"task_id": o.task_id, "state": o.status, "note": note,
                          "start_date": start.isoformat(), "end_date": end.isoformat()})
        while items:
            chunk: list[dict[str, Any]] = []
            blocked = batching.left_to_airflow(self.op.models, self.unsettled) if self.unsettled else set()
            while items and len(chunk) < self.chunk:
                item = items.pop(0)
                if item["task_id"] in blocked:
                    # an upstream's state could not be written: Airflow runs that one alone after the batch
                    # and decides about this one from its result — never a success on an unknown upstream
                    log.error("%s: not written (an upstream's state could not be written); left to Airflow",
                              item["task_id"])
                    self.unsettled.add(item["task_id"])
                    continue
                chunk.append(item)
            if chunk:
                self._send(chunk)

    def _send(self, chunk: list[dict[str, Any]]) -> None:
        """One settle request (resent up to SETTLE_ATTEMPTS times for what it did not write: the route
        is compare-and-set, so a resend never overwrites); then the callbacks of the tasks it set
        (before the next request: completions reach the registry as the states land)."""
        ti = self.context["ti"]
        log = self.op.log
        result: dict[str, str] = {}
        todo = chunk
        for attempt in range(1, SETTLE_ATTEMPTS + 1):
            try:
                result.update(self.api.settle_task_states(ti.dag_id, ti.run_id, todo))
                break
            except HandoffError as exc:
                # the answer may be lost after the commit (one transaction: all or nothing): what
                # Airflow now holds decides; what is still without a state is sent again
                log.warning("settling %d task(s) answered: %s; re-reading their states (attempt %d of %d)",
                            len(todo), exc.one_line(), attempt, SETTLE_ATTEMPTS)
                now_states = self.op._states(ti.dag_id, ti.run_id)
                again = []
                for item in todo:
                    now_state = now_states.get(item["task_id"])
                    if now_state is None:
                        again.append(item)
                        result[item["task_id"]] = "not written"
                    else:  # written by the lost answer's commit, or set by someone meanwhile
                        result[item["task_id"]] = "ok" if now_state == item["state"] else f"already {now_state}"
                todo = again
                if not todo or attempt == SETTLE_ATTEMPTS:
                    break
                time.sleep(SETTLE_BACKOFF_S * 2 ** (attempt - 1))
        for item in chunk:
            task_id, state = item["task_id"], item["state"]
            answer = result.get(task_id, "unknown")
            if answer.startswith("already "):
                log.info("%s: left %s (set meanwhile, not by the batch)", task_id, answer[8:])
                self.not_before.pop(task_id, None)
                continue
            if answer != "ok":
                log.error("%s: could not set %s: %s", task_id, state, answer)
                self.unsettled.add(task_id)
                continue
            self.totals[state] = self.totals.get(state, 0) + 1
            self.not_before.pop(task_id, None)
            self._callbacks(task_id, state)

    def _callbacks(self, task_id: str, state: str) -> None:
        """The model task's own success or failure callbacks (Airflow runs none for a state set through
        the API): completion and recovery on success, 'blocked' messages on a failure for good."""
        try:
            task = self.op.dag.get_task(task_id)
        except Exception:  # noqa: BLE001 - no DAG or no such task: nothing to call
            return
        callbacks = getattr(task, "on_success_callback" if state == "success" else "on_failure_callback", None)
        if not callbacks:
            return
        ti = self.context["ti"]
        context = dict(self.context)
        context["ti"] = context["task_instance"] = _ModelTaskInstance(ti.dag_id, ti.run_id, task_id, state)
        context["task"] = task
        context["exception"] = None
        for callback in callbacks if isinstance(callbacks, list) else [callbacks]:
            try:
                callback(context)
            except Exception:
                self.op.log.exception("%s: %s callback failed", task_id, state)


def write_chunk() -> int:
    """Task states per settle request: HANDOFF_BATCH_WRITE_CHUNK (1..1000), else WRITE_CHUNK."""
    import os
    import re

    text = os.environ.get(WRITE_CHUNK_ENV, "").strip()
    if not text:
        return WRITE_CHUNK
    if not re.fullmatch(r"[0-9]{1,4}", text) or not 0 < int(text) <= 1000:
        raise BatchFailed(f"{WRITE_CHUNK_ENV}={text!r}: a whole number from 1 to 1000")
    return int(text)


def _lines(o: Outcome) -> list[str]:
    lines = [f"dbt {o.status} in {o.execution_time_s:.2f} s"]
    lines += [f"test {name}: {status}" for name, status in o.tests]
    if o.message and o.status != "success":
        lines.append(o.message)
    return lines


def batch_task(dag: Any, *, project: DbtProject, pool: str, models: Sequence[BatchModel],
               owner: str, on_success: Callable[[Any], None] | None = None, schedule: str = "@daily",
               schedule_timezone: str = "UTC") -> DbtBatchOperator:
    """The ``handoff__batch`` task of a batched pipeline's DAG (no retries: docs/execution.md)."""
    del on_success  # the batch runs each model task's own callbacks
    return DbtBatchOperator(task_id=batching.BATCH_TASK_ID, dag=dag, project=project, models=models,
                            pool=pool, owner=owner, retries=0, retry_delay=timedelta(seconds=30),
                            schedule=schedule, schedule_timezone=schedule_timezone)
