"""The domain map: the registry's overview queries (SQLite and PostgreSQL), `handoff map` (text, JSON,
Mermaid, one self-contained HTML file) and that file in headless Chromium with no network.

Plans are compiled by real dbt from the example domains (marketplace -> finance -> marketing).
The focus-mode test replicates them into 75 domains (25 copies of the three)."""

from __future__ import annotations

import json
import re
from dataclasses import replace
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from handoff.manifest import load_manifest
from handoff.plan import compile_manifest, dumps
from handoff.plan_model import Plan
from handoff.registry import Registry
from handoff.ui.mapview import mermaid, neighbourhood, static_html
from support.browser import shot, texts, wait_for

HANDOFF = [sys.executable, "-m", "handoff.cli"]
EDGES = [("finance", "marketing", ["mrt_revenue"]), ("marketplace", "finance", ["mrt_orders"]),
         ("marketplace", "marketing", ["mrt_items"])]
HOSTILE = '<img src=x onerror="document.title=\'owned\'"></script>'


@pytest.fixture(scope="module")
def example_plans(example_manifests) -> dict[str, Plan]:
    plans = {d: compile_manifest(load_manifest(path)) for d, path in example_manifests.manifests.items()}
    # untrusted text must stay text in every output
    plans["finance"] = replace(plans["finance"], domain=replace(plans["finance"].domain, owner=HOSTILE))
    return plans


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def registry_url(request, tmp_path, example_plans) -> str:
    url = f"sqlite:///{tmp_path}/registry.db" if request.param == "sqlite" else str(
        request.getfixturevalue("postgres_database"))
    with Registry(url) as registry:
        registry.publish(list(example_plans.values()))
    return url


def test_domain_map_aggregates_hand_overs_per_pair_of_domains(registry_url):
    with Registry(registry_url, must_exist=True) as registry:
        found = registry.domain_map()
    assert [d["name"] for d in found["domains"]] == ["finance", "marketing", "marketplace"]
    assert [(e["upstream"], e["downstream"], e["models"]) for e in found["edges"]] == EDGES
    by = {d["name"]: d for d in found["domains"]}
    assert by["finance"]["owner"] == HOSTILE
    assert [p["dag_id"] for p in by["marketing"]["pipelines"]] == ["marketing__daily", "marketing__events",
                                                                  "marketing__hourly"]
    assert by["marketplace"]["sensors"] == 0 and by["finance"]["sensors"] == 1
    assert by["marketplace"]["models"] == sum(p["models"] for p in by["marketplace"]["pipelines"]) > 0
    assert 0 < by["marketplace"]["public"] < by["marketplace"]["models"]
    assert all(e["sensors"] == 1 for e in found["edges"])


def test_search_locate_and_pipeline_waits(registry_url):
    with Registry(registry_url, must_exist=True) as registry:
        hits = registry.search_models("ORDERS")
        assert hits and hits[0]["model"] == "mrt_orders" or {h["model"] for h in hits} >= {"mrt_orders"}
        assert all("orders" in h["model"].lower() or "orders" in h["task_id"].lower() for h in hits)
        assert registry.search_models("%") == []  # a literal, not a wildcard
        assert registry.search_models("   ") == []
        waits = registry.pipeline_waits("finance__daily")
        assert [w["sensor_task_id"] for w in waits["waits_on"]] == ["wait__marketplace__mrt_orders"]
        assert waits["waits_on"][0]["upstream"]["dag_id"] == "marketplace__daily"
        assert registry.locate("finance__daily", "mrt_revenue")["model"] == "mrt_revenue"
        sensor = registry.locate("finance__daily", "wait__marketplace__mrt_orders")
        assert sensor["upstream"] == {"domain": "marketplace", "model": "mrt_orders"}
        assert [p["dag_id"] for p in registry.domain_pipelines("marketing")] == ["marketing__daily",
                                                                                 "marketing__events",
                                                                                 "marketing__hourly"]
        from handoff.errors import HandoffError

        with pytest.raises(HandoffError, match="did you mean 'finance'"):
            registry.domain_pipelines("financ")
        with pytest.raises(HandoffError, match="no published pipeline"):
            registry.pipeline_waits("nope__daily")


def _handoff(*args: str, url: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*HANDOFF, *args, "--registry", url], capture_output=True, text=True, timeout=120)


def test_map_command_text_json_mermaid_and_errors(tmp_path, example_plans):
    url = f"sqlite:///{tmp_path}/registry.db"
    with Registry(url) as registry:
        registry.publish(list(example_plans.values()))
    text = _handoff("map", url=url)
    assert text.returncode == 0, text.stderr
    assert "3 domain(s), 3 hand-over(s)" in text.stdout and "marketplace  finance     mrt_orders" in text.stdout
    as_json = json.loads(_handoff("map", "--format", "json", "--domain", "marketing", "--hops", "0", url=url).stdout)
    assert [d["name"] for d in as_json["domains"]] == ["marketing"] and as_json["edges"] == []
    chart = _handoff("map", "--format", "mermaid", "--domain", "finance", url=url)
    assert chart.returncode == 0, chart.stderr
    assert chart.stdout.startswith("flowchart LR\n")
    assert '-->|"mrt_orders"|' in chart.stdout and "class d0 changed" in chart.stdout
    assert "<img" not in chart.stdout  # labels carry names only; owners are not in the chart
    for args, message in ((["--domain", "financ"], "no domain 'financ' is published"),
                          (["--domain", "finance", "--hops", "99"], "--hops 99 is out of range"),
                          (["-o", str(tmp_path / "x")], "--output needs --format"),
                          (["--hops", "2"], "--hops 2 means nothing without --domain"),
                          (["--html", str(tmp_path / "x"), "--format", "mermaid"], "--html prints nothing"),
                          (["--html", str(tmp_path / "x"), "--format", "mermaid", "-o", str(tmp_path / "x")],
                           "--html and --output name the same file"),
                          (["--html", str(tmp_path / "x"), "--format", "json", "-o", str(tmp_path / "." / "x")],
                           "--html and --output name the same file")):
        bad = _handoff("map", *args, url=url)
        assert bad.returncode == 2, (args, bad.stdout, bad.stderr)
        assert message in bad.stderr and len(bad.stderr.strip().splitlines()) == 1, bad.stderr
    assert not (tmp_path / "x").exists()
    missing = _handoff("map", url=f"sqlite:///{tmp_path}/none.db")
    assert missing.returncode == 2 and "no registry" in missing.stderr and not (tmp_path / "none.db").exists()


def test_mermaid_escapes_names_and_labels():
    hostile = {"domains": [{"name": 'a"]; click x', "models": 1}],
               "edges": [{"upstream": 'a"]; click x', "downstream": "b|c", "models": ["m`1", "m2", "m3", "m4"]}]}
    chart = mermaid(hostile)
    assert '"]; click' not in chart and "|c" not in chart.replace("-->|", "").replace('"| ', "")
    assert "#34;" in chart and "+1 more" in chart and re.fullmatch(r"(?s)flowchart LR\n(  .*\n)+", chart)


def test_neighbourhood_keeps_domains_within_hops():
    found = {"domains": [{"name": n} for n in "abcd"],
             "edges": [{"upstream": "a", "downstream": "b"}, {"upstream": "b", "downstream": "c"},
                       {"upstream": "c", "downstream": "d"}]}
    assert [d["name"] for d in neighbourhood(found, ["b"], 1)["domains"]] == ["a", "b", "c"]
    assert [d["name"] for d in neighbourhood(found, ["a"], 2)["domains"]] == ["a", "b", "c"]
    assert len(neighbourhood(found, ["a"], 0)["edges"]) == 0


def test_neighbourhood_follows_paths_up_and_down_never_to_siblings():
    """Hop k: k hand-overs up from the focus, k down; a domain that only shares an upstream (a
    sibling) or a downstream (a co-parent) with the focus is not on a path from it."""
    edges = [("a", "b"), ("a", "c"), ("c", "e"), ("x", "d"), ("b", "d"), ("d", "f"), ("f", "g"), ("y", "a")]
    found = {"domains": [{"name": n} for n in "abcdefgxy"],
             "edges": [{"upstream": u, "downstream": d} for u, d in edges]}

    def names(focus, hops):
        return "".join(d["name"] for d in neighbourhood(found, focus, hops)["domains"])

    assert names(["b"], 1) == "abd"          # not c (sibling), not x (co-parent of d)
    assert names(["b"], 2) == "abdfy"        # y above a, f below d; still no c, e, x
    assert names(["c"], 1) == "ace"
    assert names(["d"], 1) == "bdfx"
    assert names(["b", "c"], 1) == "abcde"   # several foci: the union of their paths
    assert names(["b"], 10) == "abdfgy"
    view = neighbourhood(found, ["b"], 1)
    assert [(e["upstream"], e["downstream"]) for e in view["edges"]] == [("a", "b"), ("b", "d")]


def test_static_html_opens_offline_in_chromium_and_shows_the_mesh(tmp_path, example_plans, browser):
    url = f"sqlite:///{tmp_path}/registry.db"
    with Registry(url) as registry:
        registry.publish(list(example_plans.values()))
    page = tmp_path / "map.html"
    done = _handoff("map", "--html", str(page), url=url)
    assert done.returncode == 0, done.stderr
    html = page.read_text()
    assert "connect-src" not in html and "default-src 'none'" in html  # the page may fetch nothing
    assert not re.search(r"""(src|href)=["']?https?:""", html)
    assert HOSTILE not in html  # inline data is escaped JSON
    browser.get(page.as_uri())
    wait_for(browser, "document.body.dataset.rendered === '1'")
    assert browser.title == "handoff domain map"
    assert [r.split("\t")[0] for r in texts(browser, "#domain-list tbody tr")] == ["finance", "marketing", "marketplace"]
    rows = [r.split("\t") for r in texts(browser, "#edge-list tbody tr")]
    assert [(r[0], r[1]) for r in rows] == [(f"{u} → {d}", ", ".join(m)) for u, d, m in EDGES]
    assert browser.execute_script("return window.handoffMap.cy().nodes().length") == 3
    assert browser.execute_script("return window.handoffMap.cy().edges().length") == 3
    browser.execute_script("window.handoffMap.select('finance')")
    wait_for(browser, "document.getElementById('details-name')")
    assert texts(browser, "#details-name") == ["finance"]
    assert texts(browser, "#details-read tbody tr, #details-read tr") and "mrt_revenue" in texts(browser, "#details-read")[0]
    assert HOSTILE in browser.execute_script("return document.getElementById('details').innerText")
    assert not browser.execute_script("return document.querySelector('#details img, #domain-list img')")
    assert browser.title != "owned"
    assert not [e for e in browser.get_log("browser") if e["level"] == "SEVERE"]
    shot(browser, "static-map-example")


def test_static_html_of_75_domains_opens_on_one_domain_with_search(tmp_path, example_plans, browser):
    copies = []
    for k in range(25):
        for plan in example_plans.values():
            text = re.sub(r"\b(marketplace|finance|marketing)", lambda m: f"{m.group(1)}{k:02d}", dumps(plan))
            copies.append(Plan.from_json(json.loads(text)))
    url = f"sqlite:///{tmp_path}/registry.db"
    with Registry(url) as registry:
        registry.publish(copies, validate=False)
        found = registry.domain_map()
    assert len(found["domains"]) == 75 and len(found["edges"]) == 75
    page = tmp_path / "big.html"
    page.write_text(static_html(found))
    browser.get(page.as_uri())
    wait_for(browser, "document.body.dataset.rendered === '1'")
    assert browser.execute_script("return document.body.dataset.mode") == "focus"
    shown = browser.execute_script("return window.handoffMap.cy().nodes().length")
    assert shown == 3  # one domain and its two neighbours, not 75
    assert "75 domains, 75 hand-overs" in texts(browser, "#status")[0]
    search = browser.find_element("id", "search")
    search.send_keys("finance07")
    wait_for(browser, "document.querySelectorAll('#results li').length > 0")
    assert texts(browser, "#results li")[0].startswith("domain finance07")
    browser.find_element("css selector", "#results li a").click()
    wait_for(browser, "window.handoffMap.state.focus === 'finance07'")
    assert sorted(r.split("\t")[0] for r in texts(browser, "#edge-list tbody tr")) == [
        "finance07 → marketing07", "marketplace07 → finance07"]  # its own hand-overs only: no hairball
    shot(browser, "static-map-75-domains-focus")
