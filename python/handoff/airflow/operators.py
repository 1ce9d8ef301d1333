"""The curated building blocks every generated DAG is made of.

Four task kinds, all ours: dbt model / seed / snapshot (one class, DbtNodeOperator) and the
cross-domain sensor. None of them has template fields: names and meta values from a manifest
are never rendered as Jinja by Airflow, and never become code.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta, timezone
from typing import Any

from airflow.providers.standard.sensors.external_task import ExternalTaskSensor
from airflow.sdk import BaseOperator

from ..alignment import upstream_logical_date
from ..errors import HandoffError
from ..redact import redact
from ..run_interval import conf_vars, interval_of_run
from .dbt_runner import DbtNodeFailed, DbtProject, run_hooks, run_node


class HandoffTaskFailed(RuntimeError):
    """A handoff task could not do its work; the message says why and what to do."""


class DbtNodeOperator(BaseOperator):
    """`dbt build` of one model, seed or snapshot and the tests attached to it (docs/plan.md)."""

    template_fields: Sequence[str] = ()
    ui_color = "#ff694b"
    ui_fgcolor = "#ffffff"

    # No __init__ of its own, on purpose: Airflow wraps every operator class's __init__ in its
    # apply_defaults machinery, and a second wrapper made building this task ~40% dearer than an
    # EmptyOperator (docs/benchmarks.md). Build it with ``for_node``.
    project: DbtProject
    unique_id: str
    tests: tuple[str, ...] = ()
    schedule: str = "@daily"  # the pipeline's, for the run's data interval (handoff.run_interval)
    schedule_timezone: str = "UTC"
    microbatch: bool = False

    @classmethod
    def for_node(cls, *, project: DbtProject, unique_id: str, tests: Sequence[str], schedule: str,
                 schedule_timezone: str = "UTC", microbatch: bool = False, **kwargs: Any) -> DbtNodeOperator:
        """The task of one dbt node and its tests (unique ids, from the plan) of a pipeline on
        ``schedule`` (read in ``schedule_timezone``); ``kwargs`` are BaseOperator's (task_id, dag,
        retries...)."""
        task = cls(**kwargs)
        # plain attributes, not Airflow's: past BaseOperator.__setattr__ (converters, template-field
        # and init-kwarg bookkeeping that none of these has), ~8% of building a task
        object.__setattr__(task, "project", project)
        object.__setattr__(task, "unique_id", unique_id)
        object.__setattr__(task, "tests", tuple(tests))
        object.__setattr__(task, "schedule", schedule)
        object.__setattr__(task, "schedule_timezone", schedule_timezone)
        object.__setattr__(task, "microbatch", microbatch)
        return task

    def execute(self, context: Any) -> list[str]:
        dag_run = context.get("dag_run")
        try:
            run = interval_of_run(dag_run, self.schedule, self.schedule_timezone)
            self.log.info("run %s: data interval %s to %s%s", run.run_id, run.start.isoformat(), run.end.isoformat(),
                          " (microbatch: exactly these event times)" if self.microbatch else "")
            results = run_node(self.project, unique_id=self.unique_id, tests=self.tests,
                               dbt_vars=conf_vars(getattr(dag_run, "conf", None)), run=run,
                               microbatch=self.microbatch)
        except HandoffError as exc:  # bad conf vars; the deployed artefact is missing, stale or foreign
            raise HandoffTaskFailed(exc.one_line()) from None
        except DbtNodeFailed as exc:
            raise HandoffTaskFailed(redact(str(exc))) from None
        for r in results:
            self.log.info("%s: %s %s", r.unique_id, r.status, r.message)
        return [r.unique_id for r in results]


class DbtHooksOperator(BaseOperator):
    """A dbt project's on-run-start (or on-run-end) hooks, once per DAG run: the DAG's setup (or
    teardown) task. The dbt tasks of the DAG run their nodes without hooks (docs/plan.md)."""

    template_fields: Sequence[str] = ()
    ui_color = "#ffb000"

    def __init__(self, *, project: DbtProject, hook_ids: Sequence[str], node_ids: Sequence[str] = (),
                 schedule: str = "@daily", schedule_timezone: str = "UTC", **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.project = project
        self.hook_ids = tuple(hook_ids)
        self.node_ids = tuple(node_ids)
        self.schedule = schedule  # the pipeline's, for the run's data interval (handoff.run_interval)
        self.schedule_timezone = schedule_timezone

    def execute(self, context: Any) -> list[str]:
        dag_run = context.get("dag_run")
        try:
            run = interval_of_run(dag_run, self.schedule, self.schedule_timezone)
            run_hooks(self.project, hook_ids=self.hook_ids, node_ids=self.node_ids,
                      dbt_vars=conf_vars(getattr(dag_run, "conf", None)), run=run)
        except HandoffError as exc:  # bad conf vars; the deployed artefact is missing, stale or foreign
            raise HandoffTaskFailed(exc.one_line()) from None
        except DbtNodeFailed as exc:
            raise HandoffTaskFailed(str(exc)) from None
        return list(self.hook_ids)


class AlignTo:
    """execution_date_fn of a sensor: the upstream run a downstream logical date waits for
    (the upstream's ticks in the upstream pipeline's timezone)."""

    def __init__(self, upstream_schedule: str, upstream_timezone: str = "UTC") -> None:
        self.upstream_schedule = upstream_schedule
        self.upstream_timezone = upstream_timezone

    def __call__(self, logical_date: datetime, **_: Any) -> datetime:
        return upstream_logical_date(logical_date, self.upstream_schedule, self.upstream_timezone)


class CrossDomainSensor(ExternalTaskSensor):
    """Waits for one upstream task (another domain's model, or another pipeline's) on the aligned
    logical date. Resolved from the registry snapshot; see docs/alignment.md for the date rule."""

    ui_color = "#7b61ff"

    def __init__(self, *, upstream_domain: str, upstream_model: str, upstream_dag_id: str,
                 upstream_task_id: str, upstream_schedule: str, upstream_timezone: str = "UTC",
                 **kwargs: Any) -> None:
        super().__init__(
            external_dag_id=upstream_dag_id,
            external_task_id=upstream_task_id,
            execution_date_fn=AlignTo(upstream_schedule, upstream_timezone),
            allowed_states=["success"],
            **kwargs,
        )
        self.upstream_domain = upstream_domain
        self.upstream_model = upstream_model
        self.upstream_schedule = upstream_schedule
        self.upstream_timezone = upstream_timezone


class UnresolvedUpstream(BaseOperator):
    """Stands where a sensor's upstream is not in the registry snapshot: fails with what to do,
    so the rest of the DAG (everything not reading that source) still runs."""

    template_fields: Sequence[str] = ()
    ui_color = "#d9534f"

    def __init__(self, *, upstream_domain: str, upstream_model: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.upstream_domain = upstream_domain
        self.upstream_model = upstream_model

    def execute(self, context: Any) -> None:
        raise HandoffTaskFailed(
            f"upstream {self.upstream_domain}.{self.upstream_model} is not in the registry snapshot: "
            f"publish {self.upstream_domain}'s plan (`handoff publish`), re-export the snapshot "
            "(`handoff snapshot`) and check this plan (`handoff check`)")


class ReconcileOperator(BaseOperator):
    """The maintenance sweep (`handoff reconcile`) as a task: catches completions whose callback
    never reached the API, and upstream tasks fixed by hand (their callback never runs)."""

    template_fields: Sequence[str] = ()
    ui_color = "#f0ad4e"

    def __init__(self, *, registry_url: str, lookback: timedelta, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.registry_url = registry_url
        self.lookback = lookback

    def execute(self, context: Any) -> int:
        from ..notify import sla_watch
        from ..notify.delivery import Delivery
        from ..notify.events import sweep as notify_sweep
        from ..recovery import sweep
        from ..registry import Registry
        from .callbacks import api_from_settings

        api = api_from_settings()
        if api is None:
            raise HandoffTaskFailed("no Airflow API configured: set HANDOFF_AIRFLOW_API_URL/_USERNAME/_PASSWORD "
                                    "or the connection handoff_airflow_api")
        since = datetime.now(timezone.utc) - self.lookback
        with Registry(self.registry_url, must_exist=True) as registry:
            actions = sweep(registry, api, since=since)
            try:
                delivery = Delivery.from_env()
                messages = notify_sweep(registry, api, delivery, since=since)
                self.log.info("messages: %s", messages.as_dict())
                slas = sla_watch.check(registry, api, delivery, lookback=self.lookback)
                self.log.info("SLA check (safety net of the watch): %s", slas.as_dict(listed=sla_watch.LOGGED))
            except HandoffError as exc:
                self.log.warning("messages not swept: %s", exc.one_line())
        for action in actions:
            self.log.info("%s %s.%s in %s (was %s; upstream %s)", action.action, action.dag_id,
                          action.sensor_task_id, action.run_id, action.previous_state, action.upstream)
        return sum(1 for a in actions if a.action == "satisfied")


class SlaWatchOperator(BaseOperator):
    """The SLA watch (docs/notifications.md, "SLA monitoring"): checks every model run whose SLA
    deadline has passed, then sleeps in the triggerer (no worker slot) until the next deadline and
    checks again — until the end of its window (its run's start + ``window``), when the next run of
    the watch DAG takes over. Each wake costs one short task process; nothing is added to the
    pipelines' own DAG runs."""

    template_fields: Sequence[str] = ()
    ui_color = "#e056fd"
    GRACE = timedelta(seconds=2)  # wake just after the deadline: a success at the deadline is recorded

    def __init__(self, *, registry_url: str, window: timedelta, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.registry_url = registry_url
        self.window = window

    def execute(self, context: Any) -> dict[str, Any]:
        return self.watch(context)

    def watch(self, context: Any, event: Any = None) -> dict[str, Any]:
        from ..notify import sla_watch
        from ..notify.delivery import Delivery
        from ..registry import Registry
        from .callbacks import api_from_settings

        dag_run = context.get("dag_run")
        started = getattr(dag_run, "run_after", None) or datetime.now(timezone.utc)
        window_end = started.astimezone(timezone.utc) + self.window
        now = datetime.now(timezone.utc)
        with Registry(self.registry_url, must_exist=True) as registry:
            report = sla_watch.check(registry, api_from_settings(), Delivery.from_env(), now=now)
            wake = sla_watch.wake_at(registry, now)
        for miss in report.missed[:sla_watch.LOGGED]:
            self.log.warning("SLA missed: %s", miss)
        if len(report.missed) > sla_watch.LOGGED:
            self.log.warning("SLA missed: and %d more (handoff sla)", len(report.missed) - sla_watch.LOGGED)
        self.log.info("checked %d run(s): %d met, %d missed (new), %d known; %d API call(s); messages %s",
                      report.checked, report.met, len(report.missed), report.known, report.api_calls,
                      report.messages.as_dict())
        if wake is None or wake + self.GRACE >= window_end:
            self.log.info("next deadline %s is after this watch's window (%s): the next run takes over",
                          wake, window_end)
            return report.as_dict(listed=sla_watch.LOGGED)
        from airflow.providers.standard.triggers.temporal import DateTimeTrigger

        self.log.info("sleeping until the next deadline, %s", wake.isoformat())
        self.defer(trigger=DateTimeTrigger(moment=wake + self.GRACE), method_name="watch")  # raises: resumes in watch
