"""The callbacks every handoff task carries: late-completion recovery and telling people.

- models: ``on_model_success`` (record, reconcile the waiting sensors, follow up a 'blocked'
  message with 'resumed'), ``on_model_failure`` (each failed try), ``on_model_failed`` (the last
  try failed: 'blocked' messages, docs/notifications.md);
- cross-domain sensors: ``on_sensor_success`` (record the poke), ``on_sensor_failure`` (a timeout:
  'blocked' messages saying the upstream is late).

Settings, read in the task's process (docs/deployment.md):
- HANDOFF_REGISTRY_URL: the registry; without it the callback does nothing.
- the Airflow API: HANDOFF_AIRFLOW_API_URL / _USERNAME / _PASSWORD, else the Airflow connection
  ``handoff_airflow_api`` (e.g. ``http://user:password@api-host:8080``). Without either, the
  completion is recorded and `handoff reconcile` satisfies the sensors later.
Credentials are never logged. The callback never fails the task: errors are logged and left
for the sweep. Its requests use a short timeout so a dead API costs the task seconds at most.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from typing import Any

from ..airflow_api import ENV_URL, AirflowApi, AirflowApiConfig
from ..errors import HandoffError
from ..redact import get_logger

log = get_logger(__name__)

API_CONNECTION_ID = "handoff_airflow_api"
CALLBACK_TIMEOUT_S = 5.0


def api_from_settings() -> AirflowApi | None:
    """The API client from the environment, else from the Airflow connection; None if neither."""
    if os.environ.get(ENV_URL):
        config = AirflowApiConfig.from_env()
    else:
        try:
            from airflow.sdk import BaseHook

            conn = BaseHook.get_connection(API_CONNECTION_ID)
        except Exception:  # noqa: BLE001 - the connection is optional
            return None
        scheme = conn.conn_type if conn.conn_type in ("http", "https") else "http"
        port = f":{conn.port}" if conn.port else ""
        config = AirflowApiConfig(f"{scheme}://{conn.host}{port}", conn.login or "", conn.password or "")
    return AirflowApi(AirflowApiConfig(config.base_url, config.username, config.password,
                                       timeout=min(config.timeout, CALLBACK_TIMEOUT_S), attempts=2))


@contextlib.contextmanager
def _registry(what: str) -> Iterator[Any]:
    """The registry named by HANDOFF_REGISTRY_URL (None when unset) for a callback's body; any error
    in the body is logged in one line and swallowed: a callback must never fail its task."""
    url = os.environ.get("HANDOFF_REGISTRY_URL")
    if not url:
        yield None
        return
    try:
        from ..registry import Registry

        with Registry(url, must_exist=True) as registry:
            yield registry
    except HandoffError as exc:
        log.warning("handoff: %s could not finish: %s; `handoff reconcile` will catch up", what, exc.one_line())
    except Exception:
        log.exception("handoff: %s failed; `handoff reconcile` will catch up", what)


def on_model_success(context: Any) -> None:
    """Record this try's completion when others wait on the model or it has an SLA, reconcile the
    waiting sensors, follow up 'blocked' messages with 'resumed' (``events.model_completed``);
    never raises."""
    ti = context["ti"]
    dag_run = context.get("dag_run")
    with _registry("completion callback") as registry:
        if registry is None:
            return  # no registry configured
        from ..notify import events

        def api() -> Any:
            found = api_from_settings()
            if found is None:
                log.warning("handoff: no Airflow API configured (%s or connection %s): completion recorded, "
                            "`handoff reconcile` will satisfy the waiting sensors", ENV_URL, API_CONNECTION_ID)
            return found

        waits = registry.sensors_waiting_on_task(ti.dag_id, ti.task_id)
        try:
            delivery = _delivery()
        except HandoffError as exc:  # a bad HANDOFF_NOTIFY must not cost the completion and recovery
            from ..notify.delivery import Delivery

            log.warning("handoff: no 'resumed' messages: %s", exc.one_line())
            delivery = Delivery("off")
        actions, report = events.model_completed(
            registry, api() if waits else None, delivery, dag_id=ti.dag_id, task_id=ti.task_id, run_id=ti.run_id,
            logical_date=_logical_date(context), run_after=getattr(dag_run, "run_after", None),
            try_number=try_number_of(ti, default=1))
        for action in actions:
            log.info("handoff: %s.%s in %s: %s (was %s) %s", action.dag_id, action.sensor_task_id,
                     action.run_id, action.action, action.previous_state, action.detail)
        _log_report("resumed", report)


def on_model_failure(context: Any) -> None:
    """A try of a model others wait on failed (or will be retried): record it, so that an earlier
    try's completion reads as superseded (`handoff explain --at`) without asking Airflow. Never raises."""
    ti = context["ti"]
    dag_run = context.get("dag_run")
    with _registry("failure callback") as registry:
        if registry is None or not registry.sensors_waiting_on_task(ti.dag_id, ti.task_id):
            return
        from ..alignment import reference_date

        moment = _logical_date(context) or getattr(dag_run, "run_after", None)
        registry.record_completion(ti.dag_id, ti.task_id, ti.run_id,
                                   reference_date(moment, moment) if moment else None,
                                   try_number=try_number_of(ti, default=1), state="failed")


def on_model_failed(context: Any) -> None:
    """``on_failure_callback`` of a model task: its last try failed (no retry left). Records the try
    (``on_model_failure``), then tells every domain waiting on it — and its owner — that their runs
    are blocked (docs/notifications.md; once per run and channel). Never raises."""
    on_model_failure(context)
    ti = context["ti"]
    with _registry("failure notification") as registry:
        moment = _run_date(context)
        if registry is None or moment is None:
            return
        from ..notify import events

        _log_report("blocked", events.model_failed(
            registry, _delivery(), dag_id=ti.dag_id, task_id=ti.task_id, run_id=ti.run_id, logical_date=moment,
            tries=try_number_of(ti, default=1)))


# How a sensor's timeout reaches its failure callback: poke/reschedule mode raise AirflowSensorTimeout;
# a deferred sensor's timeout resumes it on a worker, which raises TaskDeferralTimeout.
SENSOR_TIMEOUTS = frozenset({"AirflowSensorTimeout", "TaskDeferralTimeout"})


def on_sensor_failure(context: Any) -> None:
    """``on_failure_callback`` of a cross-domain sensor: when it timed out waiting on its upstream,
    tell the consumers and the upstream owner that the upstream run is late (unless they were told
    about that run already). Other failures say nothing. Never raises."""
    exception = context.get("exception")
    if type(exception).__name__ not in SENSOR_TIMEOUTS:
        return
    ti = context["ti"]
    task = context.get("task")
    with _registry("late-upstream notification") as registry:
        moment = _run_date(context)
        if registry is None or moment is None:
            return
        from ..notify import events

        timeout = getattr(task, "timeout", None)
        _log_report("blocked", events.sensor_gave_up(
            registry, _delivery(), dag_id=ti.dag_id, sensor_task_id=ti.task_id, run_logical_date=moment,
            waited_s=int(timeout) if isinstance(timeout, (int, float)) and timeout > 0 else None))


def _delivery() -> Any:
    from ..notify.delivery import POST_TIMEOUT_S, Delivery

    return Delivery.from_env(timeout_s=POST_TIMEOUT_S)


def _log_report(kind: str, report: Any) -> None:
    if report.added:
        log.info("handoff: %s messages: %d added, %d posted, %d logged (dry run), %d muted, %d left for the sweep",
                 kind, report.added, report.sent, report.dry_run, report.muted, report.failed)


def _run_date(context: Any) -> Any:
    """The run's alignment date (logical date, else run_after), UTC; None when neither is known."""
    from ..alignment import reference_date

    moment = _logical_date(context) or getattr(context.get("dag_run"), "run_after", None)
    return reference_date(moment, moment) if moment is not None else None


def on_sensor_success(context: Any) -> None:
    """A cross-domain sensor saw its upstream itself: record the resolution ("poke") of this try, so
    that `handoff explain --at` can say how the run's wait ended. Never raises."""
    ti = context["ti"]
    task = context.get("task")
    dag_run = context.get("dag_run")
    with _registry("recording the sensor's resolution") as registry:
        if registry is None:
            return
        from ..recovery import find_completion

        completion = None
        moment = _logical_date(context) or getattr(dag_run, "run_after", None)
        if getattr(task, "external_dag_id", None) and moment is not None:
            completion = find_completion(registry, task.external_dag_id, task.external_task_id,
                                         task.execution_date_fn(moment))
        registry.record_resolution(ti.dag_id, ti.run_id, ti.task_id, how="poke",
                                   try_number=try_number_of(ti, default=0),
                                   completion_id=completion.id if completion else None, run_logical_date=moment)


def try_number_of(ti: Any, *, default: int) -> int:
    """The try the callback runs for: Airflow's ``try_number`` (0 for a model task the batched
    execution settled without starting it), ``default`` when absent."""
    value = getattr(ti, "try_number", None)
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else default


def _logical_date(context: Any) -> Any:
    return getattr(context.get("dag_run"), "logical_date", None) or context.get("logical_date")
