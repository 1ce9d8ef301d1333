"""handoff's pages inside a real Airflow 3.3 API server, driven by headless Chromium, after a late upstream.

The three example domains are built by real dbt and published; marketplace and finance run on a
real stack (scheduler, dag-processor, triggerer, api-server with the handoff plugin installed
through its entry point). finance's sensor on marketplace.mrt_orders times out (its run fails),
then marketplace runs late: the completion callback satisfies the timed-out sensor through the
API and finance's run succeeds. The SLA watch's check (sla_watch.check, what handoff_sla_watch runs)
then records the late runs' misses. A browser signs in through Airflow's login form and reads
the map, a model's page and the run status of that date (sensors, and SLA verdicts: mrt_orders
missed, mrt_items met); every assertion is on the DOM.
Without a session the pages redirect to the login page and the JSON/static routes answer 401.
"""

from __future__ import annotations

import json
import shutil
import time
import urllib.error
import urllib.request
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest
from support.airflow_stack import AirflowStack
from support.browser import shot, texts, wait_for
from support.examples import REPO, build_mesh, deploy_plans

pytestmark = pytest.mark.airflow_stack

SENSOR = "wait__marketplace__mrt_orders"
SENSOR_TIMEOUT_S = 30
# days back: the scheduler creates the latest scheduled run of each DAG itself (catchup off)
DAY = (datetime.now(timezone.utc) - timedelta(days=4)).replace(hour=0, minute=0, second=0, microsecond=0)
# marketplace.mrt_orders keeps available_by 04:30 (DAY's run, days late, misses it); mrt_items is
# given available_within 7d (due in ~3 days: the same run meets it)
ITEMS_WITHIN_S = 7 * 86400


@pytest.fixture(scope="module")
def deployment(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("ui-e2e")
    mesh = build_mesh(tmp, build=True)

    def short_wait(domain: str, plan: dict) -> None:
        plan["pipelines"][0]["execution"] = "per_task"  # the pages of tasks that ran in their own process
        for task in plan["pipelines"][0]["tasks"]:
            if domain == "finance" and task["task_id"] == SENSOR:
                task.update(timeout_s=SENSOR_TIMEOUT_S, poke_interval_s=3)
            if domain == "marketplace" and task["task_id"] == "mrt_items":  # an SLA this late run meets
                task.update(available_by=None, available_within_s=ITEMS_WITHIN_S)

    plans, registry_url = deploy_plans(mesh, tmp, ("marketplace", "finance", "marketing"), adjust=short_wait)
    (plans / "marketing.plan.json").unlink()  # published in the registry, not run by this stack
    dags = tmp / "dags"
    dags.mkdir()
    shutil.copy(REPO / "integration_tests" / "airflow" / "dags" / "handoff_dags.py", dags / "handoff_dags.py")
    return {"mesh": mesh, "plans": plans, "registry_url": registry_url, "dags": dags}


@pytest.fixture(scope="module")
def stack(deployment, module_airflow_stack_factory) -> AirflowStack:
    mesh = deployment["mesh"]
    stack = module_airflow_stack_factory(deployment["dags"], env={
        "HANDOFF_PLANS_DIR": str(deployment["plans"]),
        "HANDOFF_DBT_PROJECTS_DIR": str(mesh.root),
        "HANDOFF_DBT_PROFILES_DIR": str(mesh.profiles_dir),
        "HANDOFF_DUCKDB_PATH": str(mesh.duckdb_path),
        "HANDOFF_REGISTRY_URL": deployment["registry_url"],
        "HANDOFF_AIRFLOW_API_URL": "",  # the callback reads its API from the Airflow connection
        "DBT_SEND_ANONYMOUS_USAGE_STATS": "False",
    }, triggerer=True)
    stack.create_pool("duckdb", 1)
    body = {"connection_id": "handoff_airflow_api", "conn_type": "http", "host": "127.0.0.1", "port": stack.port,
            "login": stack.username, "password": stack.password}
    status, answer = stack.airflow_api.request("POST", "/api/v2/connections", body=body)
    assert status == 201, (status, answer)
    stack.wait_for_dags("marketplace__daily", "finance__daily", timeout=300)
    # the stack creates no scheduled runs (use_job_schedule off): only this test's triggers run
    return stack


@pytest.fixture(scope="module")
def recovered(stack) -> dict[str, str]:
    """finance's run of DAY times out waiting, then marketplace runs late and the callback recovers it."""
    started = time.monotonic()
    finance = stack.trigger("finance__daily", DAY + timedelta(hours=5))
    stack.wait_for_run("finance__daily", finance, ["failed"], timeout=SENSOR_TIMEOUT_S + 240)
    assert stack.task_states("finance__daily", finance)[SENSOR] == "failed"
    failed = time.monotonic()
    marketplace = stack.trigger("marketplace__daily", DAY + timedelta(hours=3))
    stack.wait_for_run("marketplace__daily", marketplace, ["success"], timeout=240)
    upstream = time.monotonic()
    stack.wait_for_run("finance__daily", finance, ["success"], timeout=240)
    print(f"\n[ui e2e] finance failed after {failed - started:.0f} s, late marketplace ran in {upstream - failed:.0f} s, "
          f"finance recovered {time.monotonic() - upstream:.0f} s later")
    return {"finance": finance, "marketplace": marketplace}


@pytest.fixture(scope="module")
def sla_checked(stack, recovered, deployment) -> dict:
    """The SLA check the watch DAG (and the reconcile sweep) runs, over the days since DAY: it records
    mrt_orders' (and finance's mrt_revenue's) late run as a miss in the stack's registry."""
    from handoff.notify import sla_watch
    from handoff.notify.delivery import Delivery
    from handoff.registry import Registry

    now = datetime.now(timezone.utc)
    with Registry(deployment["registry_url"], must_exist=True) as registry:
        report = sla_watch.check(registry, stack.airflow_api, Delivery("off"), now=now, lookback=now - DAY)
    missed = {m["model"]: m for m in report.missed}
    assert set(missed) == {"marketplace.mrt_orders", "finance.mrt_revenue"}, report.as_dict()
    assert {m["state"] for m in missed.values()} == {"late"}
    return missed


def _get(url: str, **headers: str) -> tuple[int, dict[str, str], str]:
    class NoRedirect(urllib.request.HTTPRedirectHandler):
        def redirect_request(self, *args: Any, **kwargs: Any) -> None:
            return None

    opener = urllib.request.build_opener(NoRedirect)
    try:
        with opener.open(urllib.request.Request(url, headers=headers), timeout=30) as answer:  # noqa: S310
            return answer.status, dict(answer.headers), answer.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, dict(error.headers), error.read().decode()


def test_without_a_session_pages_redirect_to_login_and_data_answers_401(stack):
    for path in ("/handoff/", "/handoff/models/marketplace/mrt_orders", "/handoff/runs?domain=finance&date=2026-01-01",
                 "/handoff/tasks/finance__daily/mrt_revenue", "/handoff/dag-runs/finance__daily/x"):
        status, headers, _ = _get(stack.base_url + path)
        assert status == 303, (path, status)
        assert "/auth/login?next=" in headers["location"] and "handoff" in headers["location"], headers
    for path in ("/handoff/api/map", "/handoff/api/models/marketplace/mrt_orders", "/handoff/api/search?q=orders",
                 "/handoff/api/runs?domain=marketplace&date=2026-01-01",
                 "/handoff/static/map.js", "/handoff/static/vendor/cytoscape.min.js"):
        status, _, body = _get(stack.base_url + path)
        assert status == 401, (path, status, body)
        assert "cytoscape" not in body and "marketplace" not in body
    status, _, _ = _get(stack.base_url + "/handoff/api/map", Authorization="Bearer not-a-jwt")
    assert status == 403
    status, _, body = _get(stack.base_url + "/handoff/api/map", Authorization=f"Bearer {stack.airflow_api.token()}")
    assert status == 200 and {d["name"] for d in json.loads(body)["domains"]} == {"marketplace", "finance", "marketing"}


def test_signed_in_user_reads_map_model_and_run_status_after_a_late_upstream(stack, recovered, sla_checked, browser):
    from selenium.webdriver.common.by import By

    # sign in through Airflow's own login form, which sends the browser back to the map
    browser.get(stack.base_url + "/handoff/?domain=finance")
    wait_for(browser, "document.querySelector('input[name=password]')")
    assert "/auth/login" in browser.current_url
    browser.find_element(By.NAME, "username").send_keys(stack.username)
    browser.find_element(By.NAME, "password").send_keys(stack.password)
    browser.find_element(By.CSS_SELECTOR, "button[type=submit]").click()
    wait_for(browser, "location.pathname === '/handoff/' && document.body.dataset.rendered === '1'", 60)

    # the map: three domains, the three hand-overs, finance selected with its pipelines and readers
    assert [r.split("\t")[0] for r in texts(browser, "#domain-list tbody tr")] == ["finance", "marketing", "marketplace"]
    assert [r.split("\t")[:2] for r in texts(browser, "#edge-list tbody tr")] == [
        ["finance → marketing", "mrt_revenue"], ["marketplace → finance", "mrt_orders"],
        ["marketplace → marketing", "mrt_items"]]
    assert texts(browser, "#details-name") == ["finance"]
    assert "finance__daily" in texts(browser, "#details-pipelines")[0]
    assert texts(browser, "#details-read tr")[0].split("\t") == ["mrt_revenue", "marketing"]
    assert browser.execute_script("return window.handoffMap.cy().edges().length") == 3
    shot(browser, "ui-map")

    # search finds a model on the server; its link opens the model's page
    browser.find_element(By.ID, "search").send_keys("mrt_ord")
    wait_for(browser, "document.querySelector('#results li.model-result a')")
    assert "model marketplace.mrt_orders" in texts(browser, "#results li.model-result")
    browser.find_element(By.CSS_SELECTOR, "#results li.model-result a").click()
    wait_for(browser, "document.getElementById('model-name')")
    assert texts(browser, "#model-name") == ["marketplace.mrt_orders"]
    facts = dict(r.split("\t", 1) for r in texts(browser, "#facts tr"))
    assert "team-marketplace" in facts["domain"] and "#marketplace-data" in facts["domain"]
    assert "marketplace__daily" in facts["pipeline"] and "0 3 * * *" in facts["pipeline"]
    assert browser.find_element(By.CSS_SELECTOR, "#facts a[href='/dags/marketplace__daily/tasks/mrt_orders']")
    consumers = [r.split("\t") for r in texts(browser, "#consumers tbody tr")]
    assert {(c[0], c[1]) for c in consumers} >= {("finance", "stg_marketplace_orders"), ("finance", "mrt_revenue")}
    assert any(c[0] == "marketing" and c[2] == "2" and c[4] == "#marketing-data" for c in consumers), consumers
    assert all(c[4].startswith("#") for c in consumers)  # every consumer with its Slack channel
    teams = [r.split("\t") for r in texts(browser, "#consumer-domains tbody tr")]
    assert teams == [["finance", "team-finance", "#finance-data", "2", "1", "1"],
                     ["marketing", "team-marketing", "#marketing-data", "1", "0", "2"]], teams
    shot(browser, "ui-model")

    # run status of finance for DAY: the sensor timed out, then was satisfied by reconciliation
    browser.get(f"{stack.base_url}/handoff/runs?domain=finance&date={DAY.date().isoformat()}")
    wait_for(browser, "document.querySelector('table[id^=sensors-]')")
    rows = browser.find_elements(By.CSS_SELECTOR, "#sensors-finance__daily tbody tr")
    assert len(rows) == 1
    cells = [c.text for c in rows[0].find_elements(By.TAG_NAME, "td")]
    assert cells[0] == SENSOR and cells[1] == "marketplace.mrt_orders"
    assert cells[4] == "satisfied by reconcile" and cells[7] == "failed", cells
    assert rows[0].get_attribute("class") == "recovered"
    assert f"{recovered['finance']}: success" in cells[8], cells
    # the sensor table fits the window: WHY and MORE are on screen, not cut off to the right
    right = browser.execute_script("return document.querySelector('#sensors-finance__daily')"
                                   ".getBoundingClientRect().right")
    assert right <= browser.execute_script("return document.documentElement.clientWidth"), right
    assert recovered["finance"] in texts(browser, "section.run p")[0]
    # finance's mrt_revenue (available_by 05:45) finished days late: the watch's recorded miss
    [revenue] = browser.find_elements(By.CSS_SELECTOR, "#slas-finance__daily tbody tr")
    cells = [c.text for c in revenue.find_elements(By.TAG_NAME, "td")]
    assert cells[:4] == ["mrt_revenue", "available_by 05:45 UTC", f"{DAY.date()} 05:45:00 UTC", "missed"], cells
    assert revenue.get_attribute("class") == "failed" and cells[5].endswith(" late") and "(late)" in cells[6]
    shot(browser, "ui-run-status")

    # run status of marketplace for DAY: the same late run met one SLA and missed the other
    browser.get(f"{stack.base_url}/handoff/runs?domain=marketplace&date={DAY.date().isoformat()}")
    wait_for(browser, "document.getElementById('slas-marketplace__daily')")
    slas = {r.find_elements(By.TAG_NAME, "td")[0].text: r
            for r in browser.find_elements(By.CSS_SELECTOR, "#slas-marketplace__daily tbody tr")}
    assert sorted(slas) == ["mrt_items", "mrt_orders"]
    orders = [c.text for c in slas["mrt_orders"].find_elements(By.TAG_NAME, "td")]
    items = [c.text for c in slas["mrt_items"].find_elements(By.TAG_NAME, "td")]
    assert orders[1:4] == ["available_by 04:30 UTC", f"{DAY.date()} 04:30:00 UTC", "missed"], orders
    assert slas["mrt_orders"].get_attribute("class") == "failed" and orders[5].endswith(" late"), orders
    assert sla_checked["marketplace.mrt_orders"]["deadline"] == (DAY + timedelta(hours=4, minutes=30)).isoformat()
    assert orders[6].endswith(" UTC (late)") and orders[7].startswith("the SLA watch recorded the miss at")
    due = DAY + timedelta(hours=3, seconds=ITEMS_WITHIN_S)
    assert items[1:4] == ["available_within 7d", f"{due:%Y-%m-%d %H:%M:%S} UTC", "met"], items
    assert slas["mrt_items"].get_attribute("class") == "satisfied" and items[5].endswith(" early"), items
    assert items[6] == "-" and items[7].startswith("finished ") and items[7].endswith(" before the deadline")
    # the finish time is the run's, as the registry recorded it (after the recovery, so after DAY)
    assert items[4] > f"{DAY.date()}" and orders[4] > f"{DAY.date()}"
    assert browser.find_elements(By.CSS_SELECTOR, "#sensors-marketplace__daily") == []  # waits on no DAG
    shot(browser, "ui-run-sla")

    # inside Airflow's own UI: the navigation's "Domain map" view frames the same page
    browser.get(stack.base_url + "/plugin/handoff")
    wait_for(browser, "document.querySelector('iframe')", 60)
    browser.switch_to.frame(browser.find_element(By.TAG_NAME, "iframe"))
    wait_for(browser, "document.body && document.body.dataset.rendered === '1'", 60)
    assert len(texts(browser, "#domain-list tbody tr")) == 3
    browser.switch_to.default_content()
    shot(browser, "ui-inside-airflow")

    # Airflow's task view link for a sensor leads to the model it waits on
    browser.get(f"{stack.base_url}/handoff/tasks/finance__daily/{SENSOR}")
    wait_for(browser, "document.getElementById('model-name')")
    assert texts(browser, "#model-name") == ["marketplace.mrt_orders"]
