"""dbt Mesh cross-project refs on real dbt + dbt-loom manifests: which nodes are another project's,
what each ref resolves to, and how refs become sensors next to a source-based one (docs/mesh.md).

The example mesh: project shipping (domain logistics) is read by project support through
`ref('shipping', ...)` — injected by the real dbt-loom plugin from shipping's manifest on disk —
and support reads marketplace through a source marked handoff_upstream.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from support.examples import build_mesh, check, run_dbt

from handoff.cross_project import find_refs
from handoff.errors import HandoffError
from handoff.manifest import load_manifest, parse_manifest
from handoff.plan import compile_manifest, dumps, validate_plan

LOOM = ("marketplace", "shipping", "support")
PROJECTS = {"shipping": "logistics", "marketplace": "marketplace"}


@pytest.fixture(scope="module")
def loom(tmp_path_factory):
    """marketplace, shipping and support after `dbt deps` + `dbt parse` (support through dbt-loom)."""
    return build_mesh(tmp_path_factory.mktemp("loom"), build=False, domains=LOOM)


@pytest.fixture(scope="module")
def support_manifest(loom):
    return load_manifest(loom.manifests["support"])


def test_dbt_loom_injects_the_other_projects_nodes_without_files(loom, support_manifest):
    raw = json.loads(loom.manifests["support"].read_text("utf-8"))["nodes"]
    injected = sorted(uid for uid, n in raw.items() if n["package_name"] == "shipping")
    # dbt-loom injects every node of shipping's manifest (not only public ones) as a model without a file
    assert injected == ["model.shipping.carrier_costs", "model.shipping.carrier_performance",
                        "model.shipping.shipments.v1", "model.shipping.shipments.v2",
                        "model.shipping.stg_shipments", "seed.shipping.raw_shipments"]
    assert {(raw[u]["original_file_path"], raw[u]["path"], raw[u]["resource_type"]) for u in injected} == {
        ("", "", "model")}
    assert {u: raw[u]["access"] for u in injected if raw[u]["access"] != "public"} == {
        "model.shipping.carrier_costs": "private", "model.shipping.stg_shipments": "protected",
        "seed.shipping.raw_shipments": "protected"}
    v1 = raw["model.shipping.shipments.v1"]
    assert (v1["version"], v1["latest_version"], v1["relation_name"]) == ("1", "2", '"mesh"."shipping"."shipments_v1"')
    # handoff's reading of the same rule
    nodes = support_manifest.nodes
    assert {u for u, n in nodes.items() if n.external} == set(injected)
    assert all(n.external is False for u, n in nodes.items() if n.package_name == "support")


def test_refs_resolve_as_dbt_resolved_them(support_manifest):
    found = [(r.reader.split(".")[-1], r.call(), r.model_key, r.target) for r in find_refs(support_manifest)]
    assert found == [
        ("int_late_shipments", "ref('shipping', 'shipments')", "shipments", "model.shipping.shipments.v2"),
        ("mrt_carrier_complaints", "ref('shipping', 'carrier_performance')", "carrier_performance",
         "model.shipping.carrier_performance"),
        ("mrt_carrier_complaints", "ref('shipping', 'shipments', v=1)", "shipments_v1",
         "model.shipping.shipments.v1"),
    ]
    assert find_refs(load_manifest_of(support_manifest, "shipping")) == []


def load_manifest_of(manifest, project):
    return load_manifest(Path(manifest.path).parents[2] / project / "target" / "manifest.json")


def test_refs_and_a_source_become_sensors_on_the_exact_upstream_models(support_manifest):
    plan = validate_plan(compile_manifest(support_manifest, projects=PROJECTS).to_json(), "support plan").to_json()
    [daily] = plan["pipelines"]
    tasks = {t["task_id"]: t for t in daily["tasks"]}
    sensors = {tid: (t["upstream_domain"], t["upstream_model"], t["sources"], t.get("refs"),
                     t["timeout_s"], t["poke_interval_s"], t["mode"])
               for tid, t in tasks.items() if t["kind"] == "sensor"}
    assert sensors == {
        # unpinned: the bare name, which the registry resolves to the latest version
        "wait__logistics__shipments": ("logistics", "shipments", [], ["model.shipping.shipments.v2"],
                                       3 * 3600, 300, "deferrable"),
        "wait__logistics__shipments_v1": ("logistics", "shipments_v1", [], ["model.shipping.shipments.v1"],
                                          3 * 3600, 300, "deferrable"),
        # handoff_refs.upstreams."shipping.carrier_performance" replaces the project-level wait
        "wait__logistics__carrier_performance": ("logistics", "carrier_performance", [],
                                                 ["model.shipping.carrier_performance"], 3600, 120, "deferrable"),
        # the other style, in the same domain: a source marked handoff_upstream
        "wait__marketplace__mrt_orders": ("marketplace", "mrt_orders", ["source.support.marketplace.mrt_orders"],
                                          None, 2 * 3600, 300, "deferrable"),
    }
    upstream = {tid: t["upstream"] for tid, t in tasks.items() if t["kind"] != "sensor"}
    assert upstream == {
        "raw_tickets": [],
        "stg_tickets": ["raw_tickets"],
        "stg_ticket_orders": ["stg_tickets", "wait__marketplace__mrt_orders"],
        # through the ephemeral int_late_shipments, which holds the unpinned ref
        "mrt_ticket_shipments": ["stg_tickets", "wait__logistics__shipments"],
        "mrt_carrier_complaints": ["stg_tickets", "wait__logistics__carrier_performance",
                                   "wait__logistics__shipments_v1"],
    }
    assert plan["notes"] == []  # nothing is mistaken for an installed package's model


def test_compile_is_deterministic_and_independent_of_map_order(support_manifest):
    one = compile_manifest(support_manifest, projects=PROJECTS)
    two = compile_manifest(support_manifest, projects=dict(reversed(list(PROJECTS.items()))))
    assert one == two and dumps(one) == dumps(two)


def test_a_ref_to_an_unmapped_project_is_one_line_naming_the_ref(support_manifest):
    with pytest.raises(HandoffError) as unbound:
        compile_manifest(support_manifest, projects={"marketplace": "marketplace"}, registry="sqlite:///r.db")
    line = unbound.value.one_line()
    assert "\n" not in line
    assert ("model.support.int_late_shipments (models/staging/int_late_shipments.sql): ref('shipping', "
            "'shipments') reads dbt project 'shipping', which no domain in sqlite:///r.db is bound to") in line
    assert "publish the plan of dbt project 'shipping' first" in line
    with pytest.raises(HandoffError) as no_registry:
        compile_manifest(support_manifest)
    assert "ref('shipping', 'shipments') is a cross-project ref (dbt Mesh) (and 2 more ref(s))" in \
        no_registry.value.one_line()
    assert "pass --registry URL (or set HANDOFF_REGISTRY_URL)" in no_registry.value.one_line()


def test_a_manifest_without_refs_needs_no_registry(loom):
    plan = compile_manifest(load_manifest(loom.manifests["shipping"]))
    assert plan.domain.name == "logistics"
    tasks = {t.task_id for t in plan.pipelines[0].tasks}
    assert {"shipments_v1", "shipments_v2", "carrier_performance", "carrier_costs"} <= tasks


def test_handoff_validate_counts_refs_like_the_macro(loom, capsys):
    from handoff.cli import main

    run = check(run_dbt(["run-operation", "handoff_validate"], loom.project_dirs["support"], loom.env))
    assert run.printed == ["handoff: support: 6 nodes, 1 cross-domain sources, 3 cross-project refs, 0 violations"]
    capsys.readouterr()  # dbt's own log lines
    assert main(["validate", str(loom.manifests["support"])]) == 0
    assert capsys.readouterr().out.strip() == run.printed[0]


# -- an installed package's model is not another project's ----------------------------------

@pytest.fixture(scope="module")
def with_installed_package(loom, tmp_path_factory):
    """support plus a local package `calendar` with a model, read with a two-argument ref too."""
    root = tmp_path_factory.mktemp("installed")
    shutil.copytree(loom.root, root / "integration_tests", symlinks=True,
                    ignore=shutil.ignore_patterns("dbt_packages", "logs", "*.duckdb*"))
    shutil.copy(loom.root.parent / "dbt_project.yml", root / "dbt_project.yml")
    shutil.copytree(loom.root.parent / "macros", root / "macros")
    project = root / "integration_tests" / "support"
    calendar = root / "integration_tests" / "calendar"
    (calendar / "models").mkdir(parents=True)
    (calendar / "dbt_project.yml").write_text('name: calendar\nversion: "1.0.0"\nconfig-version: 2\n')
    (calendar / "models" / "dim_dates.sql").write_text("select cast('2024-02-01' as date) as day\n")
    (project / "packages.yml").write_text(
        (project / "packages.yml").read_text() + "  - local: ../calendar       # a package with a model\n")
    (project / "models" / "marts" / "mrt_tickets_by_day.sql").write_text(
        "select d.day, count(t.ticket_id) as tickets\nfrom {{ ref('calendar', 'dim_dates') }} as d\n"
        "left join {{ ref('stg_tickets') }} as t on t.opened_at = d.day\ngroup by d.day\n")
    env = loom.env
    check(run_dbt(["deps"], project, env))
    check(run_dbt(["parse"], project, env))
    return load_manifest(project / "target" / "manifest.json")


def test_a_two_argument_ref_into_an_installed_package_gets_no_sensor(with_installed_package):
    manifest = with_installed_package
    assert manifest.nodes["model.calendar.dim_dates"].external is False
    assert manifest.nodes["model.calendar.dim_dates"].original_file_path == "models/dim_dates.sql"
    assert {r.project for r in find_refs(manifest)} == {"shipping"}
    plan = compile_manifest(manifest, projects=PROJECTS).to_json()  # the file's form
    tasks = {t["task_id"]: t for t in plan["pipelines"][0]["tasks"]}
    assert tasks["mrt_tickets_by_day"]["upstream"] == ["stg_tickets"]
    assert plan["notes"] == [
        "model.support.mrt_tickets_by_day depends on model.calendar.dim_dates of package 'calendar', which handoff "
        "does not schedule: no task builds it, so on a fresh warehouse mrt_tickets_by_day fails until it exists — "
        "build it in the deploy job after `dbt deps` (`dbt build --select package:calendar`, again whenever the "
        "package changes), or move the model into this project to give it a task (docs/plan.md)"]


# -- a manifest that cannot tell ---------------------------------------------------------------

def _edited(manifest_path: Path, edit) -> dict:
    data = json.loads(manifest_path.read_text("utf-8"))
    edit(data["nodes"])
    return data


def test_a_package_both_installed_and_injected_is_one_line(loom):
    def installed_too(nodes):
        nodes["model.shipping.stg_shipments"].update(original_file_path="models/staging/stg_shipments.sql",
                                                     path="staging/stg_shipments.sql")

    manifest = parse_manifest(_edited(loom.manifests["support"], installed_too), source="edited.json")
    with pytest.raises(HandoffError) as caught:
        find_refs(manifest)
    line = caught.value.one_line()
    assert line.startswith("edited.json: model.support.int_late_shipments (models/staging/int_late_shipments.sql): "
                           "ref('shipping', 'shipments'): 'shipping' is both an installed package")
    assert "excluded_packages in dbt_loom.config.yml" in line


def test_a_manifest_without_file_fields_is_one_line(loom):
    def trimmed(nodes):
        for node in nodes.values():
            node.pop("path", None)

    manifest = parse_manifest(_edited(loom.manifests["support"], trimmed), source="trimmed.json")
    with pytest.raises(HandoffError) as caught:
        compile_manifest(manifest, projects=PROJECTS)
    assert "the manifest does not say whether 'shipping' is another dbt project" in caught.value.one_line()


def test_a_ref_that_no_longer_resolves_is_one_line(loom):
    def dropped(nodes):
        nodes["model.support.mrt_carrier_complaints"]["depends_on"]["nodes"].remove("model.shipping.shipments.v1")

    manifest = parse_manifest(_edited(loom.manifests["support"], dropped), source="stale.json")
    with pytest.raises(HandoffError) as caught:
        find_refs(manifest)
    assert "ref('shipping', 'shipments', v=1) does not resolve to a node it depends on" in caught.value.one_line()


def _loom_patched() -> dict[str, object]:
    """The raw objects now behind every attribute dbt-loom assigns (handoff.loom.PATCHED_BY_LOOM)."""
    import importlib

    from handoff.loom import PATCHED_BY_LOOM

    now: dict[str, object] = {}
    for module_name, path in PATCHED_BY_LOOM:
        owner = importlib.import_module(module_name)
        *parents, attribute = path.split(".")
        for parent in parents:
            owner = getattr(owner, parent)
        now[path] = vars(owner).get(attribute)
    return now


def _wrapper_depth(function, base) -> int:
    """How many dbt-loom wrappers (closures over ``function``) stand between ``function`` and ``base``."""
    depth = 0
    while function is not base:
        cells = dict(zip(function.__code__.co_freevars, function.__closure__ or ()))
        function = cells["function"].cell_contents
        depth += 1
    return depth


def test_dbt_loom_wraps_dbt_once_more_on_every_raw_invocation(loom, monkeypatch):
    """The fault handoff contains: dbt-loom wraps ``dbt.tracking.track`` again on each in-process
    invocation, so ~900 invocations in one process (a large dag.test, a test session) break dbt with
    RecursionError. Two raw invocations here: two more wrappers."""
    from dbt.cli.main import dbtRunner

    from handoff.loom import in_project_dir

    for key, value in loom.env.items():
        monkeypatch.setenv(key, value)
    before = _loom_patched()
    project = loom.project_dirs["support"]
    args = ["--quiet", "ls", "--project-dir", str(project), "--profiles-dir", str(loom.profiles_dir)]
    with in_project_dir(project):
        for _ in range(2):
            assert dbtRunner().invoke(args).success
    # (the autouse fixture of tests/conftest.py undoes these two wrappers after the test)
    assert _wrapper_depth(_loom_patched()["track"], before["track"]) == 2


def test_handoffs_in_process_dbt_leaves_dbt_as_it_found_it(loom, tmp_path, monkeypatch):
    """handoff's own in-process invocations (here `handoff package`, a dbt parse through dbt-loom,
    three times) leave every attribute dbt-loom patches exactly as it was: no nesting, whatever the
    number of invocations a process makes."""
    from handoff.packaging import package_project

    for key, value in loom.env.items():
        monkeypatch.setenv(key, value)
    before = _loom_patched()
    for round_ in range(3):
        package_project(loom.project_dirs["support"], profiles_dir=loom.profiles_dir,
                        output=tmp_path / f"artifact-{round_}.sqlite")
        assert _loom_patched() == before
