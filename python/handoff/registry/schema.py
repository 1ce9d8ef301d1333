"""The registry's tables as they are after the latest migration (SQLAlchemy Core).

Queries use these objects; ``migrations.py`` creates and changes the tables. Change both together:
add a migration for every change here, never edit an applied one (a test compares the two).

Rows of a domain (pipelines, tasks, task_edges, cross_edges, lineage) are replaced together when
the domain is published. ``lineage`` is derived from the others, for ``who-depends-on``: one
table, one index, so one recursive query walks the whole mesh (docs/registry.md).
"""

from __future__ import annotations

from sqlalchemy import (
    Boolean,
    CheckConstraint,
    Column,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    text,
)

metadata = MetaData()

schema_version = Table(
    "schema_version", metadata,
    Column("version", Integer, primary_key=True, autoincrement=False),
    Column("description", Text, nullable=False),
    Column("applied_at", DateTime(timezone=True), nullable=False),
    Column("handoff_version", String(64), nullable=False),
)

domains = Table(
    "domains", metadata,
    Column("name", String(64), primary_key=True),
    Column("owner", Text, nullable=False),
    Column("slack", String(100), nullable=False),
    Column("description", Text, nullable=False, default=""),
    Column("project", Text, nullable=False),
    Column("dbt_version", String(64), nullable=False),
    Column("handoff_version", String(64), nullable=False),
    Column("plan_sha256", String(64), nullable=False),
    Column("manifest_sha256", String(64), nullable=False),
    Column("label", Text),  # commit or other source label given to `handoff publish --label`
    Column("published_at", DateTime(timezone=True), nullable=False),
    Column("task_count", Integer, nullable=False),
    # The dbt project the domain is bound to (its first publish; changed only by a logged transfer):
    # publishing the domain from another project is refused. One project, one domain (unique), so a
    # dbt project name maps to its domain (queries.domain_of_project; dbt Mesh refs, issue #11).
    Column("dbt_project", String(128)),
    Column("bound_at", DateTime(timezone=True)),
    # JSON list of the message kinds the domain muted for its channels (handoff_domain.mute; migration 6)
    Column("mute", Text),
    Index("uq_domains_dbt_project", "dbt_project", unique=True),
)

pipelines = Table(
    "pipelines", metadata,
    Column("dag_id", String(200), primary_key=True),
    Column("domain", String(64), ForeignKey("domains.name"), nullable=False),
    Column("name", String(64), nullable=False),
    Column("schedule", String(200), nullable=False),
    Column("start_date", String(10), nullable=False),
    Column("description", Text, nullable=False, default=""),
    Column("timezone", String(64), nullable=False, server_default="UTC"),  # IANA name (migration 7)
    UniqueConstraint("domain", "name", name="uq_pipelines_domain_name"),
)

tasks = Table(
    "tasks", metadata,
    Column("dag_id", String(200), primary_key=True),
    Column("task_id", String(250), primary_key=True),
    Column("domain", String(64), ForeignKey("domains.name"), nullable=False),
    Column("kind", String(20), nullable=False),  # dbt_model | dbt_seed | dbt_snapshot | sensor
    Column("model", Text),  # the dbt name; NULL for sensors
    Column("unique_id", Text),
    Column("relation", Text),
    Column("access", String(20)),  # public | protected | private; NULL for sensors
    Column("owner", Text),
    Column("slack", String(100)),
    Column("available_by", String(5)),  # HH:MM in the pipeline's timezone
    Column("columns", Text),  # JSON {"from", "list"}: the model's columns as published (migration 2)
    Column("available_within_s", Integer),  # SLA in seconds after the run's scheduled time (migration 7)
    Index("ix_tasks_domain_model", "domain", "model"),
)

task_edges = Table(
    "task_edges", metadata,
    Column("dag_id", String(200), primary_key=True),
    Column("upstream_task_id", String(250), primary_key=True),
    Column("downstream_task_id", String(250), primary_key=True),
    Column("domain", String(64), ForeignKey("domains.name"), nullable=False),
    Index("ix_task_edges_downstream", "dag_id", "downstream_task_id"),
    Index("ix_task_edges_domain", "domain"),
)

cross_edges = Table(
    "cross_edges", metadata,
    Column("dag_id", String(200), primary_key=True),  # the downstream DAG
    Column("sensor_task_id", String(250), primary_key=True),
    Column("domain", String(64), ForeignKey("domains.name"), nullable=False),  # the downstream domain
    Column("upstream_domain", String(64), nullable=False),
    Column("upstream_model", Text, nullable=False),  # a model key (docs/registry.md)
    Column("sources", Text, nullable=False),  # JSON list of dbt source unique_ids ([] for a ref's sensor)
    Column("timeout_s", Integer),
    Column("poke_interval_s", Integer),
    Column("mode", String(20)),
    Column("reads", Text),  # JSON: downstream task id -> upstream columns it reads (migration 2)
    Column("refs", Text),  # JSON list of the other dbt project's node ids (cross-project refs; migration 3)
    Column("accept", Text, nullable=False, server_default="[]"),  # JSON [[code, reason]] (migration 7)
    Index("ix_cross_edges_upstream", "upstream_domain", "upstream_model"),
    Index("ix_cross_edges_domain", "domain"),
)

# Derived, for traversal: nodes are (ns, id) with ns a dag_id (id: a task id) or '@<domain>'
# (id: a model key). kind 'task': an in-DAG edge; 'export': a model task -> its model key;
# 'sensor': a model key -> the sensor waiting on it.
lineage = Table(
    "lineage", metadata,
    Column("src_ns", String(200), primary_key=True),
    Column("src_id", String(250), primary_key=True),
    Column("dst_ns", String(200), primary_key=True),
    Column("dst_id", String(250), primary_key=True),
    Column("kind", String(10), nullable=False),
    Column("domain", String(64), ForeignKey("domains.name"), nullable=False),  # whose publication wrote it
    Index("ix_lineage_domain", "domain"),
    # who exports a model key, and how many tasks do (model_tasks, sensors_waiting_on_task): an
    # indexed lookup instead of a scan of the domain's tasks (migration 8)
    Index("ix_lineage_dst", "dst_ns", "dst_id"),
)

publications = Table(
    "publications", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("domain", String(64), nullable=False),
    Column("published_at", DateTime(timezone=True), nullable=False),
    Column("plan_sha256", String(64), nullable=False),
    Column("manifest_sha256", String(64), nullable=False),
    Column("handoff_version", String(64), nullable=False),
    Column("label", Text),
    Column("task_count", Integer, nullable=False),
    Column("changed", Boolean, nullable=False),  # False: the same plan was published again
    Index("ix_publications_domain", "domain", "published_at"),
)

# One row per finished try of an upstream task that other domains wait on (migration 5 made it
# per try): state 'success' is a completion; a later try of the same task instance supersedes it
# (docs/recovery.md). Rows of migration 1 became try 1.
completions = Table(
    "completions", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("dag_id", String(200), nullable=False),  # the upstream task's DAG
    Column("task_id", String(250), nullable=False),
    Column("run_id", String(250), nullable=False),
    Column("logical_date", DateTime(timezone=True)),
    Column("completed_at", DateTime(timezone=True), nullable=False),  # when the try ended
    Column("source", String(10), nullable=False),
    Column("domain", String(64)),  # the task's domain and model when recorded, if published
    Column("model", Text),
    Column("recorded_at", DateTime(timezone=True), nullable=False),
    Column("try_number", Integer, nullable=False, server_default=text("1")),
    Column("state", String(10), nullable=False, server_default=text("'success'")),
    UniqueConstraint("dag_id", "task_id", "run_id", "try_number", name="uq_completions_try"),
    CheckConstraint("source IN ('callback', 'sweep')", name="ck_completions_source"),
    CheckConstraint("state IN ('success', 'failed')", name="ck_completions_state"),
    Index("ix_completions_model", "domain", "model"),
    Index("ix_completions_task_date", "dag_id", "task_id", "logical_date"),
)

# A downstream sensor satisfied, one row per try of the sensor. handoff claims the row (status
# 'claimed') before its PATCH, so racing callbacks and sweeps send one PATCH (docs/recovery.md).
sensor_resolutions = Table(
    "sensor_resolutions", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("dag_id", String(200), nullable=False),  # the downstream DAG
    Column("run_id", String(250), nullable=False),
    Column("sensor_task_id", String(250), nullable=False),
    Column("completion_id", Integer, ForeignKey("completions.id")),
    Column("how", String(10), nullable=False),
    Column("previous_state", String(40)),
    Column("resolved_at", DateTime(timezone=True), nullable=False),
    Column("try_number", Integer, nullable=False, server_default=text("0")),  # the sensor's try
    Column("run_logical_date", DateTime(timezone=True)),  # the downstream run's (explain --at)
    Column("status", String(10), nullable=False, server_default=text("'done'")),
    UniqueConstraint("dag_id", "run_id", "sensor_task_id", "try_number", name="uq_sensor_resolutions_try"),
    CheckConstraint("how IN ('poke', 'reconcile')", name="ck_sensor_resolutions_how"),
    CheckConstraint("status IN ('claimed', 'done')", name="ck_sensor_resolutions_status"),
    Index("ix_sensor_resolutions_completion", "completion_id"),
    Index("ix_sensor_resolutions_run", "dag_id", "run_logical_date"),
)

# A sensor recovery left alone, and why (a person skipped it, a person marked its run failed, it
# failed by an error rather than its timeout...): what `explain --at` says. One row per sensor try
# and reason, so a sweep repeating the same decision records nothing new.
sensor_refusals = Table(
    "sensor_refusals", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("dag_id", String(200), nullable=False),  # the downstream DAG
    Column("run_id", String(250), nullable=False),
    Column("run_logical_date", DateTime(timezone=True)),
    Column("sensor_task_id", String(250), nullable=False),
    Column("try_number", Integer, nullable=False),
    Column("completion_id", Integer, ForeignKey("completions.id")),
    Column("sensor_state", String(40)),
    Column("run_state", String(40)),
    Column("reason", String(30), nullable=False),  # a code: recovery_rule.REASONS
    Column("detail", Text, nullable=False),  # the sentence explain prints
    Column("actor", String(250)),  # the Airflow user whose decision it respects, if a person's
    Column("acted_at", DateTime(timezone=True)),  # when that person acted (Airflow's event log)
    Column("recorded_at", DateTime(timezone=True), nullable=False),
    UniqueConstraint("dag_id", "run_id", "sensor_task_id", "try_number", "reason",
                     name="uq_sensor_refusals_try_reason"),
    Index("ix_sensor_refusals_run", "dag_id", "run_logical_date"),
)

# Messages handoff sends (docs/notifications.md): an outbox. One row per (kind, subject, channel):
# the subject is the upstream task instance a message is about (dag, task, run's logical date), so a
# retry storm, duplicate callbacks or 50 blocked sensors insert it once (ON CONFLICT DO NOTHING).
# Delivery claims a pending row (claimed_at), posts, then marks it sent; a failed post leaves it
# pending for the sweep. Muted and dry-run messages are recorded with that status, never posted.
notifications = Table(
    "notifications", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("kind", String(20), nullable=False),  # blocked | resumed | sla_miss
    Column("subject_dag_id", String(200), nullable=False),
    Column("subject_task_id", String(250), nullable=False),
    Column("subject_date", DateTime(timezone=True), nullable=False),  # the subject run's logical date
    Column("subject_run_id", String(250)),
    Column("channel", String(100), nullable=False),
    Column("domain", String(64), nullable=False),  # whose channel it is
    Column("roles", String(40), nullable=False),  # owner, consumer or owner+consumer: why this channel hears it
    Column("text", Text, nullable=False),  # the plain-text fallback
    Column("blocks", Text, nullable=False),  # JSON: Slack Block Kit blocks
    Column("status", String(10), nullable=False),
    Column("attempts", Integer, nullable=False, server_default=text("0")),
    Column("last_error", Text),  # redacted
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("claimed_at", DateTime(timezone=True)),
    Column("sent_at", DateTime(timezone=True)),
    UniqueConstraint("kind", "subject_dag_id", "subject_task_id", "subject_date", "channel",
                     name="uq_notifications_subject_channel"),
    CheckConstraint("kind IN ('blocked', 'resumed', 'sla_miss')", name="ck_notifications_kind"),
    CheckConstraint("status IN ('pending', 'sent', 'muted', 'dry_run', 'failed')", name="ck_notifications_status"),
    Index("ix_notifications_subject", "subject_dag_id", "subject_date"),
    Index("ix_notifications_status", "status", "created_at"),
)

# A model run that passed its SLA deadline without the model's success (docs/notifications.md):
# one row per (dag, task, run's logical date), and when the model eventually completed.
sla_misses = Table(
    "sla_misses", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("dag_id", String(200), nullable=False),
    Column("task_id", String(250), nullable=False),
    Column("logical_date", DateTime(timezone=True), nullable=False),
    Column("domain", String(64), nullable=False),
    Column("model", Text),
    Column("sla", String(100), nullable=False),  # as the YAML says it: "available_by 06:30 Europe/Berlin"
    Column("deadline", DateTime(timezone=True), nullable=False),
    Column("detected_at", DateTime(timezone=True), nullable=False),
    Column("state_at_deadline", String(40), nullable=False),  # no_run | not_started | running | failed | ...
    Column("completed_at", DateTime(timezone=True)),  # the model's eventual success (NULL: not yet)
    UniqueConstraint("dag_id", "task_id", "logical_date", name="uq_sla_misses_run"),
    Index("ix_sla_misses_domain", "domain", "logical_date"),
)

# Every change of a domain's binding to a dbt project (docs/registry.md, "Trust model"): kept forever.
domain_transfers = Table(
    "domain_transfers", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("domain", String(64), nullable=False),
    Column("from_project", String(128)),  # NULL: the domain was not bound
    Column("to_project", String(128), nullable=False),
    Column("reason", Text, nullable=False),
    Column("actor", Text, nullable=False),  # who asked: $HANDOFF_ACTOR, else the OS user
    Column("how", String(20), nullable=False),  # transfer (handoff registry transfer) | takeover (publish --takeover)
    Column("transferred_at", DateTime(timezone=True), nullable=False),
    CheckConstraint("how IN ('transfer', 'takeover')", name="ck_domain_transfers_how"),
    Index("ix_domain_transfers_domain", "domain", "transferred_at"),
)

# The tables holding one domain's published rows, in the order they are deleted.
DOMAIN_TABLES = (lineage, cross_edges, task_edges, tasks, pipelines)
