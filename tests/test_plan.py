"""The compiler on real manifests: shapes, policies, determinism, hostile names, bad input."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from handoff.errors import HandoffError
from handoff.manifest import load_manifest
from handoff.plan import compile_manifest, dumps, load_plan, validate_plan
from handoff.plan_model import Plan

HANDOFF = [sys.executable, "-m", "handoff.cli"]


def _tasks(plan: Plan, dag_id: str) -> dict[str, dict]:
    """The tasks of one pipeline as the plan file writes them (the format is what these tests pin)."""
    pipeline = next(p for p in plan.to_json()["pipelines"] if p["dag_id"] == dag_id)
    return {t["task_id"]: t for t in pipeline["tasks"]}


@pytest.fixture(scope="module")
def shapes_plan(fixture_manifest) -> Plan:
    return compile_manifest(load_manifest(fixture_manifest("shapes")))


def test_one_pipeline_per_folder_setting(shapes_plan):
    pipelines = {p.dag_id: (p.schedule, p.start_date) for p in shapes_plan.pipelines}
    assert pipelines == {"shapes__daily": ("0 3 * * *", "2024-01-01"),
                         "shapes__hourly": ("@hourly", "2025-01-01")}


def test_one_task_per_model_seed_snapshot_and_none_for_ephemeral(shapes_plan):
    daily = _tasks(shapes_plan, "shapes__daily")
    kinds = {tid: t["kind"] for tid, t in daily.items()}
    assert kinds == {
        "base": "dbt_model", "raw_only": "dbt_model", "raw_things": "dbt_seed",
        "things_snapshot": "dbt_snapshot", "through_eph": "dbt_model",
        "versioned_v1": "dbt_model", "versioned_v2": "dbt_model",
        "wait__other_domain__mrt_orders": "sensor",
    }
    assert daily["versioned_v2"]["unique_id"] == "model.shapes.versioned.v2"


def test_edges_pass_through_ephemeral_models(shapes_plan):
    daily = _tasks(shapes_plan, "shapes__daily")
    # eph reads base and the cross-domain source; through_eph reads eph: the edges survive the fold
    assert "base" in daily["through_eph"]["upstream"]
    assert "wait__other_domain__mrt_orders" in daily["through_eph"]["upstream"]
    assert daily["base"]["upstream"] == ["raw_things"]
    assert daily["raw_only"]["upstream"] == []  # a raw source is no sensor


def test_test_policy(shapes_plan):
    daily = _tasks(shapes_plan, "shapes__daily")
    assert [t.split(".")[2] for t in daily["base"]["tests"]] == ["not_null_base_id", "unique_base_id"]
    assert all(t.startswith("test.shapes.") for t in daily["base"]["tests"])  # unique ids, not names
    # a relationships test runs in the task of its parent that comes last in topological order
    # (raw_only < through_eph by unique_id: neither reads the other); that task waits for the other
    assert [t.split(".")[2] for t in daily["through_eph"]["tests"]] == ["relationships_through_eph_id__id__ref_raw_only_"]
    assert "raw_only" in daily["through_eph"]["upstream"]


def test_sensors_merge_source_and_table_meta(shapes_plan):
    daily = _tasks(shapes_plan, "shapes__daily")
    hourly = _tasks(shapes_plan, "shapes__hourly")
    orders = daily["wait__other_domain__mrt_orders"]
    assert (orders["upstream_domain"], orders["upstream_model"]) == ("other_domain", "mrt_orders")
    assert orders["sources"] == ["source.shapes.other.orders"]
    # the table's `wait` replaces the source's `wait` (one level inside handoff_upstream)
    assert (orders["timeout_s"], orders["poke_interval_s"], orders["mode"]) == (21600, 60, "deferrable")
    customers = hourly["wait__other_domain__customers"]
    assert customers["upstream_model"] == "customers"  # model defaults to the table name
    assert customers["timeout_s"] == 7200
    # a dependency on another pipeline of the same domain is a sensor too
    cross = hourly["wait__shapes__through_eph"]
    assert (cross["upstream_domain"], cross["upstream_model"]) == ("shapes", "through_eph")
    assert sorted(hourly["hourly_rollup"]["upstream"]) == ["wait__other_domain__customers",
                                                          "wait__shapes__through_eph"]


def test_settings_compose(shapes_plan):
    daily = _tasks(shapes_plan, "shapes__daily")
    assert (daily["base"]["retries"], daily["base"]["retry_delay_s"], daily["base"]["pool"]) == (0, 90, "duckdb")
    assert daily["base"]["available_by"] == "04:00" and daily["base"]["access"] == "public"
    assert (daily["raw_only"]["retries"], daily["raw_only"]["owner"]) == (2, "team-shapes")
    assert (daily["raw_things"]["retries"], daily["raw_things"]["pool"]) == (1, None)  # built-in defaults


def test_compile_is_deterministic(fixture_manifest, tmp_path):
    manifest = fixture_manifest("shapes")
    first = tmp_path / "a.plan.json"
    second = tmp_path / "b.plan.json"
    for out in (first, second):
        done = subprocess.run([*HANDOFF, "compile", str(manifest), "-o", str(out)], capture_output=True, text=True)
        assert done.returncode == 0, done.stderr
    assert first.read_bytes() == second.read_bytes()
    assert load_plan(first).domain.name == "shapes"


def test_hostile_names_stay_data(fixture_manifest, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    plan = compile_manifest(load_manifest(fixture_manifest("evil")))
    tasks = _tasks(plan, "evil__daily")
    assert set(tasks) == {"caf__orders", "x_quote"}
    assert tasks["caf__orders"]["name"] == "café_orders"
    assert tasks["x_quote"]["owner"] == "O'Brien \"\"\" \\ %s {0} ünï"
    assert plan.domain.owner.startswith('team "quoted"')
    text = dumps(plan)
    assert json.loads(text) == plan.to_json()
    assert validate_plan(json.loads(text), "evil") == plan
    assert not list(tmp_path.rglob("HANDOFF_PWNED"))


# ---- bad input: one line, exit 2, nothing written ----------------------------------------

def _mutated(manifest_path: Path, tmp_path: Path, mutate) -> Path:
    data = json.loads(manifest_path.read_text())
    mutate(data)
    out = tmp_path / "manifest.json"
    out.write_text(json.dumps(data))
    return out


def _unknown_dependency(data):
    data["nodes"]["model.shapes.base"]["depends_on"]["nodes"].append("model.shapes.does_not_exist")


BAD_MANIFESTS = {
    "unknown dependency": (_unknown_dependency, "depends on model.shapes.does_not_exist, which is not in the manifest"),
    "case-only twins": (lambda d: d["nodes"]["model.shapes.base"].update(
                            relation_name=d["nodes"]["model.shapes.raw_only"]["relation_name"].upper()),
                        "model.shapes.base and model.shapes.raw_only differ only in case"),
    "disabled dependency": (lambda d: d["nodes"]["model.shapes.base"]["config"].update(enabled=False),
                            "depends on model.shapes.base, which is disabled"),
    "dependency in disabled": (lambda d: d["nodes"]["model.shapes.raw_only"]["depends_on"]["nodes"].append(
                                   "model.shapes.gone") or d["disabled"].update({"model.shapes.gone": [{}]}),
                               "depends on model.shapes.gone, which is disabled"),
    "truncated": (None, "not valid JSON"),
    "wrong schema version": (lambda d: d["metadata"].update(dbt_schema_version="https://schemas.getdbt.com/dbt/manifest/v4.json"),
                             "manifest schema v4 is not supported"),
    "not a manifest url": (lambda d: d["metadata"].update(dbt_schema_version="hello"), "not a dbt manifest schema URL"),
    "missing nodes": (lambda d: d.pop("nodes"), "'nodes' is missing"),
    "nodes not an object": (lambda d: d.update(nodes=[]), "'nodes' is a list, not an object"),
    "depends_on broken": (lambda d: d["nodes"]["model.shapes.base"].update(depends_on={"nodes": "x"}),
                          "depends_on.nodes is not a list"),
    "node without name": (lambda d: d["nodes"]["model.shapes.base"].pop("name"), "has no 'name'"),
    "compiled_code not text": (lambda d: d["nodes"]["model.shapes.base"].update(compiled_code=123),
                               "node model.shapes.base: compiled_code is a int, not text"),
    "bad meta": (lambda d: d["nodes"]["model.shapes.base"]["config"]["meta"]["handoff"].update(available_by="4am"),
                 "HO103 model.shapes.base"),
}


@pytest.mark.parametrize("case", sorted(BAD_MANIFESTS))
def test_bad_manifest_gives_one_line_and_writes_nothing(case, fixture_manifest, tmp_path):
    mutate, expected = BAD_MANIFESTS[case]
    if mutate is None:
        bad = tmp_path / "manifest.json"
        bad.write_text(fixture_manifest("shapes").read_text()[:5000])
    else:
        bad = _mutated(fixture_manifest("shapes"), tmp_path, mutate)
    out = tmp_path / "plans"
    done = subprocess.run([*HANDOFF, "compile", str(bad), "-o", f"{out}/"], capture_output=True, text=True)
    assert done.returncode == 2, done.stdout + done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith("handoff: error: ") and expected in lines[0], lines[0]
    assert str(bad) in lines[0]
    assert not out.exists() or not any(out.iterdir())
    assert "Traceback" not in done.stderr


def test_task_ids_colliding_after_normalisation_get_a_suffix(fixture_manifest, tmp_path):
    """`raw only` and `raw_only` are both valid dbt names; the one already a valid task id keeps it."""
    def rename(d):
        d["nodes"]["model.shapes.raw_only"].update(name="raw only")
        d["nodes"]["model.shapes.base"].update(name="raw_only")
    plan = compile_manifest(load_manifest(_mutated(fixture_manifest("shapes"), tmp_path, rename)))
    daily = _tasks(plan, "shapes__daily")
    by_id = {t["unique_id"]: tid for tid, t in daily.items() if t["kind"] != "sensor"}
    assert by_id["model.shapes.base"] == "raw_only"
    assert by_id["model.shapes.raw_only"].startswith("raw_only__") and len(by_id["model.shapes.raw_only"]) == 18
    again = compile_manifest(load_manifest(_mutated(fixture_manifest("shapes"), tmp_path, rename)))
    assert _tasks(again, "shapes__daily").keys() == daily.keys()  # deterministic


def test_model_keys_resolve_a_bare_name_to_the_latest_version():
    from handoff.plan import model_keys

    assert model_keys("orders", None, None) == ("orders",)
    assert model_keys("dim", "2", "2") == ("dim", "dim_v2")
    assert model_keys("dim", "1", "2") == ("dim_v1",)
    assert model_keys("dim", "3", "2") == ("dim_v3",)  # a pre-release is never the bare name
    assert model_keys("sales.daily", None, None) == ("sales.daily",)


def test_missing_manifest(tmp_path):
    done = subprocess.run([*HANDOFF, "compile", str(tmp_path / "nope.json")], capture_output=True, text=True)
    assert done.returncode == 2 and "file not found" in done.stderr and len(done.stderr.splitlines()) == 1


BAD_PLANS = {
    "newer version": (lambda p: p.update(plan_version=3), "plan version 3 is newer than this handoff reads (2)"),
    "older version": (lambda p: p.update(plan_version=1), "re-compile it with `handoff compile`"),
    "version not int": (lambda p: p.update(plan_version="2"), "plan_version is '2', not an integer"),
    "schema": (lambda p: p["pipelines"][0]["tasks"][0].update(retries="many"), "does not match schemas/plan.schema.json"),
    "unknown upstream task": (lambda p: p["pipelines"][0]["tasks"][0].update(upstream=["ghost"]),
                              "waits on unknown task(s) ghost"),
    "duplicate task": (lambda p: p["pipelines"][0]["tasks"].append(dict(p["pipelines"][0]["tasks"][0])),
                       "duplicate task id"),
    "not an object": (lambda p: p.clear() or p.update(x=1), "plan_version is None"),
}


@pytest.mark.parametrize("case", sorted(BAD_PLANS))
def test_bad_plan_gives_one_line(case, shapes_plan, tmp_path):
    mutate, expected = BAD_PLANS[case]
    plan = json.loads(dumps(shapes_plan))
    mutate(plan)
    path = tmp_path / "shapes.plan.json"
    path.write_text(json.dumps(plan))
    with pytest.raises(HandoffError) as caught:
        load_plan(path)
    assert expected in str(caught.value) and str(path) in str(caught.value)
    done = subprocess.run([*HANDOFF, "inspect", str(path)], capture_output=True, text=True)
    assert done.returncode == 2 and expected in done.stderr and len(done.stderr.splitlines()) == 1


def test_parsing_a_fixture_project_writes_no_dbt_user_id(fixture_manifest):
    """dbt's anonymous usage stats are off in tests: no .user.yml appears next to a profiles.yml
    (the fixtures once carried committed ones; .gitignore now refuses them)."""
    for name in ("shapes", "evil"):
        project = fixture_manifest(name).parent.parent
        assert (project / "profiles.yml").is_file()
        assert not list(project.rglob(".user.yml")), name
    fixtures = Path(__file__).parent / "fixtures" / "dbt"
    assert not list(fixtures.rglob(".user.yml"))


def test_a_domain_mutes_message_kinds_in_its_meta(fixture_manifest, tmp_path):
    def mute(data):
        for node in data["nodes"].values():
            for meta in (node.get("meta") or {}, (node.get("config") or {}).get("meta") or {}):
                if "handoff_domain" in meta:
                    meta["handoff_domain"]["mute"] = {"sla_miss": True, "blocked": False}

    plan = compile_manifest(load_manifest(_mutated(fixture_manifest("shapes"), tmp_path, mute)))
    assert plan.domain.mute == ("sla_miss",)
    assert validate_plan(json.loads(dumps(plan)), "shapes") == plan
    assert "mute" not in compile_manifest(load_manifest(fixture_manifest("shapes"))).to_json()["domain"]  # plans stay as they were
