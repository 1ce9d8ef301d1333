"""``Registry``: the asset registry in a database — publish plans, query the mesh, record run state.

Everything that touches the database goes through one ``Registry`` object::

    from handoff.registry import Registry

    with Registry("postgresql://handoff@db/handoff") as registry:   # or None: $HANDOFF_REGISTRY_URL / default
        registry.publish([plan])                                    # typed plans (handoff.plan_model.Plan)
        registry.consumers("marketplace", "mrt_orders")             # -> [Consumer, ...]
        registry.sensors_waiting_on("marketplace", "mrt_orders")    # -> [SensorWait, ...]
        registry.record_completion("marketplace__daily", "mrt_orders", run_id, logical_date)

Every method runs in its own transaction (retried on transient errors, see ``engine``) and raises
``HandoffError`` with a one-line message for anything the user can fix.

Over 400 lines on purpose: the one facade of every database call, each method a thin transaction
around the module that owns the work (``publishing``, ``queries``, ``overview``, ``run_state``,
``notifications``, ``slo``); a newcomer finds every operation the registry offers in one place.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar, overload

from sqlalchemy import select
from sqlalchemy.engine import Connection

from ..errors import HandoffError, has_control_character, shorten
from ..plan import load_plans, validate_plan
from ..plan_model import Plan
from . import binding, migrations, queries, readers
from . import consumers as consumers_q
from . import engine as engines
from . import explain as explain_q
from . import notifications as notes
from . import run_state as rs
from . import schema as s
from . import slo as slo_q
from .mesh import Domain, Mesh, domain_from_plan
from .notifications import Notification, SlaMiss
from .publishing import PublishResult, plan_files, rebind, replace_domain
from .queries import Consumer, SensorWait
from .run_state import Completion, Refusal, Resolution

if TYPE_CHECKING:
    from .snapshot import Snapshot
    from .views import Explained, PipelineSummary, PipelineWaits

T = TypeVar("T")


# A claim on a sensor older than this is taken over: its holder died between claim and PATCH.
CLAIM_STALE_AFTER = timedelta(minutes=2)


class Registry:
    """The asset registry at ``url`` (default: ``$HANDOFF_REGISTRY_URL``, else ``sqlite:///.handoff/registry.db``).

    ``must_exist``: the registry must already exist — no new SQLite file, no tables created in an
    empty database (what Airflow callbacks want). Opening applies pending schema migrations
    (``migrations.ensure_current``). ``read_only`` (read commands): nothing can be written, not even
    a migration (an outdated registry is refused with what to do); a read-only database role or a
    SQLite file in a read-only folder suffices (``engine.open_engine``).
    """

    def __init__(self, url: str | None = None, *, must_exist: bool = False, read_only: bool = False) -> None:
        self.url = engines.resolve_url(url)
        self.shown_url = engines.mask(self.url)
        self.read_only = read_only
        self.engine = engines.open_engine(self.url, must_exist=must_exist, read_only=read_only)
        self.stats = engines.RetryStats()
        try:
            migrations.ensure_current(self.engine, self.shown_url, must_exist=must_exist, read_only=read_only)
        except BaseException:
            self.engine.dispose()
            raise

    # -- lifecycle ------------------------------------------------------------------------
    def close(self) -> None:
        self.engine.dispose()

    def __enter__(self) -> Registry:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _read(self, work: Callable[[Connection], T], what: str) -> T:
        return engines.run(self.engine, work, write=False, what=what, shown_url=self.shown_url, stats=self.stats)

    def _write(self, work: Callable[[Connection], T], what: str) -> T:
        return engines.run(self.engine, work, write=True, what=what, shown_url=self.shown_url, stats=self.stats)

    # -- publishing -----------------------------------------------------------------------
    def publish(self, plans: Sequence[Plan], *, label: str | None = None, force: bool = False,
                origins: Sequence[str] | None = None, validate: bool = True,
                takeover_reason: str | None = None, actor: str | None = None) -> list[PublishResult]:
        """Replace each plan's domain in ONE transaction (all plans or none).

        ``plans``: typed plans (``load_plans``, ``compile_manifest``), checked against the plan
        schema and rules first, names included (``validate=False``: the caller already did, e.g.
        ``load_plans``; validation is most of the cost of a big publish). A domain whose stored plan
        has the same sha256 is left as it is (recorded in the history as unchanged) unless ``force``.
        ``label``: a commit or other source label stored with the publication.

        Binding (``registry.binding``): a new domain is bound to its plan's dbt project; a domain
        bound to another project, or a project bound to another domain, raises ``RuleViolation``
        (nothing is written) — unless ``takeover_reason`` is given: then the binding moves to the
        plan's project and the transfer is recorded (``transfers()``) with the reason and ``actor``.
        """
        if takeover_reason is not None and not takeover_reason.strip():
            raise HandoffError("a takeover needs a reason", hint="say why the domain changes dbt project (--reason)")
        origins = list(origins) if origins is not None else [f"plan #{i + 1}" for i in range(len(plans))]
        domains: dict[str, Domain] = {}
        for plan, origin in zip(plans, origins, strict=True):
            if validate:
                plan = validate_plan(plan.to_json(), origin)
            domain = domain_from_plan(plan, origin)
            if domain.name in domains:
                raise HandoffError(f"domain '{domain.name}' is in two plans ({domains[domain.name].origin}, {origin})",
                                   hint="publish one plan per domain")
            domains[domain.name] = domain
        now = datetime.now(timezone.utc)

        takeover = (takeover_reason, actor or binding.actor()) if takeover_reason is not None else None

        def work(conn: Connection) -> list[PublishResult]:
            return [replace_domain(conn, domains[name], label=label, force=force, now=now, takeover=takeover)
                    for name in sorted(domains)]  # a fixed lock order: multi-domain publishers never deadlock

        return self._write(work, f"publishing {', '.join(sorted(domains))}")

    def publish_files(self, paths: Iterable[str | Path], *, label: str | None = None,
                      force: bool = False) -> list[PublishResult]:
        """``publish`` of plan files (a folder means every *.plan.json in it)."""
        files = plan_files(paths)
        plans = load_plans(files)
        return self.publish(plans, label=label, force=force, origins=[str(f) for f in files], validate=False)

    # -- reading the mesh -----------------------------------------------------------------
    def mesh(self) -> Mesh:
        """Every published domain, pipeline and task, from one consistent snapshot."""
        return self._read(queries.load_mesh, "reading the mesh")

    def transfer(self, domain: str, to_project: str, *, reason: str, actor: str | None = None) -> dict[str, Any]:
        """Bind published ``domain`` to dbt project ``to_project`` (taking the project from the domain
        holding it, if any) and record it with ``reason`` and ``actor``; returns the history row."""
        if not binding.PROJECT_NAME.fullmatch(to_project):
            raise HandoffError(f"'{to_project}' is not a dbt project name", where="--to-project",
                               hint="letters, digits and '_', as in dbt_project.yml's name")
        if not reason.strip():
            raise HandoffError("a transfer needs a reason", where="--reason", hint="say why the domain changes project")
        who = actor or binding.actor()
        now = datetime.now(timezone.utc)

        def work(conn: Connection) -> dict[str, Any]:
            d = s.domains.c
            row = conn.execute(select(d.plan_sha256, d.dbt_project).where(d.name == domain).with_for_update()).first()
            if row is None or not row.plan_sha256:
                raise HandoffError(f"domain '{domain}' is not published", where="handoff registry transfer",
                                   hint="a domain is bound at its first publish; there is nothing to transfer")
            if row.dbt_project == to_project:
                raise HandoffError(f"domain {domain} is already bound to dbt project '{to_project}'",
                                   hint="nothing to transfer")
            rebind(conn, domain, row.dbt_project, to_project, reason=reason, actor=who, how="transfer", now=now)
            return queries.transfers(conn, domain, 1)[0]

        return self._write(work, f"transferring {domain} to dbt project {to_project}")

    def domain_of_project(self, project: str) -> str | None:
        """The domain bound to dbt project ``project``, or None (how a dbt Mesh ref finds its domain)."""
        return self._read(lambda c: queries.domain_of_project(c, project),
                          f"finding the domain of dbt project {project}")

    def project_domains(self) -> dict[str, str]:
        """dbt project -> domain for every bound project (``plan.compile_manifest(projects=...)``)."""
        return self._read(queries.project_domains, "reading the dbt project bindings")

    def transfers(self, domain: str | None = None, limit: int = 20) -> list[dict[str, Any]]:
        """Binding changes (transfers and takeovers), latest first: domain, from_project, to_project,
        reason, actor, how, transferred_at."""
        return self._read(lambda c: queries.transfers(c, domain, limit),
                          "reading the transfer history")

    def domain_names(self) -> list[str]:
        return self._read(lambda c: sorted(c.execute(select(s.domains.c.name)).scalars()), "listing domains")

    def consumers(self, domain: str, model: str, *, transitive: bool = True) -> list[Consumer]:
        """Model tasks of other domains that wait on ``domain.model``, sorted by depth, domain, dag, task.

        ``transitive=False``: only the models that read it directly (through one sensor).
        Depth counts domain boundaries crossed; ``via`` names the models crossed, from ``domain.model`` on.
        Raises HandoffError when the domain or model is not published.
        """
        return self._read(lambda c: consumers_q.consumers(c, domain, model, transitive=transitive),
                          f"finding consumers of {domain}.{model}")

    def sensors_waiting_on(self, domain: str, model: str) -> list[SensorWait]:
        """Every sensor (in any DAG) that waits on ``domain.model``, with both schedules.

        What the recovery callback needs to reconcile downstream sensors after an upstream task
        completes. Unknown models give [] (a callback must never fail because of the registry).
        """
        return self._read(lambda c: queries.sensors_waiting_on(c, domain, model),
                          f"finding sensors waiting on {domain}.{model}")

    def sensors_waiting_on_task(self, dag_id: str, task_id: str) -> list[SensorWait]:
        """``sensors_waiting_on`` for the model run by Airflow task ``dag_id.task_id`` ([] if none)."""
        return self._read(lambda c: queries.sensors_waiting_on_task(c, dag_id, task_id),
                          f"finding sensors waiting on {dag_id}.{task_id}")

    def explain(self, domain: str, model: str) -> Explained:
        """Everything about one model as a JSON-ready dict (``explain.explain``)."""
        return self._read(lambda c: explain_q.explain(c, domain, model), f"explaining {domain}.{model}")

    # -- the map and the web pages (overview.py) ----------------------------------------
    def domain_map(self) -> dict[str, Any]:
        """Domains and the cross-domain hand-overs between them (``overview.domain_map``)."""
        from . import overview

        return self._read(overview.domain_map, "reading the domain map")

    def search_models(self, text: str, limit: int = 20) -> list[dict[str, Any]]:
        """Model tasks whose name or task id contains ``text`` (``overview.search_models``).

        Raises HandoffError when ``text`` holds a control character (a NUL would cut SQLite's
        pattern short and match every model; PostgreSQL's driver refuses it)."""
        from . import overview

        if has_control_character(text):
            raise HandoffError(f"the search term {shorten(repr(text))} holds a control character",
                               hint="search for letters, digits, '_' or '.'")

        return self._read(lambda c: overview.search_models(c, text, limit),
                          "searching models")

    def pipeline_waits(self, dag_id: str) -> PipelineWaits:
        """Every sensor of one DAG in ``explain``'s ``waits_on`` shape (``overview.pipeline_waits``)."""
        from . import overview

        return self._read(lambda c: overview.pipeline_waits(c, dag_id),
                          f"reading the sensors of {dag_id}")

    def model_view(self, domain: str, model: str) -> tuple[Explained, list[Consumer],
                                                           dict[str, tuple[str, str]]]:
        """explain + every consumer + the consuming domains' teams, in one transaction (``overview.model_view``)."""
        from . import overview

        return self._read(lambda c: overview.model_view(c, domain, model),
                          f"explaining {domain}.{model}")

    def domain_pipelines(self, domain: str) -> list[PipelineSummary]:
        """A published domain's pipelines (``overview.domain_pipelines``)."""
        from . import overview

        return self._read(lambda c: overview.domain_pipelines(c, domain),
                          f"reading the pipelines of {domain}")

    def locate(self, dag_id: str, task_id: str | None = None) -> dict[str, Any]:
        """The domain (and model) behind an Airflow DAG or task (``overview.locate``)."""
        from . import overview

        return self._read(lambda c: overview.locate(c, dag_id, task_id),
                          f"locating {dag_id}")

    def snapshot(self) -> Snapshot:
        """The registry snapshot the Airflow DAG factory reads (``snapshot.build_snapshot``)."""
        from .snapshot import build_snapshot

        return build_snapshot(self.mesh())

    def teams(self, names: Iterable[str]) -> dict[str, tuple[str, str]]:
        """(owner, slack) of each named domain that is published."""
        wanted = set(names)
        return self._read(lambda c: queries._teams(c, wanted), "reading domains")

    def history(self, domain: str | None = None, limit: int = 20) -> list[dict[str, Any]]:
        """Latest publications first (all domains, or one)."""
        return self._read(lambda c: queries.history(c, domain, limit), "reading the publication history")

    def schema_version(self) -> int:
        return self._read(migrations.current_version, "reading the schema version")

    # -- run state (the recovery feature; registry/run_state.py) ---------------------------
    def record_completion(self, dag_id: str, task_id: str, run_id: str, logical_date: datetime | None, *,
                          try_number: int = 1, state: str = "success", completed_at: datetime | None = None,
                          source: str = "callback") -> Completion:
        """Record that try ``try_number`` of upstream task ``dag_id.task_id`` in run ``run_id`` ended in
        ``state`` ("success", or "failed": it supersedes an earlier try's completion). Idempotent:
        a second record of the same try returns the first one with ``created=False``.

        ``source``: "callback" (the task's own callback) or "sweep" (the periodic sweep). The task's
        domain and model are stored when the task is published.
        """
        if source not in ("callback", "sweep"):
            raise HandoffError(f"completion source '{source}' is not 'callback' or 'sweep'")
        if state not in ("success", "failed"):
            raise HandoffError(f"completion state '{state}' is not 'success' or 'failed'")
        row = {"dag_id": dag_id, "task_id": task_id, "run_id": run_id, "logical_date": _aware(logical_date),
               "completed_at": _aware(completed_at) or datetime.now(timezone.utc), "source": source,
               "try_number": _try(try_number), "state": state}
        return self._write(lambda c: rs.record_completion(c, row),
                           f"recording try {try_number} of {dag_id}.{task_id} {run_id}")

    def record_resolution(self, dag_id: str, run_id: str, sensor_task_id: str, *, how: str,
                          try_number: int = 0, completion_id: int | None = None,
                          previous_state: str | None = None, run_logical_date: datetime | None = None,
                          resolved_at: datetime | None = None) -> Resolution:
        """Record that try ``try_number`` of sensor ``dag_id.sensor_task_id`` in run ``run_id`` was
        satisfied (idempotent per sensor try; a claim in progress is left to its holder).

        ``how``: "poke" (the sensor saw the upstream itself) or "reconcile" (handoff marked it
        success through the API); ``completion_id``: the upstream completion it waited for;
        ``previous_state``: the sensor's state before (e.g. "deferred", "failed").
        """
        if how not in ("poke", "reconcile"):
            raise HandoffError(f"resolution '{how}' is not 'poke' or 'reconcile'")
        row = self._resolution_row(dag_id, run_id, sensor_task_id, how=how, try_number=try_number,
                                   completion_id=completion_id, previous_state=previous_state,
                                   run_logical_date=run_logical_date, resolved_at=resolved_at)
        return self._write(lambda c: rs.record_resolution(c, row),
                           f"recording resolution of {dag_id}.{sensor_task_id} {run_id}")

    def claim_resolution(self, dag_id: str, run_id: str, sensor_task_id: str, *, try_number: int,
                         completion_id: int | None, previous_state: str | None,
                         run_logical_date: datetime | None, stale_after: timedelta = CLAIM_STALE_AFTER,
                         ) -> Resolution | None:
        """Claim the right to satisfy this sensor try (before the PATCH): the claim, or None when
        another reconciler holds or has settled it. A claim older than ``stale_after`` is taken over.
        Settle it with ``finish_resolution``, or ``release_resolution`` when the PATCH failed."""
        row = self._resolution_row(dag_id, run_id, sensor_task_id, how="reconcile", try_number=try_number,
                                   completion_id=completion_id, previous_state=previous_state,
                                   run_logical_date=run_logical_date, resolved_at=None)
        stale_before = row["resolved_at"] - stale_after
        return self._write(lambda c: rs.claim_resolution(c, row, stale_before),
                           f"claiming {dag_id}.{sensor_task_id} {run_id}")

    def finish_resolution(self, claim: Resolution, *, how: str) -> Resolution:
        """Settle a claim: "reconcile" (our PATCH changed the sensor) or "poke" (it was already success)."""
        if how not in ("poke", "reconcile"):
            raise HandoffError(f"resolution '{how}' is not 'poke' or 'reconcile'")
        now = datetime.now(timezone.utc)
        return self._write(lambda c: rs.finish_resolution(c, claim.id, how, now),
                           f"recording resolution of {claim.dag_id}.{claim.sensor_task_id} {claim.run_id}")

    def release_resolution(self, claim: Resolution) -> None:
        """Give a claim back (the PATCH failed): the next callback or sweep may try again."""
        self._write(lambda c: rs.release_resolution(c, claim.id),
                    f"releasing the claim on {claim.dag_id}.{claim.sensor_task_id} {claim.run_id}")

    def record_refusal(self, dag_id: str, run_id: str, sensor_task_id: str, *, try_number: int, reason: str,
                       detail: str, run_logical_date: datetime | None = None, completion_id: int | None = None,
                       sensor_state: str | None = None, run_state: str | None = None, actor: str | None = None,
                       acted_at: datetime | None = None) -> Refusal:
        """Record that recovery left this sensor try alone, and why (idempotent per try and reason)."""
        row = {"dag_id": dag_id, "run_id": run_id, "sensor_task_id": sensor_task_id, "try_number": _try(try_number),
               "reason": reason, "detail": detail[:2000], "run_logical_date": _aware(run_logical_date),
               "completion_id": completion_id, "sensor_state": sensor_state, "run_state": run_state,
               "actor": actor[:250] if actor else None, "acted_at": _aware(acted_at)}
        return self._write(lambda c: rs.record_refusal(c, row),
                           f"recording why {dag_id}.{sensor_task_id} {run_id} was left alone")

    def completions(self, *, dag_id: str | None = None, task_id: str | None = None, run_id: str | None = None,
                    logical_date: datetime | None = None, limit: int = 100) -> list[Completion]:
        """Recorded tries of upstream tasks (successes and later failures), latest first."""
        when = _aware(logical_date)
        return self._read(lambda c: rs.completions(
            c, dag_id=dag_id, task_id=task_id, run_id=run_id, logical_date=when, limit=limit), "reading completions")

    def resolutions(self, *, dag_id: str | None = None, run_id: str | None = None, completion_id: int | None = None,
                    run_logical_date: datetime | None = None, limit: int = 100) -> list[Resolution]:
        """Recorded sensor resolutions (claims included), latest first."""
        when = _aware(run_logical_date)
        return self._read(lambda c: rs.resolutions(
            c, dag_id=dag_id, run_id=run_id, completion_id=completion_id, run_logical_date=when, limit=limit),
            "reading sensor resolutions")

    def refusals(self, *, dag_id: str | None = None, run_id: str | None = None,
                 run_logical_date: datetime | None = None, limit: int = 100) -> list[Refusal]:
        """Recorded refusals (sensors recovery left alone, and why), latest first."""
        when = _aware(run_logical_date)
        return self._read(lambda c: rs.refusals(
            c, dag_id=dag_id, run_id=run_id, run_logical_date=when, limit=limit), "reading sensor refusals")

    # -- messages and SLA misses (issue #15; registry/notifications.py) ---------------------
    def enqueue_notifications(self, rows: Sequence[Mapping[str, Any]]) -> list[Notification]:
        """Add messages to the outbox, each unless its (kind, subject, channel) is there already;
        returns the ones this call added (the caller posts those; the sweep posts the rest)."""
        now = datetime.now(timezone.utc)
        full = [{**row, "subject_date": _aware(row["subject_date"]), "created_at": now, "attempts": 0}
                for row in rows]
        return self._write(lambda c: notes.enqueue(c, full), "adding messages to the outbox")

    def claim_notification(self, notification_id: int, *,
                           stale_after: timedelta = CLAIM_STALE_AFTER) -> Notification | None:
        """Claim a pending message before posting it (None: held by another poster, or settled)."""
        now = datetime.now(timezone.utc)
        return self._write(lambda c: notes.claim(c, notification_id, now, now - stale_after),
                           f"claiming message {notification_id}")

    def settle_notification(self, notification_id: int, status: str, error: str | None = None) -> None:
        """After a post: "sent", "dry_run" (logged instead), or "pending" with ``error`` (retried later)."""
        if status not in ("sent", "dry_run", "pending"):
            raise HandoffError(f"message status '{status}' is not sent, dry_run or pending")
        now = datetime.now(timezone.utc)
        self._write(lambda c: notes.settle(c, notification_id, status, now, error),
                    f"settling message {notification_id}")

    def due_notifications(self, *, stale_after: timedelta = CLAIM_STALE_AFTER, limit: int = 500) -> list[int]:
        """Pending messages nobody is posting, oldest first (what the sweep retries)."""
        now = datetime.now(timezone.utc)
        return self._read(lambda c: notes.due(c, now - stale_after, limit),
                          "reading the outbox")

    def notifications(self, *, kind: str | None = None, subject_dag_id: str | None = None,
                      subject_task_id: str | None = None, subject_date: datetime | None = None,
                      status: str | None = None, since: datetime | None = None, limit: int = 100) -> list[Notification]:
        """Messages of the outbox, latest first."""
        when, after = _aware(subject_date), _aware(since)
        return self._read(lambda c: notes.notifications(
            c, kind=kind, subject_dag_id=subject_dag_id, subject_task_id=subject_task_id, subject_date=when,
            status=status, since=after, limit=limit), "reading the outbox")

    def open_blocked(self, dag_id: str, subject_date: datetime) -> list[Notification]:
        """'blocked' messages about the run of ``dag_id`` at ``subject_date`` not yet followed by 'resumed'."""
        when = _aware(subject_date)
        return self._read(lambda c: notes.blocked_open(c, dag_id, when),
                          f"reading blocked messages of {dag_id}")

    def sla_models(self, *, domain: str | None = None) -> list[dict[str, Any]]:
        """Every published model task with an SLA and its pipeline's schedule (``slo.sla_models``)."""
        return self._read(lambda c: slo_q.sla_models(c, domain=domain),
                          "reading the models with an SLA")

    def history_models(self, *, domain: str | None, model: str | None, since: datetime) -> list[dict[str, Any]]:
        """The model tasks ``handoff sla`` reports (``slo.history_models``; HandoffError: unknown name)."""
        after = _aware(since)
        return self._read(lambda c: slo_q.history_models(c, domain=domain, model=model,
                                                         since=after), "reading the models' history")

    def first_successes(self, dag_ids: Iterable[str], since: datetime,
                        until: datetime) -> dict[tuple[str, str, datetime], datetime]:
        """(dag_id, task_id, logical_date) -> end of the run's first successful try (``slo.first_successes``)."""
        after, before, dags = _aware(since), _aware(until), list(dag_ids)
        return self._read(lambda c: slo_q.first_successes(c, dags, after, before),
                          "reading completions")

    def run_slas(self, dag_id: str, logical_date: datetime,
                 task_ids: Iterable[str] | None = None) -> list[dict[str, Any]]:
        """The model tasks of ``dag_id`` with an SLA, each with its first success and recorded miss
        for the run at ``logical_date`` (``slo.run_slas``)."""
        when, wanted = _aware(logical_date), list(task_ids) if task_ids is not None else None
        return self._read(lambda c: slo_q.run_slas(c, dag_id, when, wanted),
                          f"reading the SLAs of {dag_id}")

    def task_sla(self, dag_id: str, task_id: str) -> dict[str, Any] | None:
        """The SLA of one model task, or None (``slo.task_sla``)."""
        return self._read(lambda c: slo_q.task_sla(c, dag_id, task_id),
                          f"reading the SLA of {dag_id}.{task_id}")

    def reading_dags(self, targets: Iterable[tuple[str, str]]) -> list[dict[str, Any]]:
        """The consumer DAGs waiting on each of ``targets`` (``slo.reading_dags``)."""
        wanted = list(targets)
        return self._read(lambda c: slo_q.reading_dags(c, wanted),
                          "reading the consumers of the models")

    def audience(self, dag_id: str, task_id: str) -> dict[str, Any] | None:
        """Who hears about task ``dag_id.task_id`` and what the message needs (``notifications.audience``)."""
        return self._read(lambda c: notes.audience(c, dag_id, task_id),
                          f"finding who reads {dag_id}.{task_id}")

    def audiences(self, targets: Iterable[tuple[str, str]]) -> dict[tuple[str, str], dict[str, Any]]:
        """``audience`` of many (dag_id, task_id) at once, from one snapshot, with one set-based reader
        lookup instead of one lineage walk per task (``readers.audiences``: the SLA watch's misses)."""
        wanted = list(targets)
        return self._read(lambda c: readers.audiences(c, wanted), f"finding who reads {len(wanted)} model task(s)")

    def sensor_target(self, dag_id: str, sensor_task_id: str) -> dict[str, Any] | None:
        """The upstream task a sensor waits on (``notifications.sensor_target``), or None."""
        return self._read(lambda c: notes.sensor_target(c, dag_id, sensor_task_id),
                          f"resolving sensor {dag_id}.{sensor_task_id}")

    def task_ancestors(self, dag_id: str, task_id: str) -> set[str]:
        """Every task of ``dag_id`` upstream of ``task_id``."""
        return self._read(lambda c: notes.ancestors(c, dag_id, task_id),
                          f"reading the upstream tasks of {dag_id}.{task_id}")

    def record_sla_miss(self, *, dag_id: str, task_id: str, logical_date: datetime, domain: str, model: str | None,
                        sla: str, deadline: datetime, state_at_deadline: str,
                        completed_at: datetime | None = None) -> SlaMiss:
        """Record that this model run passed its SLA deadline without success (idempotent per run)."""
        row = {"dag_id": dag_id, "task_id": task_id, "logical_date": _aware(logical_date), "domain": domain,
               "model": model, "sla": sla[:100], "deadline": _aware(deadline),
               "detected_at": datetime.now(timezone.utc), "state_at_deadline": state_at_deadline[:40],
               "completed_at": _aware(completed_at)}
        return self._write(lambda c: notes.record_miss(c, row),
                           f"recording the SLA miss of {dag_id}.{task_id}")

    def record_sla_misses(self, misses: Sequence[Mapping[str, Any]]) -> list[SlaMiss]:
        """``record_sla_miss`` for many runs in one transaction (each mapping: its keyword arguments);
        the SlaMiss of each, in order, ``created`` False for a run recorded before."""
        now = datetime.now(timezone.utc)
        rows = [{"dag_id": m["dag_id"], "task_id": m["task_id"], "logical_date": _aware(m["logical_date"]),
                 "domain": m["domain"], "model": m.get("model"), "sla": str(m["sla"])[:100],
                 "deadline": _aware(m["deadline"]), "detected_at": now,
                 "state_at_deadline": str(m["state_at_deadline"])[:40], "completed_at": _aware(m.get("completed_at"))}
                for m in misses]
        return self._write(lambda c: [notes.record_miss(c, row) for row in rows],
                           f"recording {len(rows)} SLA miss(es)")

    def complete_sla_miss(self, dag_id: str, task_id: str, logical_date: datetime, completed_at: datetime) -> bool:
        """A missed run's model succeeded at ``completed_at`` (recorded once; True if now)."""
        when, done = _aware(logical_date), _aware(completed_at)
        return self._write(lambda c: notes.complete_miss(c, dag_id, task_id, when, done),
                           f"recording the completion of {dag_id}.{task_id}")

    def sla_misses(self, *, dag_ids: Iterable[str] | None = None, domain: str | None = None,
                   since: datetime | None = None, limit: int | None = 1000) -> list[SlaMiss]:
        """Recorded SLA misses, latest run first (``limit`` None: all)."""
        after = _aware(since)
        wanted = list(dag_ids) if dag_ids is not None else None
        return self._read(lambda c: notes.misses(c, dag_ids=wanted, domain=domain, since=after,
                                                 limit=limit), "reading SLA misses")

    @staticmethod
    def _resolution_row(dag_id: str, run_id: str, sensor_task_id: str, *, how: str, try_number: int,
                        completion_id: int | None, previous_state: str | None, run_logical_date: datetime | None,
                        resolved_at: datetime | None) -> dict[str, Any]:
        return {"dag_id": dag_id, "run_id": run_id, "sensor_task_id": sensor_task_id, "how": how,
                "try_number": _try(try_number), "completion_id": completion_id, "previous_state": previous_state,
                "run_logical_date": _aware(run_logical_date),
                "resolved_at": _aware(resolved_at) or datetime.now(timezone.utc)}


@overload
def _aware(moment: datetime) -> datetime: ...
@overload
def _aware(moment: None) -> None: ...
@overload
def _aware(moment: datetime | None) -> datetime | None: ...
def _aware(moment: datetime | None) -> datetime | None:
    if moment is None:
        return None
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise HandoffError(f"naive datetime {moment.isoformat()}", hint="pass an aware datetime (UTC)")
    return moment.astimezone(timezone.utc)


def _try(number: int) -> int:
    if isinstance(number, bool) or not isinstance(number, int) or number < 0:
        raise HandoffError(f"try number {number!r} is not a whole number >= 0")
    return number
