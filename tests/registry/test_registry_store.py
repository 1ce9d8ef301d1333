"""The registry store on SQLite and a real PostgreSQL: publish, replace, query, snapshot, run state,
migrations, and one-line errors for bad URLs and bad plans.

Plans come from the purpose-built dbt projects of tests/registry/projects (shop <- billing <- growth).
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from handoff.cli import main
from handoff.errors import HandoffError
from handoff.plan_model import Plan
from handoff.registry import migrations
from handoff.registry import schema as s
from handoff.registry.mesh import domain_from_plan
from handoff.registry.snapshot import Snapshot, SnapshotModel, read_snapshot
from handoff.registry.publishing import domain_rows
from handoff.registry.store import Registry
from registry_helpers import run_cli, write_plans
from support.documents import editable
from sqlalchemy import create_engine, func, inspect, select, text

BASE = ("shop", "billing", "growth")


@pytest.fixture(scope="module")
def base(plans) -> dict[str, dict]:
    return {name: plans(name) for name in BASE}


@pytest.fixture
def registry(registry_url, base):
    with Registry(registry_url) as opened:
        opened.publish(list(base.values()), label="commit-1")
        yield opened


def count(registry: Registry, table, domain: str) -> int:
    with registry.engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(table).where(table.c.domain == domain)).scalar())


# --------------------------------------------------------------------------------------
# publish / replace
# --------------------------------------------------------------------------------------

def test_publish_round_trip_gives_back_every_task_and_edge(registry, base):
    mesh = registry.mesh()
    assert sorted(mesh.domains) == sorted(BASE)
    for name, plan in base.items():
        published, expected = mesh.domains[name], domain_from_plan(plan)
        assert published.plan_sha256 == expected.plan_sha256 and published.label == "commit-1"
        assert published.pipelines == expected.pipelines  # every task, field and in-DAG edge
        assert [t.model_keys() for t in published.tasks()] == [t.model_keys() for t in expected.tasks()]
        for table in s.DOMAIN_TABLES:
            assert count(registry, table, name) == len(domain_rows(expected)[table.name])


def test_republishing_the_same_plan_changes_nothing_but_the_history(registry, base):
    [result] = registry.publish([base["billing"]], label="commit-2")
    assert not result.changed and result.previous_sha256 == result.plan_sha256
    assert registry.mesh().domains["billing"].label == "commit-1"  # the content's label stays
    history = registry.history("billing")
    assert [(h["label"], h["changed"]) for h in history] == [("commit-2", False), ("commit-1", True)]
    [forced] = registry.publish([base["billing"]], force=True)
    assert forced.changed


def test_a_new_version_replaces_the_domains_rows_and_nothing_else(registry, base, plans):
    smaller = plans("billing", {"models/refunds.sql": "select 1 as x", "models/schema.yml": (
        "version: 2\nmodels:\n  - name: invoices\n    access: public\n")})  # refunds no longer reads shop
    before = {d: count(registry, s.tasks, d) for d in BASE}
    [result] = registry.publish([smaller], label="commit-2")
    assert result.changed and result.previous_sha256 == domain_from_plan(base["billing"]).plan_sha256
    mesh = registry.mesh()
    assert mesh.domains["billing"].pipelines == domain_from_plan(smaller).pipelines
    assert mesh.domains["billing"].label == "commit-2"
    assert {d: count(registry, s.tasks, d) for d in ("shop", "growth")} == {d: before[d] for d in ("shop", "growth")}
    for table in s.DOMAIN_TABLES:
        assert count(registry, table, "billing") == len(domain_rows(domain_from_plan(smaller))[table.name])
    # who-depends-on sees the change at once: refunds no longer waits on shop.orders
    assert "refunds" not in {c.task_id for c in registry.consumers("shop", "orders", transitive=False)}


def test_a_failed_publish_changes_nothing(registry, base, plans):
    broken = editable(base["shop"])
    broken["pipelines"][0]["tasks"][0]["upstream"] = ["no_such_task"]
    broken = Plan.from_json(broken)  # typed, not checked: publish checks it
    with pytest.raises(HandoffError, match="waits on unknown task"):
        registry.publish([plans("billing"), broken])  # validation fails before any write
    assert registry.history("billing")[0]["label"] == "commit-1"


def test_two_plans_of_one_domain_in_one_publish_are_refused(registry, base):
    with pytest.raises(HandoffError, match="domain 'shop' is in two plans"):
        registry.publish([base["shop"], base["shop"]])


# --------------------------------------------------------------------------------------
# queries
# --------------------------------------------------------------------------------------

def test_consumers_direct_and_transitive_with_depth_via_and_owners(registry):
    found = {(c.domain, c.task_id): c for c in registry.consumers("shop", "orders")}
    assert set(found) == {("billing", "invoices"), ("billing", "refunds"), ("billing", "billing_summary"),
                          ("growth", "roi"), ("growth", "refund_rate")}
    invoices = found[("billing", "invoices")]
    assert (invoices.depth, invoices.direct, invoices.via, invoices.sensor_task_id) == (
        1, True, ("shop.orders",), "wait__shop__orders")
    assert (invoices.owner, invoices.slack, invoices.dag_id) == ("team-billing", "#billing-data", "billing__daily")
    summary = found[("billing", "billing_summary")]
    assert (summary.depth, summary.direct) == (1, False)
    roi = found[("growth", "roi")]
    assert (roi.depth, roi.direct, roi.via, roi.sensor_task_id, roi.available_by) == (
        2, False, ("shop.orders", "billing.invoices"), "wait__billing__invoices", "08:00")
    direct = registry.consumers("shop", "orders", transitive=False)
    assert [(c.domain, c.task_id) for c in direct] == [("billing", "invoices"), ("billing", "refunds")]


def test_consumers_of_an_upstream_model_reach_through_its_own_dag(registry):
    """stg_orders is protected and read by no other domain, but orders reads it: same consumers."""
    found = registry.consumers("shop", "stg_orders")
    assert {(c.domain, c.task_id) for c in found} >= {("billing", "invoices"), ("growth", "roi")}
    assert next(c for c in found if c.task_id == "invoices").via == ("shop.stg_orders", "shop.orders")
    assert registry.consumers("shop", "stg_orders", transitive=False) == []
    assert registry.consumers("growth", "roi") == []


def test_unknown_domain_or_model_is_a_one_line_error_with_a_suggestion(registry):
    with pytest.raises(HandoffError, match="no domain 'shops' is published — did you mean 'shop'"):
        registry.consumers("shops", "orders")
    with pytest.raises(HandoffError, match="shop publishes no model 'order' — did you mean 'orders'"):
        registry.explain("shop", "order")


def test_sensors_waiting_on_give_both_schedules(registry):
    [wait] = registry.sensors_waiting_on("shop", "orders")
    assert wait.as_dict() == {
        "downstream_domain": "billing", "dag_id": "billing__daily", "sensor_task_id": "wait__shop__orders",
        "downstream_schedule": "0 5 * * *", "upstream_domain": "shop", "upstream_model": "orders",
        "upstream_dag_id": "shop__daily", "upstream_task_id": "orders", "upstream_schedule": "0 3 * * *",
        "timeout_s": wait.timeout_s, "poke_interval_s": wait.poke_interval_s, "mode": wait.mode,
        "upstream_timezone": "UTC", "downstream_timezone": "UTC"}
    assert registry.sensors_waiting_on_task("shop__daily", "orders") == [wait]
    assert registry.sensors_waiting_on("shop", "nothing") == []
    assert registry.sensors_waiting_on_task("shop__daily", "stg_orders") == []


def test_explain_is_a_dict_of_everything_about_one_model(registry):
    info = registry.explain("billing", "billing_summary")
    assert info["domain"]["owner"] == "team-billing" and info["domain"]["label"] == "commit-1"
    assert info["pipeline"] == {"name": "daily", "dag_id": "billing__daily", "schedule": "0 5 * * *",
                                "start_date": info["pipeline"]["start_date"], "timezone": "UTC"}
    assert info["model"]["access"] == "protected" and info["upstream_tasks"] == ["invoices"]
    [wait] = info["waits_on"]
    assert (wait["sensor_task_id"], wait["direct"], wait["upstream_domain"], wait["upstream_model"]) == (
        "wait__shop__orders", False, "shop", "orders")
    assert wait["upstream"]["dag_id"] == "shop__daily" and wait["upstream"]["schedule"] == "0 3 * * *"
    assert wait["upstream"]["available_by"] == "05:30" and wait["alignment_warning"] is None
    invoices = registry.explain("billing", "invoices")
    assert [c["task_id"] for c in invoices["consumers"]] == ["roi"] and invoices["transitive_consumers"] == 1
    json.dumps(info)  # JSON-ready


def test_cli_who_depends_on_and_explain_in_text_and_json(registry, capsys):
    url = registry.url
    assert main(["who-depends-on", "shop.orders", "--registry", url]) == 0
    out = capsys.readouterr().out
    assert out.startswith("shop.orders: 5 direct and transitive consumer(s) in 2 domain(s)")
    assert "billing — owner team-billing, #billing-data" in out and "growth — owner team-growth" in out
    assert "shop.orders -> billing.invoices" in out
    assert main(["who-depends-on", "shop.orders", "--direct", "--format", "json", "--registry", url]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["count"] == 2 and [d["domain"] for d in report["domains"]] == ["billing"]
    assert main(["explain", "growth.roi", "--registry", url]) == 0
    out = capsys.readouterr().out
    assert "growth.roi  (dbt_model, access public)" in out and "billing__daily.invoices" in out
    assert "available by 08:00 UTC" in out
    assert main(["explain", "growth.roi", "--registry", url, "--format", "json"]) == 0
    assert json.loads(capsys.readouterr().out)["model"]["available_by"] == "08:00"


# --------------------------------------------------------------------------------------
# snapshot
# --------------------------------------------------------------------------------------

def test_snapshot_lists_every_model_with_dag_task_and_schedule(registry, tmp_path, capsys):
    assert main(["snapshot", "--output", f"{tmp_path}/deploy/", "--registry", registry.url]) == 0
    snapshot = read_snapshot(tmp_path / "deploy" / "registry_snapshot.json")  # validated by its schema, typed
    assert [d.name for d in snapshot.domains] == ["billing", "growth", "shop"]
    assert snapshot.lookup("shop", "orders") == SnapshotModel(
        domain="shop", model="orders", dag_id="shop__daily", task_id="orders", schedule="0 3 * * *",
        timezone="UTC", kind="dbt_model", access="public", available_by="05:30", available_within_s=None)
    models = {(m.domain, m.model) for m in snapshot.models}
    assert ("shop", "order_items") in models and not any(m.startswith("wait__") for _, m in models)
    assert not list((tmp_path / "deploy").glob(".*"))  # no temporary file left behind


# --------------------------------------------------------------------------------------
# run state
# --------------------------------------------------------------------------------------

def test_completions_and_resolutions_are_recorded_once(registry, base):
    day = datetime(2024, 3, 10, 3, tzinfo=timezone.utc)
    first = registry.record_completion("shop__daily", "orders", "scheduled__2024-03-10T03:00:00+00:00", day,
                                       completed_at=day + timedelta(hours=2))
    again = registry.record_completion("shop__daily", "orders", "scheduled__2024-03-10T03:00:00+00:00", day,
                                       source="sweep")
    assert first.created and not again.created and again.id == first.id and again.source == "callback"
    assert (first.domain, first.model, first.logical_date, first.completed_at) == (
        "shop", "orders", day, day + timedelta(hours=2))
    resolved = registry.record_resolution("billing__daily", "scheduled__2024-03-10T05:00:00+00:00",
                                          "wait__shop__orders", how="reconcile", completion_id=first.id,
                                          previous_state="failed")
    twice = registry.record_resolution("billing__daily", "scheduled__2024-03-10T05:00:00+00:00",
                                       "wait__shop__orders", how="poke", completion_id=first.id)
    assert resolved.created and not twice.created and twice.how == "reconcile"
    assert registry.completions(dag_id="shop__daily") == [first]
    assert registry.resolutions(completion_id=first.id) == [resolved]
    with pytest.raises(HandoffError, match="not 'callback' or 'sweep'"):
        registry.record_completion("a__b", "c", "r", None, source="guess")
    with pytest.raises(HandoffError, match="naive datetime"):
        registry.record_completion("a__b", "c", "r", datetime(2024, 1, 1))
    registry.publish([base["shop"]], force=True)  # run state survives a republication
    assert registry.completions(dag_id="shop__daily") == [first]


# --------------------------------------------------------------------------------------
# migrations
# --------------------------------------------------------------------------------------

def test_migrations_create_exactly_the_declared_schema_and_upgrade_is_idempotent(registry_url, capsys):
    assert main(["registry", "upgrade", "--registry", registry_url]) == 0
    assert f"upgraded to schema version {migrations.LATEST}" in capsys.readouterr().out
    assert main(["registry", "upgrade", "--registry", registry_url]) == 0
    assert "nothing to do" in capsys.readouterr().out
    engine = create_engine(registry_url.replace("postgresql://", "postgresql+psycopg2://"))
    try:
        inspector = inspect(engine)
        assert sorted(inspector.get_table_names()) == sorted(s.metadata.tables)
        for table in s.metadata.sorted_tables:
            assert [c["name"] for c in inspector.get_columns(table.name)] == [c.name for c in table.columns]
            declared = {i.name for i in table.indexes}
            assert declared <= {i["name"] for i in inspector.get_indexes(table.name)}, table.name
        with engine.connect() as conn:
            rows = conn.execute(select(s.schema_version.c.version)).scalars().all()
        assert rows == [m.version for m in migrations.MIGRATIONS]
    finally:
        engine.dispose()


def test_a_registry_newer_than_this_handoff_is_refused(registry_url):
    Registry(registry_url).close()
    engine = create_engine(registry_url.replace("postgresql://", "postgresql+psycopg2://"))
    with engine.begin() as conn:
        conn.execute(s.schema_version.insert().values(version=migrations.LATEST + 1, description="future",
                                                      applied_at=datetime.now(timezone.utc), handoff_version="9"))
    engine.dispose()
    with pytest.raises(HandoffError, match=f"schema version {migrations.LATEST + 1}, newer than this handoff"):
        Registry(registry_url)


def test_a_database_with_other_tables_is_not_turned_into_a_registry_silently(registry_url):
    engine = create_engine(registry_url.replace("postgresql://", "postgresql+psycopg2://"))
    with engine.begin() as conn:
        conn.execute(text("CREATE TABLE someone_elses (id integer)"))
    engine.dispose()
    with pytest.raises(HandoffError, match=r"holds other tables \(someone_elses\) and no handoff registry"):
        Registry(registry_url)
    with pytest.raises(HandoffError, match="is not a handoff registry"):
        Registry(registry_url, must_exist=True)
    assert main(["registry", "upgrade", "--registry", registry_url]) == 0  # explicit: allowed
    Registry(registry_url).close()


# --------------------------------------------------------------------------------------
# one-line errors, exit 2, nothing written
# --------------------------------------------------------------------------------------

def _one_line_error(done, *fragments: str) -> None:
    assert done.returncode == 2, (done.stdout, done.stderr)
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("handoff: error: "), done.stderr
    for fragment in fragments:
        assert fragment in lines[0], (fragment, lines[0])


@pytest.mark.parametrize("url, fragments", [
    ("sqlite:////nonexistent-dir/sub/registry.db", ["folder /nonexistent-dir/sub does not exist"]),
    ("mysql://u:s3cret@db/x", ["'mysql' databases are not supported", "u:***@db"]),
    ("postgres://u:s3cret@db/x", ["scheme 'postgres'", "write postgresql://"]),
    ("not a url", ["registry URL not a url is malformed", "sqlite:///"]),
    ("postgresql://alice:s3cret@127.0.0.1:1/registry", ["cannot open registry postgresql://alice:***@127.0.0.1:1/registry",
                                                        "server is running"]),
])
def test_bad_registry_urls_are_one_line_errors_naming_the_masked_url(url, fragments, base, tmp_path):
    [plan] = write_plans(tmp_path / "plans", base["shop"])
    done = run_cli("publish", str(plan), "--registry", url, cwd=tmp_path)
    _one_line_error(done, *fragments)
    assert "s3cret" not in done.stderr
    assert not Path("/nonexistent-dir").exists() and not (tmp_path / ".handoff").exists()


def test_the_url_comes_from_the_environment_and_the_default_is_local(base, tmp_path):
    [plan] = write_plans(tmp_path / "plans", base["shop"])
    done = run_cli("publish", str(plan), cwd=tmp_path, env={"HANDOFF_REGISTRY_URL": ""})
    assert done.returncode == 0, done.stderr
    assert (tmp_path / ".handoff" / "registry.db").is_file()
    done = run_cli("publish", str(plan), cwd=tmp_path,
                   env={"HANDOFF_REGISTRY_URL": f"sqlite:///{tmp_path}/elsewhere.db"})
    assert done.returncode == 0 and (tmp_path / "elsewhere.db").is_file(), done.stderr


def test_read_commands_never_create_a_registry(tmp_path):
    for args in (["explain", "shop.orders"], ["who-depends-on", "shop.orders"], ["snapshot", "-o", "out/"],
                 ["registry", "status"]):
        done = run_cli(*args, cwd=tmp_path, env={"HANDOFF_REGISTRY_URL": ""})
        _one_line_error(done, "no registry at sqlite:///.handoff/registry.db", "publish plans first")
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("content, fragment", [
    ("{not json", "not valid JSON"),
    ('{"plan_version": 2}', "plan does not match schemas/plan.schema.json"),
    ('{"plan_version": 1}', "re-compile it with `handoff compile`"),
    ('{"plan_version": 99}', "plan version 99 is newer"),
])
def test_bad_plan_files_are_one_line_errors_and_write_nothing(registry_url, base, tmp_path, content, fragment):
    good, bad = write_plans(tmp_path / "plans", base["shop"])[0], tmp_path / "plans" / "bad.plan.json"
    bad.write_text(content)
    done = run_cli("publish", str(good), str(bad), "--registry", registry_url)
    _one_line_error(done, str(bad), fragment)
    if registry_url.startswith("sqlite"):
        assert not Path(registry_url.removeprefix("sqlite:///")).exists()
    else:
        engine = create_engine(registry_url.replace("postgresql://", "postgresql+psycopg2://"))
        assert inspect(engine).get_table_names() == []
        engine.dispose()
    done = run_cli("check", str(bad), "--registry", registry_url)
    _one_line_error(done, fragment)


# --------------------------------------------------------------------------------------
# retries
# --------------------------------------------------------------------------------------

@pytest.mark.postgres
def test_a_connection_the_server_dropped_is_retried_on_a_new_one(postgres_server, postgres_database, base):
    with Registry(postgres_database) as registry:
        registry.publish([base["shop"]])
        database = postgres_database.rsplit("/", 1)[1]
        postgres_server.admin(f"SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{database}'")
        assert [c.task_id for c in registry.consumers("shop", "orders")] == []  # pooled connection was killed
        assert registry.stats.retries == 1 and "closed the connection" in registry.stats.reasons[0]


def test_transient_errors_are_retried_and_others_are_not(registry_url, monkeypatch):
    from sqlalchemy.exc import OperationalError

    from handoff.registry import engine as engines

    monkeypatch.setattr(engines, "RETRY_BASE_S", 0.001)
    calls = []

    class Busy(Exception):
        pgcode = "40001"  # serialization_failure

    def flaky(conn):  # type: ignore[no-untyped-def]
        calls.append(1)
        if len(calls) < 3:
            raise OperationalError("UPDATE ...", {}, Busy("could not serialize access"))
        return "done"

    with Registry(registry_url) as registry:
        assert registry._write(flaky, "testing") == "done" and registry.stats.retries == 2
        calls.clear()

        def broken(conn):  # type: ignore[no-untyped-def]
            calls.append(1)
            raise OperationalError("SELECT ...", {}, Exception("no such table: nowhere"))

        with pytest.raises(HandoffError, match="testing failed: no such table: nowhere — nothing was changed"):
            registry._read(broken, "testing")
        assert len(calls) == 1


def test_a_snapshot_that_does_not_match_its_schema_is_refused(tmp_path):
    from handoff.registry.snapshot import validate_snapshot, write_snapshot

    broken = {"snapshot_version": 1, "handoff_version": "0", "generated_at": "2024-01-01T00:00:00Z",
              "domains": [], "models": [{"domain": "shop", "model": "orders", "task_id": "orders"}]}
    with pytest.raises(HandoffError, match="registry_snapshot.schema.json at models/0: 'dag_id' is a required"):
        validate_snapshot(broken, "x")
    bad_name = Snapshot(1, "0", "2024-01-01T00:00:00Z", (), (
        SnapshotModel("shop", "orders\n", "shop__daily", "orders", "0 4 * * *", "dbt_model", "public", None),))
    with pytest.raises(HandoffError, match="out.json: registry snapshot does not match .* at models/0/model"):
        write_snapshot(bad_name, tmp_path / "out.json")  # a typed snapshot is checked too: names are untrusted
    assert not (tmp_path / "out.json").exists()
    (tmp_path / "bad.json").write_text("{")
    with pytest.raises(HandoffError, match="bad.json: not valid JSON"):
        read_snapshot(tmp_path / "bad.json")
