"""`handoff check`: rules HO301–HO306 on plans compiled from purpose-built dbt projects.

The base mesh (tests/registry/projects): shop (daily 03:00; orders public, due 05:30) <- billing
(daily 05:00; invoices due 07:00, refunds) <- growth (daily 06:00; roi due 08:00, refund_rate).
Each broken case is one of them with one file replaced, so the test shows the YAML at fault.
The pure rules run on an in-memory Mesh; the CLI runs against a real registry on both backends.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from handoff.cli import main
from handoff.plan_model import Acceptance, Plan
from handoff.registry.checks import RULES, check_mesh
from handoff.registry.mesh import Mesh, domain_from_plan
from handoff.registry.store import Registry
from registry_helpers import write_plans
from support.documents import editable

BASE = ("shop", "billing", "growth")

BILLING_SOURCES = """
version: 2
sources:
  - name: shop
    schema: shop
    meta:
      handoff_upstream: {{domain: {domain}}}
    tables:
      - name: orders
        meta:
          handoff_upstream: {{model: {model}}}
"""

CASES = {
    # (project, replaced files) -> the rule it breaks
    "HO301": ("billing", {"models/sources.yml": BILLING_SOURCES.format(domain="payments", model="orders")}),
    "HO302": ("billing", {"models/sources.yml": BILLING_SOURCES.format(domain="shop", model="order")}),
    "HO303": ("billing", {"models/sources.yml": BILLING_SOURCES.format(domain="shop", model="order_items")}),
    # shop.orders now reads growth.roi, which reads billing.invoices, which reads shop.orders
    "HO304": ("shop", {
        "models/sources.yml": "version: 2\nsources:\n  - name: growth\n    meta:\n      handoff_upstream: "
                              "{domain: growth}\n    tables:\n      - name: roi\n",
        "models/orders.sql": "select o.* from {{ ref('stg_orders') }} o, {{ source('growth', 'roi') }} r",
    }),
    # billing runs at 05:00 and promises invoices by 05:15, but shop.orders is only due 05:30
    "HO305": ("billing", {"models/schema.yml": (
        "version: 2\nmodels:\n  - name: invoices\n    access: public\n    config:\n      meta:\n"
        "        handoff: {available_by: \"05:15\"}\n  - name: refunds\n    access: public\n")}),
    # growth at 05:10 promises refund_rate by 05:20; it waits on billing.refunds (no SLA), which
    # waits on shop.orders, due 05:30: impossible, two domains away
    "HO305-transitive": ("growth", {
        "dbt_project.yml": (Path(__file__).parent / "projects/growth/dbt_project.yml").read_text()
        .replace('"0 6 * * *"', '"10 5 * * *"'),
        "models/schema.yml": (
            "version: 2\nmodels:\n  - name: roi\n    access: public\n  - name: refund_rate\n"
            "    config:\n      meta:\n        handoff: {available_by: \"05:20\"}\n")}),
    # growth at 01:00 waits on billing's 05:00 run of the day before: a warning, not an error
    "HO306": ("growth", {"dbt_project.yml": (Path(__file__).parent / "projects/growth/dbt_project.yml").read_text()
                         .replace('"0 6 * * *"', '"0 1 * * *"')}),
}


def mesh_of(*plans: dict) -> Mesh:
    return Mesh({p.domain.name: domain_from_plan(p) for p in plans})


@pytest.fixture(scope="module")
def base(plans) -> dict[str, dict]:
    return {name: plans(name) for name in BASE}


def test_the_good_mesh_has_no_findings(base):
    assert check_mesh(mesh_of(*base.values())) == []


@pytest.mark.parametrize("case", sorted(CASES))
def test_each_rule_is_caught_on_its_purpose_built_plan(case, plans, base):
    project, files = CASES[case]
    changed = plans(project, files)
    mesh = mesh_of(*base.values()).with_domains([domain_from_plan(changed)])
    findings = check_mesh(mesh, focus={project})
    code = case.split("-")[0]
    errors = [f for f in findings if f.severity == "error"]
    assert {f.code for f in (errors or findings)} == {code}, [f.line() for f in findings]
    finding = findings[0]
    assert finding.severity == RULES[code][0]
    line = finding.line()
    assert line.startswith(f"{code} {finding.severity}: ") and "\n" not in line and " — " in line
    expected = {
        "HO301": ["billing.billing__daily.wait__payments__orders", "source.billing.shop.orders",
                  "payments.orders", "no domain 'payments'"],
        "HO302": ["billing.billing__daily.wait__shop__order", "shop.order", "did you mean 'orders'"],
        "HO303": ["billing.billing__daily.wait__shop__order_items", "shop.order_items", "protected",
                  "team-shop (#shop-data)", "access: public"],
        "HO304": ["cycle of tasks across domains", "shop.shop__daily.wait__growth__roi",
                  "growth.growth__daily.roi", "billing.billing__daily.invoices", "deadlock"],
        "HO305": ["billing.invoices (available_by 05:15): run 2024-01-01T05:00Z is due 2024-01-01T05:15Z",
                  "waits on shop.orders (available_by 05:30) run 2024-01-01T03:00Z, due 2024-01-01T05:30Z",
                  "(through wait__shop__orders)", 'set available_by: "05:30" on invoices', "team-shop"],
        "HO305-transitive": ["growth.refund_rate (available_by 05:20): run 2024-01-01T05:10Z is due",
                             "waits on shop.orders (available_by 05:30)",
                             "(through wait__billing__refunds, wait__shop__orders)",
                             'set available_by: "05:30" on refund_rate'],
        "HO306": ["growth.growth__daily.wait__billing__invoices", "'0 5 * * *' -> '0 1 * * *'",
                  "runs read the previous upstream run (20h old, not the one 4h later)"],
    }[case]
    for text in expected:
        assert text in line, (text, line)


def test_the_cycle_is_named_task_by_task_and_closes(plans, base):
    shop = plans(*CASES["HO304"])
    [finding] = [f for f in check_mesh(mesh_of(base["billing"], base["growth"], shop), focus={"shop"})
                 if f.code == "HO304"]
    cycle = finding.message.split(": ", 1)[1].split(";")[0].split(" -> ")
    assert cycle[0] == cycle[-1]
    assert set(cycle) == {
        "shop.shop__daily.orders", "billing.billing__daily.wait__shop__orders", "billing.billing__daily.invoices",
        "growth.growth__daily.wait__billing__invoices", "growth.growth__daily.roi",
        "shop.shop__daily.wait__growth__roi"}
    assert finding.domains == {"shop", "billing", "growth"}


def test_a_change_that_breaks_another_domains_sensor_fails_the_changed_domains_check(plans, base):
    """shop makes orders protected / drops it: billing's sensor breaks, so shop's own check fails."""
    private = plans("shop", {"models/schema.yml": "version: 2\nmodels:\n  - name: orders_daily\n    access: public\n"})
    findings = check_mesh(mesh_of(*base.values()).with_domains([domain_from_plan(private)]), focus={"shop"})
    assert [(f.code, f.where) for f in findings] == [("HO303", "billing.billing__daily.wait__shop__orders")]
    assert "team-billing" not in findings[0].hint and "team-shop" in findings[0].hint

    dropped = editable(base["shop"])  # as if orders and orders_daily were deleted
    for pipeline in dropped["pipelines"]:
        pipeline["tasks"] = [t for t in pipeline["tasks"] if t["task_id"] not in ("orders", "orders_daily")]
        for t in pipeline["tasks"]:
            t["upstream"] = [u for u in t["upstream"] if u not in ("orders", "orders_daily")]
    findings = check_mesh(mesh_of(*base.values()).with_domains([domain_from_plan(Plan.from_json(dropped))]),
                          focus={"shop"})
    assert [(f.code, f.where) for f in findings] == [("HO302", "billing.billing__daily.wait__shop__orders")]
    assert "team-billing (#billing-data)" in findings[0].hint


def test_problems_between_other_domains_are_not_the_checked_domains_business(plans, base):
    broken_billing = plans(*CASES["HO301"])
    mesh = mesh_of(base["shop"], broken_billing, base["growth"])
    assert check_mesh(mesh, focus={"growth"}) == []
    assert [f.code for f in check_mesh(mesh, focus={"billing"})] == ["HO301"]


def test_a_tick_based_sla_does_not_flag_a_run_that_reads_yesterdays_data(plans, base):
    """growth at 01:00 (due 08:00) reads billing's run of the day before: no HO305, only HO306."""
    early = plans(*CASES["HO306"])
    codes = [f.code for f in check_mesh(mesh_of(base["shop"], base["billing"], early), focus={"growth"})]
    assert codes == ["HO306", "HO306"]  # both of growth's sensors


# --------------------------------------------------------------------------------------
# The CLI, against a real registry (SQLite and PostgreSQL)
# --------------------------------------------------------------------------------------

@pytest.fixture
def published(registry_url, base, tmp_path) -> str:
    with Registry(registry_url) as registry:
        registry.publish(list(base.values()))
    return registry_url


def test_cli_passes_the_good_mesh_with_one_ok_line(published, base, tmp_path, capsys):
    files = write_plans(tmp_path / "plans", *base.values())
    assert main(["check", *map(str, files), "--registry", published]) == 0
    out = capsys.readouterr().out.splitlines()
    assert len(out) == 1 and out[0].startswith("handoff check: OK — shop, billing, growth"), out


@pytest.mark.parametrize("case", sorted(CASES))
def test_cli_rejects_each_rule_with_exit_1(case, published, plans, tmp_path, capsys):
    project, files = CASES[case]
    [path] = write_plans(tmp_path / "plans", plans(project, files))
    code = case.split("-")[0]
    status = main(["check", str(path), "--registry", published])
    out = capsys.readouterr().out.splitlines()
    if code == "HO306":
        assert status == 0 and out[-1].startswith("handoff check: OK with 2 warning(s)"), out
        assert main(["check", str(path), "--registry", published, "--strict"]) == 1
        capsys.readouterr()
    else:
        assert status == 1, out
        assert out[-1].startswith("handoff check: FAILED — 1 error(s)"), out
    assert out[0].startswith(f"{code} "), out
    assert main(["check", str(path), "--registry", published, "--format", "json"]) == (0 if code == "HO306" else 1)
    report = json.loads(capsys.readouterr().out)
    assert report["findings"][0]["code"] == code and report["ok"] is (code == "HO306")


def test_cli_check_with_several_plans_checks_them_together(published, plans, base, tmp_path, capsys):
    """A new upstream and its consumer in one run: the consumer's sensor resolves to the new plan."""
    fresh_shop = plans("shop", {"dbt_project.yml": (Path(__file__).parent / "projects/shop/dbt_project.yml")
                                .read_text().replace("team-shop", "team-shop2")})
    write_plans(tmp_path / "plans", fresh_shop, base["billing"])
    assert main(["check", str(tmp_path / "plans"), "--registry", published]) == 0
    assert "handoff check: OK — " in capsys.readouterr().out


# --------------------------------------------------------------------------------------
# Model versions, and the example domains of integration_tests/
# --------------------------------------------------------------------------------------

VERSIONED_SHOP = {
    "models/orders.sql": None,
    "models/orders_v1.sql": "select * from {{ ref('stg_orders') }}",
    "models/orders_v2.sql": "select *, 1 as v from {{ ref('stg_orders') }}",
    "models/orders_daily.sql": "select count(*) as n from {{ ref('orders', v=2) }}",
    "models/schema.yml": (
        "version: 2\nmodels:\n  - name: orders\n    access: public\n    latest_version: 2\n"
        "    config:\n      meta:\n        handoff: {available_by: \"05:30\"}\n"
        "    versions:\n      - v: 1\n      - v: 2\n"
        "  - name: orders_daily\n    access: public\n  - name: order_items\n    access: protected\n"),
}


def test_a_name_resolves_to_the_latest_version_and_a_pinned_name_to_its_version(plans, base, registry_url):
    """As an unpinned dbt ref() does: billing's source names shop.orders (no version) and waits on
    orders_v2, the latest; a source naming orders_v1 waits on v1 (docs/plan.md, versions)."""
    shop = plans("shop", VERSIONED_SHOP)
    assert {t.task_id for p in shop.pipelines for t in p.tasks} >= {"orders_v1", "orders_v2"}
    mesh = mesh_of(shop, base["billing"])
    assert check_mesh(mesh, focus={"billing"}) == []
    assert mesh.resolve("shop", "orders").task.task_id == "orders_v2"
    assert mesh.resolve("shop", "orders_v1").task.task_id == "orders_v1"
    assert mesh.resolve("shop", "orders_v2").task.task_id == "orders_v2"
    pinned = plans("billing", {"models/sources.yml": BILLING_SOURCES.format(domain="shop", model="orders_v1")})
    assert check_mesh(mesh_of(shop, pinned), focus={"billing"}) == []

    with Registry(registry_url) as registry:
        registry.publish([shop, base["billing"]])
        published = registry.mesh()
        assert published.resolve("shop", "orders").task.task_id == "orders_v2"  # the same rule after a round trip
        snapshot = registry.snapshot()
        entries = {m.model: m.task_id for m in snapshot.models if m.domain == "shop"}
        assert (entries["orders"], entries["orders_v1"], entries["orders_v2"]) == ("orders_v2", "orders_v1", "orders_v2")
        [wait] = registry.sensors_waiting_on_task("shop__daily", "orders_v2")
        assert (wait.upstream_model, wait.upstream_task_id) == ("orders", "orders_v2")
        assert registry.sensors_waiting_on_task("shop__daily", "orders_v1") == []
        readers = {"invoices", "refunds", "billing_summary"}
        assert {c.task_id for c in registry.consumers("shop", "orders")} == readers
        assert {c.task_id for c in registry.consumers("shop", "orders_v2")} == readers
        assert registry.consumers("shop", "orders_v1") == []


def test_the_example_domains_pass_and_their_consumers_are_found(example_manifests, registry_url, tmp_path, capsys):
    from handoff.manifest import load_manifest
    from handoff.plan import compile_manifest

    examples = [compile_manifest(load_manifest(example_manifests.manifests[d]))
                for d in ("marketplace", "finance", "marketing")]
    files = write_plans(tmp_path / "plans", *examples)
    assert main(["publish", str(tmp_path / "plans"), "--registry", registry_url]) == 0
    capsys.readouterr()
    for path in files:
        assert main(["check", str(path), "--registry", registry_url, "--strict"]) == 0, capsys.readouterr().out
        assert capsys.readouterr().out.startswith("handoff check: OK — ")
    with Registry(registry_url, must_exist=True) as registry:
        consumers = registry.consumers("marketplace", "mrt_orders")
    assert {"finance", "marketing"} <= {c.domain for c in consumers}


# --------------------------------------------------------------------------------------
# SLAs across schedules and acknowledged warnings, through dbt, compile, publish and the CLI
# --------------------------------------------------------------------------------------

PROJECTS = Path(__file__).parent / "projects"
HOURLY_SHOP = {  # shop hourly, orders due 45 min after each run
    "dbt_project.yml": (PROJECTS / "shop/dbt_project.yml").read_text().replace('"0 3 * * *"', '"@hourly"'),
    "models/schema.yml": (PROJECTS / "shop/models/schema.yml").read_text().replace(
        'available_by: "05:30"', "available_within: 45m"),
}


def _billing_at(schedule: str, due: str) -> dict[str, str]:
    return {"dbt_project.yml": (PROJECTS / "billing/dbt_project.yml").read_text().replace('"0 5 * * *"', f'"{schedule}"'),
            "models/schema.yml": (PROJECTS / "billing/models/schema.yml").read_text().replace('"07:00"', f'"{due}"')}


def test_an_hourly_upstream_read_by_daily_pipelines_passes_and_a_suggestion_clears_an_error(
        published, plans, tmp_path, capsys):
    shop = plans("shop", HOURLY_SHOP)
    for schedule, due in (("30 2 * * *", "04:00"), ("0 6 * * *", "07:00")):
        billing = plans("billing", _billing_at(schedule, due))
        files = write_plans(tmp_path / f"ok-{due}", shop, billing)
        assert main(["check", *map(str, files), "--registry", published, "--format", "json"]) == 0
        report = json.loads(capsys.readouterr().out)
        assert [f["code"] for f in report["findings"] if f["severity"] == "error"] == [], report
    # 06:00 due 06:30 reads the 06:00 hourly run, due 06:45: impossible; the suggested value clears it
    late = plans("billing", _billing_at("0 6 * * *", "06:30"))
    files = write_plans(tmp_path / "late", shop, late)
    assert main(["check", *map(str, files), "--registry", published, "--format", "json"]) == 1
    [finding] = [f for f in json.loads(capsys.readouterr().out)["findings"] if f["code"] == "HO305"]
    assert finding["detail"]["suggested"] == {"key": "available_by", "value": "06:45"}
    fixed = plans("billing", _billing_at("0 6 * * *", finding["detail"]["suggested"]["value"]))
    files = write_plans(tmp_path / "fixed", shop, fixed)
    assert main(["check", *map(str, files), "--registry", published]) == 0, capsys.readouterr().out
    capsys.readouterr()


def test_a_time_of_day_before_the_run_is_refused_at_compile(plans):
    """0 6 * * * promising 03:00 behind a 02:30 upstream promising 04:00: HO208, named key."""
    from handoff.errors import HandoffError

    with pytest.raises(HandoffError) as refused:
        plans("billing", _billing_at("0 6 * * *", "03:00"))
    assert "HO208" in str(refused.value) and "meta.handoff.available_by" in str(refused.value)
    assert "available_within: 21h" in str(refused.value)


def test_an_acknowledged_alignment_warning_passes_strict_and_explain_shows_why(published, plans, tmp_path, capsys):
    reason = "growth's 01:00 report reads the previous day's invoices on purpose"
    growth_files = dict(CASES["HO306"][1])
    growth_files["models/sources.yml"] = (PROJECTS / "growth/models/sources.yml").read_text().replace(
        "handoff_upstream: {domain: billing}", f'handoff_upstream: {{domain: billing, accept: {{HO306: "{reason}"}}}}')
    growth = plans("growth", growth_files)
    assert all(t.accept == (Acceptance("HO306", reason),) for p in growth.pipelines for t in p.sensors())
    [path] = write_plans(tmp_path / "plans", growth)
    assert main(["check", str(path), "--registry", published, "--strict"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert [line for line in out if line.startswith("HO306 accepted: ")] and "2 accepted warning(s)" in out[-1], out
    assert main(["publish", str(path), "--registry", published]) == 0
    capsys.readouterr()
    assert main(["explain", "growth.roi", "--registry", published]) == 0
    assert f"HO306 accepted ({reason})" in capsys.readouterr().out


def test_control_characters_of_an_accept_reason_are_shown_not_obeyed() -> None:
    """validate refuses them (HO103); a plan or registry row written otherwise is escaped on output."""
    from handoff.registry.checks import Finding
    from handoff.terminal import visible

    finding = Finding(code="HO306", where="cons.cons__daily.wait__x", message="m", hint="h",
                      domains=frozenset({"cons"}), accepted="line1\nline2 \x1b[31mred\r\x00")
    line = finding.line()
    assert line == "HO306 accepted: cons.cons__daily.wait__x: line1 line2 \\x1b[31mred \\x00"
    assert line.isprintable()
    assert visible("a\nb\x1b[0m\x85", newlines=True) == "a\nb\\x1b[0m\\x85"
