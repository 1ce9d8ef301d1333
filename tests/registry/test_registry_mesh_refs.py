"""dbt Mesh refs through the registry, with the real CLI on real dbt + dbt-loom manifests (docs/mesh.md):
compile maps `ref('shipping', ...)` to domain logistics through the registry's binding, `check` passes
the example mesh and rejects the upstream's next release that removes a pinned version and makes a
read model private (exit 1, one line naming the ref), warns when an unpinned ref's latest version
moves; who-depends-on, explain and impact list the ref-based consumers with owners and Slack channels.

Runs on SQLite and on PostgreSQL (``registry_url``); dbt runs once per module.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from support.examples import build_mesh, check, copy_examples, run_dbt

from handoff.cli import main

LOOM = ("marketplace", "shipping", "support")

# The upstream's next release: version 3 becomes the latest, version 1 (pinned by support) is removed,
# carrier_performance (read by support) becomes private to the billing group.
NEXT_MARTS = """
groups:
  - name: carrier_billing
    owner: {name: logistics-billing, email: billing@example.com}

models:
  - name: shipments
    access: public
    latest_version: 3
    config:
      contract: {enforced: true}
      meta:
        handoff:
          available_by: "03:00"
    columns:
      - {name: shipment_id, data_type: integer}
      - {name: order_id, data_type: integer}
      - {name: carrier, data_type: varchar}
      - {name: shipped_at, data_type: date}
      - {name: delivered_at, data_type: date}
      - {name: delivery_days, data_type: integer}
      - {name: cost_cents, data_type: integer}
    versions:
      - v: 2
        columns:
          - include: all
            exclude: [cost_cents]
      - v: 3

  - name: carrier_performance
    access: private
    group: carrier_billing

  - name: carrier_costs
    access: private
    group: carrier_billing
"""
NEXT_V3 = """select shipment_id, order_id, carrier, shipped_at, delivered_at,
       cast(delivered_at - shipped_at as integer) as delivery_days, cost_cents
from {{ ref('stg_shipments') }}
"""


@pytest.fixture(scope="module")
def loom(tmp_path_factory):
    """The example mesh parsed (support compiled by dbt, so its plan knows the columns each model
    reads), and the upstream's next release parsed in a second copy."""
    mesh = build_mesh(tmp_path_factory.mktemp("loom"), build=False, domains=LOOM)
    check(run_dbt(["compile"], mesh.project_dirs["support"], mesh.env))
    nxt = copy_examples(tmp_path_factory.mktemp("next")) / "shipping"
    (nxt / "models" / "marts" / "_marts.yml").write_text(NEXT_MARTS)
    (nxt / "models" / "marts" / "shipments_v1.sql").unlink()
    (nxt / "models" / "marts" / "shipments_v3.sql").write_text(NEXT_V3)
    env = {"HANDOFF_DUCKDB_PATH": str(nxt.parent / "next.duckdb")}
    check(run_dbt(["deps"], nxt, env))
    check(run_dbt(["parse"], nxt, env))
    return mesh, nxt / "target" / "manifest.json"


@pytest.fixture(autouse=True)
def no_ambient_registry(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("HANDOFF_REGISTRY_URL", raising=False)
    monkeypatch.chdir(tmp_path)


def run(capsys, *args: str) -> tuple[int, str, str]:
    capsys.readouterr()
    code = main(list(args))
    out = capsys.readouterr()
    return code, out.out, out.err


def test_a_ref_to_an_unpublished_project_is_one_line_naming_the_ref(loom, registry_url, tmp_path, capsys):
    mesh, _ = loom
    support = str(mesh.manifests["support"])
    plans = tmp_path / "plans"
    assert run(capsys, "compile", str(mesh.manifests["marketplace"]), "-o", f"{plans}/")[0] == 0
    assert run(capsys, "publish", "--registry", registry_url, str(plans))[0] == 0

    code, out, err = run(capsys, "compile", support, "--registry", registry_url, "-o", f"{plans}/")
    assert (code, out) == (2, "")
    [line] = err.splitlines()
    assert line.startswith(f"handoff: error: {support}: model.support.int_late_shipments "
                           "(models/staging/int_late_shipments.sql): ref('shipping', 'shipments') reads dbt project "
                           "'shipping', which no domain in ")
    assert line.endswith("is bound to — publish the plan of dbt project 'shipping' first (`handoff compile` and "
                         "`handoff publish` in that project), then compile this one again")
    assert not (plans / "support.plan.json").exists()

    # no registry at all: still one line naming the ref
    missing = f"sqlite:///{tmp_path / 'nowhere.db'}"
    code, _, err = run(capsys, "compile", support, "--registry", missing)
    assert code == 2 and len(err.splitlines()) == 1, err
    assert "ref('shipping', 'shipments') is a cross-project ref; handoff finds the domain of dbt project " \
           "'shipping' in the registry, and " in err


def test_impact_on_the_upstream_lists_the_ref_consumers(loom, tmp_path, capsys):
    mesh, next_manifest = loom
    registry = f"sqlite:///{tmp_path / 'registry.db'}"
    plans = tmp_path / "plans"
    for upstream in ("marketplace", "shipping"):
        assert run(capsys, "compile", str(mesh.manifests[upstream]), "-o", f"{plans}/")[0] == 0
    assert run(capsys, "publish", "--registry", registry, str(plans))[0] == 0
    assert run(capsys, "compile", str(mesh.manifests["support"]), "--registry", registry, "-o", f"{plans}/")[0] == 0
    assert run(capsys, "publish", "--registry", registry, str(plans / "support.plan.json"))[0] == 0

    code, out, err = run(capsys, "impact", "--base", str(mesh.manifests["shipping"]), "--head", str(next_manifest),
                         "--registry", registry, "--format", "json")
    assert code == 0, err
    report = json.loads(out)
    assert [(t["slack"], t["owners"], t["domains"], t["breaking"]) for t in report["teams"]] == [
        ("#support-data", ["team-support"], ["support"], True)]
    models = {m["unique_id"]: m for m in report["models"]}
    [consumer] = models["model.shipping.carrier_performance"]["consumers"]
    assert {k: consumer[k] for k in ("domain", "dag_id", "task_id", "owner", "slack", "breaks", "reads")} == {
        "domain": "support", "dag_id": "support__daily", "task_id": "mrt_carrier_complaints", "owner": "team-support",
        "slack": "#support-data", "breaks": True, "reads": {"all": False, "columns": ["avg_delivery_days", "carrier"]}}
    removed = models["model.shipping.shipments.v1"]
    assert [c["kind"] for c in removed["changes"]] == ["version_removed"]
    assert "mrt_carrier_complaints" in {c["task_id"] for c in removed["consumers"]}
    code, out, _ = run(capsys, "impact", "--base", str(mesh.manifests["shipping"]), "--head", str(next_manifest),
                       "--registry", registry)
    assert code == 0
    assert "| 🔴 **#support-data** | team-support | support |" in out
