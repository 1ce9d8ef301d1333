"""A domain is bound to the dbt project of its first publish; only a logged transfer moves it
(issue #12). Every test runs on SQLite and on PostgreSQL."""

from __future__ import annotations

import json
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytest
from registry_helpers import run_cli, write_plans
from sqlalchemy import create_engine, delete, insert, update

from handoff.errors import HandoffError, RuleViolation
from handoff.registry import Registry
from handoff.registry import schema as s
from handoff.plan_model import Plan
from support.documents import editable

SHOP_YML = (Path(__file__).parent / "projects" / "shop" / "dbt_project.yml").read_text()
# the same domain `shop`, from a second dbt project (a fork, or another team claiming the name)
FORK = {"dbt_project.yml": SHOP_YML.replace("name: shop\n", "name: shop_fork\n").replace("\n  shop:\n", "\n  shop_fork:\n")}
# a second domain from the project that already publishes `shop`
SECOND_DOMAIN = {"dbt_project.yml": SHOP_YML.replace("{name: shop, owner", "{name: shop_two, owner")}


def _engine(url: str) -> Any:
    return create_engine(url.replace("postgresql://", "postgresql+psycopg2://"))


def _one_line(done: Any, code: int, *fragments: str) -> str:
    assert done.returncode == code, (done.returncode, done.stdout, done.stderr)
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("handoff: error: "), done.stderr
    for fragment in fragments:
        assert fragment in lines[0], (fragment, lines[0])
    assert "Traceback" not in done.stderr
    return lines[0]


def test_publishing_from_a_second_project_is_refused_until_an_explicit_transfer(registry_url, plans, tmp_path):
    shop, fork = plans("shop"), plans("shop", FORK)
    assert (shop.domain.name, fork.domain.name) == ("shop", "shop")
    assert (shop.dbt.project_name, fork.dbt.project_name) == ("shop", "shop_fork")
    [shop_file] = write_plans(tmp_path / "shop", shop)
    [fork_file] = write_plans(tmp_path / "fork", fork)
    assert run_cli("publish", str(shop_file), "--registry", registry_url).returncode == 0
    with Registry(registry_url) as registry:
        before = (registry.mesh().domains["shop"].plan_sha256, len(registry.history("shop")))
        assert registry.domain_of_project("shop") == "shop" and registry.domain_of_project("shop_fork") is None

    # refused: exit 1, one line naming the owning project, nothing written
    _one_line(run_cli("publish", str(fork_file), "--registry", registry_url), 1,
              "domain shop is bound to dbt project 'shop'", "dbt project 'shop_fork'", "handoff registry transfer shop")
    _one_line(run_cli("publish", str(fork_file), "--registry", registry_url, "--force", "--label", "x"), 1, "'shop'")
    _one_line(run_cli("publish", str(fork_file), "--registry", registry_url, "--takeover"), 2, "--takeover needs --reason")
    checked = run_cli("check", str(fork_file), "--registry", registry_url)
    assert checked.returncode == 1 and "HO300 error: shop (" in checked.stdout and "'shop'" in checked.stdout
    with Registry(registry_url) as registry:
        assert (registry.mesh().domains["shop"].plan_sha256, len(registry.history("shop"))) == before

    # an explicit, logged transfer; then the fork publishes and the original project is refused
    moved = run_cli("registry", "transfer", "shop", "--to-project", "shop_fork", "--reason", "team split",
                    "--registry", registry_url, env={"HANDOFF_ACTOR": "ci-bot"})
    assert moved.returncode == 0, moved.stderr
    assert "now bound to dbt project 'shop_fork' (was 'shop')" in moved.stdout
    assert run_cli("publish", str(fork_file), "--registry", registry_url).returncode == 0
    _one_line(run_cli("publish", str(shop_file), "--registry", registry_url), 1, "bound to dbt project 'shop_fork'")
    # a takeover with its reason moves it back, in the same transaction as the publish
    back = run_cli("publish", str(shop_file), "--registry", registry_url, "--takeover", "--reason", "fork retired",
                   env={"HANDOFF_ACTOR": "alice"})
    assert back.returncode == 0, back.stderr
    history = run_cli("registry", "history", "shop", "--registry", registry_url)
    assert history.returncode == 0, history.stderr
    assert "transfer" in history.stdout and "shop -> shop_fork by ci-bot: team split" in history.stdout
    assert "takeover" in history.stdout and "shop_fork -> shop by alice: fork retired" in history.stdout
    with Registry(registry_url) as registry:
        rows = registry.transfers("shop")
        assert [(r["how"], r["from_project"], r["to_project"], r["actor"]) for r in rows] == [
            ("takeover", "shop_fork", "shop", "alice"), ("transfer", "shop", "shop_fork", "ci-bot")]
        assert registry.mesh().domains["shop"].bound_project == "shop"
    status = json.loads(run_cli("registry", "status", "--registry", registry_url, "--format", "json").stdout)
    assert [(d["name"], d["dbt_project"]) for d in status["domains"]] == [("shop", "shop")]


def test_one_project_publishes_one_domain(registry_url, plans, tmp_path):
    shop, second = plans("shop"), plans("shop", SECOND_DOMAIN)
    assert (second.domain.name, second.dbt.project_name) == ("shop_two", "shop")
    with Registry(registry_url) as registry:
        registry.publish([shop])
        with pytest.raises(RuleViolation, match="dbt project 'shop' already publishes domain 'shop'"):
            registry.publish([second])
        assert sorted(registry.mesh().domains) == ["shop"]
        # an explicit takeover moves the project; the old domain is left unbound, and it is logged
        registry.publish([second], takeover_reason="domain renamed", actor="bob")
        assert registry.domain_of_project("shop") == "shop_two"
        assert registry.project_domains() == {"shop": "shop_two"}
        assert registry.mesh().domains["shop"].bound_project is None
        [row] = registry.transfers()
        assert (row["domain"], row["from_project"], row["to_project"], row["how"]) == ("shop_two", None, "shop",
                                                                                      "takeover")
        assert "was bound to domain shop" in row["reason"]


def test_transfer_refuses_nonsense(registry_url, plans):
    with Registry(registry_url) as registry:
        registry.publish([plans("shop")])
        with pytest.raises(HandoffError, match="'ghost' is not published"):
            registry.transfer("ghost", "x", reason="r")
        with pytest.raises(HandoffError, match="already bound to dbt project 'shop'"):
            registry.transfer("shop", "shop", reason="r")
        with pytest.raises(HandoffError, match="is not a dbt project name"):
            registry.transfer("shop", "../etc", reason="r")
        with pytest.raises(HandoffError, match="needs a reason"):
            registry.transfer("shop", "other", reason="  ")
        assert registry.transfers() == []


def test_a_plan_claiming_another_domains_dag_id_is_never_stored(registry_url, plans):
    growth = editable(plans("growth"))
    growth["pipelines"][0]["dag_id"] = "shop__daily"
    growth = Plan.from_json(growth)  # typed, not checked
    with Registry(registry_url) as registry:
        with pytest.raises(HandoffError, match="dag_id 'shop__daily' is not growth__daily"):
            registry.publish([growth], validate=False)  # even when the caller skipped validation
        assert registry.mesh().domains == {}


def test_migration_binds_existing_domains_unless_they_share_a_project(registry_url, plans):
    with Registry(registry_url) as registry:
        registry.publish([plans("shop"), plans("billing"), plans("growth")])
    engine = _engine(registry_url)
    try:
        with engine.begin() as conn:  # as a registry of schema version 1 looked
            conn.execute(update(s.domains).values(dbt_project=None, bound_at=None))
            conn.execute(update(s.domains).where(s.domains.c.name == "growth").values(project="billing"))
            conn.execute(delete(s.schema_version).where(s.schema_version.c.version >= 2))
    finally:
        engine.dispose()
    with Registry(registry_url) as registry:  # opening applies migration 2
        bound = {d.name: d.bound_project for d in registry.mesh().domains.values()}
    assert bound == {"shop": "shop", "billing": None, "growth": None}


def test_reconciliation_only_touches_sensors_of_the_downstream_domains_own_dags(registry_url, plans):
    with Registry(registry_url) as registry:
        registry.publish([plans("shop"), plans("billing")])
        honest = registry.sensors_waiting_on("shop", "orders")
        assert honest and {w.downstream_domain for w in honest} == {"billing"}
    # rows no publish can write (a registry edited by hand, or by an old handoff): billing claims a
    # sensor that is shop's own model task, in shop's DAG
    engine = _engine(registry_url)
    try:
        with engine.begin() as conn:
            conn.execute(insert(s.cross_edges).values(
                dag_id="shop__daily", sensor_task_id="orders_daily", domain="billing", upstream_domain="shop",
                upstream_model="orders", sources="[]", timeout_s=60, poke_interval_s=60, mode="poke"))
    finally:
        engine.dispose()
    with Registry(registry_url) as registry:
        waits = registry.sensors_waiting_on("shop", "orders")
    assert [(w.dag_id, w.sensor_task_id) for w in waits] == [(w.dag_id, w.sensor_task_id) for w in honest]
    assert all(w.dag_id.startswith(f"{w.downstream_domain}__") for w in waits)


def test_check_reports_a_domain_bound_elsewhere_without_failing_on_its_own_project(registry_url, plans, tmp_path):
    [shop_file] = write_plans(tmp_path / "a", plans("shop"))
    [fork_file] = write_plans(tmp_path / "b", plans("shop", FORK))
    assert run_cli("publish", str(shop_file), "--registry", registry_url).returncode == 0
    ok = run_cli("check", str(shop_file), "--registry", registry_url, "--format", "json")
    assert ok.returncode == 0 and json.loads(ok.stdout)["ok"] is True
    bad = run_cli("check", str(fork_file), "--registry", registry_url, "--format", "json")
    found = json.loads(bad.stdout)["findings"]
    assert bad.returncode == 1 and [f["code"] for f in found] == ["HO300"]
    assert str(fork_file) in found[0]["where"] and "'shop_fork'" in found[0]["message"]
    assert datetime.now(timezone.utc).year >= 2024


BILLING_YML = (Path(__file__).parent / "projects" / "billing" / "dbt_project.yml").read_text()
# domain `billing` from a third dbt project, after billing's own project was given to another domain
BILLING_ELSEWHERE = {"dbt_project.yml": BILLING_YML.replace("name: billing\n", "name: billing_new\n")
                     .replace("\n  billing:\n", "\n  billing_new:\n")}


def test_a_domain_left_unbound_by_a_transfer_needs_a_takeover(registry_url, plans, tmp_path):
    """Only a never-published domain binds silently: `registry transfer shop --to-project billing`
    leaves domain billing unbound, and no other project may then take it without --takeover."""
    other = plans("billing", BILLING_ELSEWHERE)
    assert (other.domain.name, other.dbt.project_name) == ("billing", "billing_new")
    [other_file] = write_plans(tmp_path / "other", other)
    with Registry(registry_url) as registry:
        registry.publish([plans("shop"), plans("billing")])
        registry.transfer("shop", "billing", reason="shop moves into the billing repo", actor="ci-bot")
        assert registry.mesh().domains["billing"].bound_project is None
        before = (registry.mesh().domains["billing"].plan_sha256, len(registry.history("billing")))

    _one_line(run_cli("publish", str(other_file), "--registry", registry_url), 1,
              "domain billing has been published before and is bound to no dbt project now",
              "dbt project 'billing_new'", "--takeover --reason", "handoff registry transfer billing")
    checked = run_cli("check", str(other_file), "--registry", registry_url, "--format", "json")
    found = json.loads(checked.stdout)["findings"]
    assert checked.returncode == 1 and "HO300" in [f["code"] for f in found], checked.stdout
    with Registry(registry_url) as registry:
        assert (registry.mesh().domains["billing"].plan_sha256, len(registry.history("billing"))) == before
        with pytest.raises(RuleViolation, match="bound to no dbt project"):
            registry.publish([other])
        assert registry.mesh().domains["billing"].bound_project is None

    taken = run_cli("publish", str(other_file), "--registry", registry_url, "--takeover", "--reason",
                    "billing rebuilt in a new repo", env={"HANDOFF_ACTOR": "alice"})
    assert taken.returncode == 0, taken.stderr
    with Registry(registry_url) as registry:
        [row] = registry.transfers("billing")
        assert (row["how"], row["from_project"], row["to_project"], row["actor"], row["reason"]) == (
            "takeover", None, "billing_new", "alice", "billing rebuilt in a new repo")
        assert registry.mesh().domains["billing"].bound_project == "billing_new"
    history = run_cli("registry", "history", "billing", "--registry", registry_url)
    assert "takeover" in history.stdout and "billing rebuilt in a new repo" in history.stdout, history.stdout


def test_a_never_published_domain_binds_silently(registry_url, plans):
    with Registry(registry_url) as registry:
        registry.publish([plans("growth")])
        assert registry.mesh().domains["growth"].bound_project == "growth" and registry.transfers() == []
