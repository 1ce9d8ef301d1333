"""The dbt package `handoff` on real dbt projects: the example domains pass `handoff_validate`,
each deliberately broken project fails it naming the node, the key and the rule code, and
project-, folder- and model-level meta compose as docs/convention.md says."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import duckdb
import pytest
from handoff.cli import main as handoff_cli
from handoff.convention import resolve
from handoff.manifest import load_manifest
from support.examples import DOMAINS, Mesh, broken_cases, check, copy_examples, run_dbt

# "<code> <unique_id> (<file>) meta.<key>: <message>", one line per violation.
VIOLATION = re.compile(r"^(HO\d{3}) (\S+) \((.+?)\) meta\.(\S*): (.+)$")
EXPECTED_OK = {  # domain: (nodes, cross-domain sources)
    "marketplace": (8, 0),
    "finance": (5, 1),
    "marketing": (9, 2),
}


def _manifest(path: Path) -> dict[str, Any]:
    return json.loads(path.read_text("utf-8"))


# -- the example domains ------------------------------------------------------------------

@pytest.mark.parametrize("domain", DOMAINS)
def test_example_domain_builds_and_passes_validation(domain: str, example_mesh: Mesh,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    nodes, upstreams = EXPECTED_OK[domain]
    run = check(run_dbt(["run-operation", "handoff_validate"], example_mesh.project_dirs[domain], example_mesh.env))
    verdict = f"handoff: {domain}: {nodes} nodes, {upstreams} cross-domain sources, 0 violations"
    assert run.printed == [verdict]
    capsys.readouterr()
    assert handoff_cli(["validate", str(example_mesh.manifests[domain])]) == 0  # the Python twin agrees
    assert capsys.readouterr().out.splitlines() == [verdict]


def test_validate_runs_package_qualified(example_manifests: Mesh) -> None:
    run = check(run_dbt(["run-operation", "handoff.handoff_validate"],
                        example_manifests.project_dirs["finance"], example_manifests.env))
    assert run.printed == ["handoff: finance: 5 nodes, 1 cross-domain sources, 0 violations"]


def test_mesh_reads_across_domains(example_mesh: Mesh) -> None:
    with duckdb.connect(str(example_mesh.duckdb_path), read_only=True) as db:
        count = lambda relation: db.execute(f"select count(*) from {relation}").fetchone()[0]
        assert count("marketplace.mrt_orders") == 5  # completed orders only
        assert count("marketplace.mrt_items") == 5
        assert count("finance.mrt_revenue") == 4  # one row per order day, from marketplace's mart
        assert count("marketing.mrt_campaign_performance") == 3  # marketplace + finance sources
        assert count("marketing.mrt_web_traffic") > 0  # the hourly pipeline's folder
        # the events pipeline's microbatch model, built for the example days (--event-time-start/-end)
        assert count("marketing.mrt_page_views") == count("marketing.raw_page_views") == 36
        assert count("marketing.mrt_views_per_day") == 8
        revenue = db.execute("select sum(revenue_eur_cents) from finance.mrt_revenue").fetchone()[0]
        assert revenue == db.execute("select sum(amount_cents) from marketplace.mrt_orders").fetchone()[0]


def test_mesh_database_is_free_for_other_processes(example_mesh: Mesh) -> None:
    """In-process dbt must not keep the DuckDB file locked: Airflow tasks open it from other processes."""
    code = ("import duckdb, sys; db = duckdb.connect(sys.argv[1]); "
            "print(db.execute('select count(*) from finance.mrt_revenue').fetchone()[0])")
    done = subprocess.run([sys.executable, "-c", code, str(example_mesh.duckdb_path)],
                          capture_output=True, text=True, timeout=60, check=False)
    assert (done.returncode, done.stdout.strip()) == (0, "4"), done.stderr


def test_python_resolver_agrees_on_the_examples(example_manifests: Mesh) -> None:
    for domain in DOMAINS:
        resolved = resolve(load_manifest(example_manifests.manifests[domain]))
        assert resolved.violations == (), domain
        assert (len(resolved.nodes), len(resolved.upstreams)) == EXPECTED_OK[domain], domain


# -- composition of project, folder and model meta (docs/convention.md) ------------------

def test_project_folder_and_model_meta_compose(example_manifests: Mesh) -> None:
    marketing = _manifest(example_manifests.manifests["marketing"])
    marketplace = _manifest(example_manifests.manifests["marketplace"])
    domain = {"name": "marketing", "owner": "team-marketing", "slack": "#marketing-data"}
    daily = {"name": "daily", "schedule": "0 6 * * *", "start_date": "2024-02-01"}
    project_defaults = {"retries": 0, "pool": "duckdb"}

    # project level only
    assert marketing["nodes"]["model.marketing.stg_campaigns"]["config"]["meta"] == {
        "handoff_domain": domain, "handoff_pipeline": daily, "handoff_defaults": project_defaults}
    # seeds get the same meta through the seeds: section
    assert marketing["nodes"]["seed.marketing.raw_campaigns"]["config"]["meta"]["handoff_domain"] == domain
    # folder overrides handoff_pipeline and handoff_defaults (whole values: one-level merge),
    # keeps handoff_domain
    assert marketing["nodes"]["model.marketing.stg_web_events"]["config"]["meta"] == {
        "handoff_domain": domain,
        "handoff_pipeline": {"name": "hourly", "schedule": "@hourly", "start_date": "2024-02-01"},
        "handoff_defaults": {"retries": 0, "pool": "duckdb", "timeout": "30m"},
    }
    # a model's own `handoff` adds to the folder's and project's keys without wiping any
    assert marketing["nodes"]["model.marketing.mrt_web_traffic"]["config"]["meta"] == {
        "handoff_domain": domain,
        "handoff_pipeline": {"name": "hourly", "schedule": "@hourly", "start_date": "2024-02-01"},
        "handoff_defaults": {"retries": 0, "pool": "duckdb", "timeout": "30m"},
        "handoff": {"owner": "team-web-analytics", "slack": "#web-analytics", "timeout": "10m"},
    }
    items = marketplace["nodes"]["model.marketplace.mrt_items"]
    assert items["config"]["meta"]["handoff"] == {"available_by": "04:00", "owner": "team-catalogue"}
    assert items["config"]["meta"]["handoff_domain"]["owner"] == "team-marketplace"
    assert items["access"] == "public"
    # snapshots get the domain through the snapshots: section
    assert marketplace["nodes"]["snapshot.marketplace.snp_items"]["config"]["meta"]["handoff_pipeline"]["name"] == "daily"


def test_where_source_meta_lands_in_the_manifest(example_manifests: Mesh) -> None:
    """dbt 1.11: a table's `meta` (= its `config.meta`) is the source's meta merged one level deep
    under the table's own; `source_meta` is the source's alone. handoff merges handoff_upstream
    key by key from the two."""
    sources = _manifest(example_manifests.manifests["marketing"])["sources"]
    revenue = sources["source.marketing.finance.revenue"]
    assert revenue["source_meta"] == {"handoff_upstream": {"domain": "finance", "wait": {"timeout": "3h"}}}
    assert revenue["meta"] == {"handoff_upstream": {"model": "mrt_revenue"}}  # the table's replaced the source's
    assert revenue["config"]["meta"] == revenue["meta"]
    items = sources["source.marketing.marketplace.mrt_items"]
    assert items["meta"] == {"handoff_upstream": {"domain": "marketplace"}}  # inherited from the source
    assert items["source_meta"] == items["meta"]


# -- the deliberately broken projects ----------------------------------------------------

@pytest.fixture(scope="module")
def broken_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    integration = copy_examples(tmp_path_factory.mktemp("broken"))
    # broken projects with cross-project refs read the example project shipping through dbt-loom
    shipping = integration / "shipping"
    env = {"HANDOFF_DUCKDB_PATH": str(integration / "unused.duckdb")}
    check(run_dbt(["deps"], shipping, env))
    check(run_dbt(["parse"], shipping, env))
    return integration / "broken"


def _expected(case: str, root: Path) -> dict[str, Any]:
    return json.loads((root / case / "expected.json").read_text("utf-8"))


@pytest.mark.parametrize("case", broken_cases())
def test_broken_project_fails_naming_node_key_and_code(case: str, broken_root: Path,
                                                       capsys: pytest.CaptureFixture[str]) -> None:
    project = broken_root / case
    check(run_dbt(["deps"], project))
    run = run_dbt(["run-operation", "handoff_validate"], project)
    expected = _expected(case, broken_root)["violations"]

    assert not run.success, f"{case} passed validation:\n{run.output}"
    assert "Found " in run.output, "the project must still parse"
    lines = [VIOLATION.match(line) for line in run.printed]
    assert all(lines), f"unexpected printed lines: {run.printed}"
    assert sorted([m.group(1), m.group(2), m.group(4)] for m in lines) == sorted(expected)
    for m in lines:
        assert (project / m.group(3)).is_file(), f"{m.group(3)} is not the node's file"
    assert f"handoff: {case}: {len(expected)} violation(s) of the handoff convention" in run.output

    # The Python resolver (handoff.convention.resolve) reports the same violations.
    resolved = resolve(load_manifest(project / "target" / "manifest.json"))
    assert sorted([v.code, v.unique_id, v.key] for v in resolved.violations) == sorted(expected)

    # ... and so does its command, `handoff validate`: exit 1, one line per violation, then the count
    capsys.readouterr()
    assert handoff_cli(["validate", str(project / "target" / "manifest.json")]) == 1
    printed = capsys.readouterr().out.splitlines()
    for code, uid, key in expected:
        assert any(line.startswith(f"{code} {uid} (") and f" meta.{key}:" in line for line in printed), printed
    assert printed[-1].endswith(f"{len(expected)} violations")
    failing = len({uid for _, uid, _ in expected if not uid.startswith("source.")})
    assert (f"({failing} with violations)" in printed[-1]) is (failing > 0), printed[-1]  # counted, not left out
    assert handoff_cli(["validate", "--format", "json", str(project / "target" / "manifest.json")]) == 1
    document = json.loads(capsys.readouterr().out)
    reported = document["violations"]
    assert sorted([v["code"], v["unique_id"], v["key"]] for v in reported) == sorted(expected)
    assert document["nodes_with_violations"] == failing and document["nodes"] >= failing


def test_dbt_cli_exits_1_and_prints_the_violation(broken_root: Path) -> None:
    """The real `dbt` command (not dbtRunner): exit status 1, the violation on stdout."""
    project = broken_root / "wrong_type"
    check(run_dbt(["deps"], project))
    dbt = Path(sys.executable).with_name("dbt")
    env = {**os.environ, "DBT_SEND_ANONYMOUS_USAGE_STATS": "false", "DO_NOT_TRACK": "1"}
    done = subprocess.run([str(dbt), "run-operation", "handoff_validate", "--project-dir", str(project),
                           "--profiles-dir", str(broken_root.parent)],
                          capture_output=True, text=True, timeout=120, env=env, cwd=project, check=False)
    assert done.returncode == 1, done.stdout + done.stderr
    assert ("HO102 model.wrong_type.orders (models/orders.sql) meta.handoff.retries: "
            'expected integer (no quotes); got string "2"') in done.stdout


def test_every_rule_code_has_a_broken_project(broken_root: Path) -> None:
    codes = {code for case in broken_cases() for code, _, _ in _expected(case, broken_root)["violations"]}
    # HO205 and HO210 cannot fire on a project dbt parses: see test_public_owner_rule_falls_back_in_order
    # and test_access_rule_refuses_what_plans_cannot_hold.
    assert codes == {"HO101", "HO102", "HO103", "HO105", "HO106",
                     "HO201", "HO202", "HO203", "HO204", "HO206", "HO207", "HO208", "HO209", "HO211"}


def test_every_violation_is_printed_before_the_single_failure(tmp_path: Path) -> None:
    """One run lists all problems of all nodes, then fails once."""
    integration = copy_examples(tmp_path)
    project = integration / "broken" / "unknown_key"
    (project / "models" / "orders.yml").write_text(
        "models:\n  - name: orders\n    config:\n      meta:\n"
        '        handoff: {availabe_by: "05:00", retries: "2"}\n'
        '        handoff_pipline: {name: x, schedule: "@daily"}\n', "utf-8")
    (project / "models" / "more.sql").write_text("select 2 as id\n", "utf-8")
    (project / "models" / "more.yml").write_text(
        "models:\n  - name: more\n    config:\n      meta:\n        handoff: {available_by: '5:30'}\n", "utf-8")
    check(run_dbt(["deps"], project))
    run = run_dbt(["run-operation", "handoff_validate"], project)
    assert not run.success
    found = sorted((m.group(1), m.group(2), m.group(4)) for m in map(VIOLATION.match, run.printed) if m)
    assert found == [
        ("HO101", "model.unknown_key.orders", "handoff.availabe_by"),
        ("HO101", "model.unknown_key.orders", "handoff_pipline"),
        ("HO102", "model.unknown_key.orders", "handoff.retries"),
        ("HO103", "model.unknown_key.more", "handoff.available_by"),
    ]
    assert "did you mean 'available_by'?" in run.output and "did you mean 'handoff_pipeline'?" in run.output
    assert "handoff: unknown_key: 4 violation(s) of the handoff convention in 2 node(s)/source(s)" in run.output


def test_public_owner_rule_falls_back_in_order(example_manifests: Mesh) -> None:
    """HO205 (public model without an effective owner) is unreachable on a real project, because
    handoff_domain.owner is required (HO104) and a node without a domain stops at HO201. The rule
    macro itself is checked here on hand-made nodes: handoff.owner, then the group's, then the domain's."""
    def node(access: str, meta: dict[str, Any], group: str | None = None) -> dict[str, Any]:
        return {"unique_id": "model.x.m", "file": "models/m.sql", "access": access, "group": group, "meta": meta}

    cases = [
        {"node": node("public", {"handoff_domain": {"name": "x"}})},                       # nobody: HO205
        {"node": node("public", {"handoff_domain": {"owner": "team-x"}})},                 # domain owner
        {"node": node("public", {"handoff": {"owner": "team-m"}})},                        # model owner
        {"node": node("public", {}, group="g"), "group_owners": {"g": "growth"}},          # group owner
        {"node": node("public", {}, group="g"), "group_owners": {"g": None}},              # group without owner
        {"node": node("protected", {})},                                                   # not public
    ]
    run = check(run_dbt(["run-operation", "handoff_examples.print_public_owner_verdicts",
                         "--args", json.dumps({"cases": cases})],
                        example_manifests.project_dirs["marketplace"], example_manifests.env))
    verdicts = [json.loads(line)["codes"] for line in run.printed]
    assert verdicts == [["HO205"], [], [], [], ["HO205"], []]


def test_access_rule_refuses_what_plans_cannot_hold(example_manifests: Mesh) -> None:
    """HO210 (access outside public/protected/private) is unreachable on a project dbt 1.11 parses
    (it refuses `friends` and `[public]`, seeds included); an edited manifest reaches it. The macro is
    checked on hand-made nodes; the Python resolver on edited manifests (tests/test_cli_corpus.py)."""
    values = ["public", "protected", "private", None, "friends", ["public"]]
    nodes = [{"unique_id": "seed.x.s", "file": "seeds/s.csv", "access": value} for value in values]
    run = check(run_dbt(["run-operation", "handoff_examples.print_access_verdicts",
                         "--args", json.dumps({"nodes": nodes})],
                        example_manifests.project_dirs["marketplace"], example_manifests.env))
    verdicts = [json.loads(line)["codes"] for line in run.printed]
    assert verdicts == [[], [], [], [], ["HO210"], ["HO210"]]


# -- fault injection for the runtime's tests ---------------------------------------------

def test_fault_injection_fails_or_slows_one_model_only(example_mesh: Mesh, tmp_path: Path) -> None:
    project = example_mesh.project_dirs["marketplace"]
    target = ["--target-path", str(tmp_path / "target")]  # leave the shared mesh's target/ alone
    failing = run_dbt(["run", "--select", "int_orders stg_items", *target,
                       "--vars", "{handoff_example_fail: [int_orders]}"], project, example_mesh.env)
    assert not failing.success
    statuses = {r.node.name: str(r.status) for r in failing.result.results}
    assert statuses == {"int_orders": "error", "stg_items": "success"}
    assert "handoff example: injected failure in int_orders" in failing.output

    started = time.monotonic()
    slow = check(run_dbt(["run", "--select", "stg_items", *target, "--vars", "{handoff_example_slow: {stg_items: 1}}"],
                         project, example_mesh.env))
    assert time.monotonic() - started >= 1.0
    assert [str(r.status) for r in slow.result.results] == ["success"]

    # Parsing ignores the vars: the parsed nodes are the same as without them.
    injected = _manifest(tmp_path / "target" / "manifest.json")["nodes"]
    plain = _manifest(example_mesh.manifests["marketplace"])["nodes"]
    assert _parsed(injected) == _parsed(plain)


def _parsed(nodes: dict[str, Any]) -> dict[str, Any]:
    """What parsing decides about each node (runtime fields such as compiled_path left out)."""
    fields = ("checksum", "config", "raw_code", "refs", "sources", "columns")
    return {uid: {f: node.get(f) for f in fields} | {"parents": node.get("depends_on", {}).get("nodes", [])}
            for uid, node in nodes.items()}


@pytest.mark.parametrize("case", ["sla_ambiguous", "unknown_timezone"])
def test_time_rules_say_the_same_words_in_both_enforcers(case: str, broken_root: Path,
                                                         capsys: pytest.CaptureFixture[str]) -> None:
    """HO208/HO209 messages are computed twice (Jinja and Python): the lines must be identical."""
    project = broken_root / case
    check(run_dbt(["deps"], project))
    run = run_dbt(["run-operation", "handoff_validate"], project)
    capsys.readouterr()
    assert handoff_cli(["validate", str(project / "target" / "manifest.json")]) == 1
    python_lines = [line for line in capsys.readouterr().out.splitlines() if VIOLATION.match(line)]
    assert sorted(run.printed) == sorted(python_lines) and python_lines
