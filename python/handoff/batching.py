"""The batched execution mode's decisions, as pure functions (docs/execution.md).

No Airflow and no dbt here: the batch task (handoff.airflow.batch) feeds these functions the
run's task states and dbt's per-node events, and applies what they return.

- ``batched_models``: which model tasks of a pipeline the batch runs, and in which pool;
- ``ready``: the models of the next wave (a fixpoint over the run's states);
- ``waiting``: what the batch must wait for when nothing is ready (or that it is done);
- ``WaveTracker``: turns dbt's per-node events into one outcome per model task, as soon as the
  model and all its tests have finished;
- ``note``: the note written on a model task (Airflow keeps at most 1,000 characters).
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from .plan.graph import reachable
from .plan_model import DbtTask, PlanPipeline

BATCH_TASK_ID = "handoff__batch"
EXECUTION_MODES = ("batched", "per_task")
DEFAULT_POOL = "default_pool"
NOTE_LIMIT = 1000
# Airflow task states after which a task will not change without a person or a retry
TERMINAL = frozenset({"success", "failed", "upstream_failed", "skipped", "removed"})
_OK_TESTS = frozenset({"pass", "warn", "success"})


@dataclass(frozen=True)
class BatchModel:
    """One model/seed/snapshot task the batch runs (from its plan task)."""

    task_id: str
    unique_id: str
    select: tuple[str, ...]  # unique ids dbt builds: the node and its tests (the single-task path's)
    tests: tuple[str, ...]  # unique ids of the tests (and opted-in unit tests) placed in this task
    upstream: tuple[str, ...]  # upstream task ids (models, sensors, other tasks)
    retries: int = 0
    retry_delay_s: float = 0.0
    microbatch: bool = False  # dbt's microbatch strategy: the wave passes the run's event-time range

    @classmethod
    def from_task(cls, task: DbtTask) -> BatchModel:
        return cls(task_id=task.task_id, unique_id=task.unique_id, select=(task.unique_id, *task.tests),
                   tests=task.tests, upstream=task.upstream, retries=task.retries,
                   retry_delay_s=float(task.retry_delay_s), microbatch=task.microbatch)


def batched_models(pipeline: PlanPipeline) -> tuple[str, list[BatchModel]]:
    """(the batch's pool, the models it runs) of a pipeline whose execution is batched.

    The batch runs the dbt tasks of the pipeline's most common pool (ties: the name first in
    alphabetical order, ``default_pool`` for tasks without one): a pool limits worker slots, and
    the batch holds one slot of its pool while it runs dbt, so a model in another pool keeps its
    own task to stay limited by it."""
    dbt_tasks = pipeline.dbt_tasks()
    counts: dict[str, int] = {}
    for task in dbt_tasks:
        pool = task.pool or DEFAULT_POOL
        counts[pool] = counts.get(pool, 0) + 1
    if not counts:
        return DEFAULT_POOL, []
    pool = min(counts, key=lambda name: (-counts[name], name))
    return pool, [BatchModel.from_task(t) for t in dbt_tasks if (t.pool or DEFAULT_POOL) == pool]


def ready(models: Mapping[str, BatchModel], states: Mapping[str, str | None], *,
          not_before: Mapping[str, float] | None = None, now: float = math.inf) -> list[str]:
    """Task ids of the batched models to run in the next wave, sorted.

    A model is a candidate when its task has no state yet and no retry of it is waiting for its
    ``retry_delay`` (``not_before`` maps task id -> epoch seconds). It is ready when every upstream
    task is ``success`` or a ready model itself (dbt orders them within the wave)."""
    waiting_retry = not_before or {}
    candidates = {t for t, m in models.items()
                  if states.get(t) is None and waiting_retry.get(t, -math.inf) <= now}
    changed = True
    while changed:
        changed = False
        for task_id in sorted(candidates):
            if any(states.get(up) != "success" and up not in candidates for up in models[task_id].upstream):
                candidates.discard(task_id)
                changed = True
    return sorted(candidates)


def left_to_airflow(models: Mapping[str, BatchModel], unsettled: Iterable[str]) -> set[str]:
    """The models the batch must not run any more: ``unsettled`` (run here, state not written) and
    every batched model below them. Airflow runs the unsettled ones alone after the batch ends and
    decides about their dependants from the result; building a dependant here would read an
    upstream whose outcome Airflow does not know yet (#20 review: a dependant settled success on a
    failed upstream)."""
    below: dict[str, set[str]] = {t: set() for t in models}
    for task_id, model in models.items():
        for up in model.upstream:
            if up in below:
                below[up].add(task_id)
    return reachable((t for t in unsettled if t in models), below)


@dataclass(frozen=True)
class Waiting:
    """What keeps the batch from ending: upstream tasks it does not run that are still unfinished
    (sensors, models of another pool), and the earliest retry due (epoch seconds)."""

    tasks: tuple[str, ...] = ()
    retry_at: float | None = None

    @property
    def done(self) -> bool:
        return not self.tasks and self.retry_at is None


def waiting(models: Mapping[str, BatchModel], states: Mapping[str, str | None], *,
            not_before: Mapping[str, float] | None = None) -> Waiting:
    """When no model is ready: what could still release a batched model without a state.

    Walks up from every stateless batched model through stateless batched models; an upstream
    outside the batch that has not reached a terminal state is worth waiting for. A batched
    model with a pending retry is waited for until it is due. Anything else (an upstream failed,
    skipped...) releases nothing: Airflow settles those models (upstream_failed) itself."""
    retries = {t: at for t, at in (not_before or {}).items() if t in models and states.get(t) is None}
    tasks: set[str] = set()
    for task_id, model in models.items():
        if states.get(task_id) is not None:
            continue
        for up in model.upstream:
            if up in models:
                continue  # a batched upstream: either a pending retry (below) or settled
            if states.get(up) not in TERMINAL:
                tasks.add(up)
    return Waiting(tuple(sorted(tasks)), min(retries.values()) if retries else None)


@dataclass
class Outcome:
    """The result of one batched model task in one wave."""

    task_id: str
    status: str  # "success", "failed", or "skipped" (dbt skipped it: an upstream failed)
    message: str = ""
    execution_time_s: float = 0.0
    tests: list[tuple[str, str]] = field(default_factory=list)  # (test unique id, dbt status)
    done_at: float = 0.0  # epoch seconds when the model and its tests were all finished


class WaveTracker:
    """Collects dbt's NodeFinished events of one wave; ``finished`` returns the outcome of a
    model once the model and every test placed in its task have finished (in any order)."""

    def __init__(self, models: Iterable[BatchModel]) -> None:
        self.models = {m.unique_id: m for m in models}
        # by unique id: a custom test name may be used on several models (docs/plan.md)
        self.test_home = {test: m.unique_id for m in self.models.values() for test in m.tests}
        self.node_status: dict[str, tuple[str, str, float]] = {}
        self.test_status: dict[str, dict[str, str]] = {uid: {} for uid in self.models}
        self.test_messages: dict[str, str] = {}
        self.emitted: set[str] = set()
        self.now = 0.0

    def finished(self, unique_id: str, name: str, status: str, message: str = "",
                 execution_time_s: float = 0.0, now: float = 0.0) -> Outcome | None:
        """Record one finished dbt node (at epoch ``now``); the model's outcome if it is now complete."""
        self.now = now
        if unique_id in self.models:
            self.node_status[unique_id] = (status, message, execution_time_s)
            return self._complete(unique_id)
        home = self.test_home.get(unique_id)
        if home is None:
            return None
        self.test_status[home][unique_id] = status
        if status not in _OK_TESTS:
            self.test_messages.setdefault(home, f"test {name}: {status} {message}".strip())
        return self._complete(home)

    def _complete(self, unique_id: str, final: bool = False) -> Outcome | None:
        if unique_id in self.emitted or unique_id not in self.node_status:
            return None
        model = self.models[unique_id]
        status, message, seconds = self.node_status[unique_id]
        tests = self.test_status[unique_id]
        if status != "success":
            outcome = Outcome(model.task_id, "skipped" if status == "skipped" else "failed", message, seconds,
                              sorted(tests.items()))
        elif not final and any(name not in tests for name in model.tests):
            return None
        else:
            bad = sorted(name for name, st in tests.items() if st not in _OK_TESTS)
            outcome = Outcome(model.task_id, "failed" if bad else "success",
                              self.test_messages.get(unique_id, "") if bad else message,
                              seconds, sorted(tests.items()))
        self.emitted.add(unique_id)
        outcome.done_at = self.now
        return outcome

    def finish(self, now: float = 0.0) -> list[Outcome]:
        """After the invocation: outcomes of the models not emitted yet. A model dbt never
        reported failed (the deployed project does not match the plan); one whose tests did not
        all report is judged on what did."""
        self.now = now
        out = []
        for unique_id, model in self.models.items():
            if unique_id in self.emitted:
                continue
            if unique_id not in self.node_status:
                self.emitted.add(unique_id)
                out.append(Outcome(model.task_id, "failed",
                                   f"dbt did not run {unique_id} (the deployed project does not match the "
                                   "plan: redeploy both)", done_at=now))
                continue
            outcome = self._complete(unique_id, final=True)
            if outcome is not None:
                out.append(outcome)
        return out


def note(outcome: Outcome, *, wave: int, attempt: int, attempts: int) -> str:
    """The note on a model task the batch settled (shown in Airflow's UI), ≤ 1,000 characters."""
    from datetime import datetime, timezone

    tests = ", ".join(f"{name} {status}" for name, status in outcome.tests) or "none"
    done = datetime.fromtimestamp(outcome.done_at, timezone.utc).isoformat(timespec="milliseconds")
    head = (f"handoff batch, wave {wave}, attempt {attempt}/{attempts}: dbt {outcome.status} "
            f"in {outcome.execution_time_s:.2f} s, done {done}; tests: {tests}")
    text = head if not outcome.message or outcome.status == "success" else f"{head}\n{printable(outcome.message)}"
    return text if len(text) <= NOTE_LIMIT else text[:NOTE_LIMIT - 1] + "…"


_UNPRINTABLE = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\ud800-\udfff]")


def printable(text: str) -> str:
    """``text`` with control characters (but newline and tab) and lone surrogates written as
    ``\\xNN`` / ``\\uNNNN``: a warehouse's error may quote data holding a carriage return or an
    escape sequence, and Airflow's note (and handoff's settle route) takes printable text only."""
    return _UNPRINTABLE.sub(lambda m: f"\\x{ord(m.group()):02x}" if ord(m.group()) < 256
                            else f"\\u{ord(m.group()):04x}", text)
