"""The web app's routes against a real registry (SQLite and PostgreSQL), through Starlette's test
client with an accept-all Auth (authentication itself is tested in test_plugin_e2e.py against
Airflow's real API server): bad URL parameters are one line and a 4xx before any query, silent
fallbacks are said on the page.

Plans are compiled by real dbt from the example domains (marketplace -> finance -> marketing)."""

from __future__ import annotations

import html
import itertools
import re
import os
import json
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import replace
from typing import Any

import pytest
from fastapi.testclient import TestClient
from handoff.manifest import load_manifest
from handoff.plan import compile_manifest
from handoff.plan_model import Plan
from handoff.registry import Registry
from handoff.ui.app import Auth, Settings, create_app
from handoff.ui.pages import Urls
from starlette.requests import Request

_names = itertools.count(1)


async def _accept(request: Request) -> None:
    return None


def _berlin(plan: Plan) -> Plan:
    """finance__daily at 01:00 Europe/Berlin, marketing__hourly hourly in Europe/Berlin (run dates
    are local calendar days)."""
    changed = {"finance__daily": ("0 1 * * *", "Europe/Berlin"), "marketing__hourly": ("0 * * * *", "Europe/Berlin")}
    pipelines = tuple(replace(p, schedule=changed[p.dag_id][0], timezone=changed[p.dag_id][1])
                      if p.dag_id in changed else p for p in plan.pipelines)
    return replace(plan, pipelines=pipelines)


@pytest.fixture(scope="module", params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def registry_url(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory,
                 example_manifests: Any) -> Iterator[str]:
    """A registry holding the three example domains (a SQLite file, or a database on the session's PostgreSQL)."""
    if request.param == "sqlite":
        url, drop = f"sqlite:///{tmp_path_factory.mktemp('ui-routes')}/registry.db", None
    else:
        server = request.getfixturevalue("postgres_server")
        drop = f"handoff_ui{os.getpid()}_{next(_names)}"
        server.admin(f"CREATE DATABASE {drop}")
        url = server.url(drop)
    plans = [_berlin(compile_manifest(load_manifest(path))) for path in example_manifests.manifests.values()]
    with Registry(url) as registry:
        registry.publish(plans)
    yield url
    if drop:
        request.getfixturevalue("postgres_server").admin(f"DROP DATABASE IF EXISTS {drop} WITH (FORCE)")


@pytest.fixture(scope="module")
def client(registry_url: str) -> TestClient:
    app = create_app(Settings(registry_url=registry_url, urls=Urls(prefix="", airflow=""), airflow_api_url=None),
                     Auth(page=_accept, api=_accept, token=lambda r: None))
    return TestClient(app, raise_server_exceptions=True)


CONTROL_PAGES = ["/models/%00/x", "/models/finance/mrt%00revenue", "/runs?domain=%00&date=2026-11-26",
                 "/runs?dag_id=%00&date=2026-11-26", "/runs?domain=finance&date=2026-11-26%00",
                 "/tasks/%00/x", "/tasks/finance__daily/%01", "/dags/%00", "/?domain=%00", "/?domain=fin%0Aance",
                 "/dag-runs/%00/x", "/runs?domain=finance&model=mrt%7Frevenue&date=2026-11-26", "/?%00=x"]
CONTROL_API = ["/api/models/fin%00ance/x", "/api/search?q=%00", "/api/search?q=a%00b", "/api/search?q=%C2%85",
               "/api/runs?domain=finance&model=%00&date=2026-11-26", "/api/runs?domain=%00&date=2026-11-26",
               "/static/ui.css%00"]


@pytest.mark.parametrize("path", CONTROL_PAGES)
def test_a_control_character_in_a_page_parameter_is_one_line_and_400(client, path):
    answer = client.get(path, follow_redirects=False)
    assert answer.status_code == 400, answer.text[-300:]
    errors = [line for line in answer.text.splitlines() if 'id="error"' in line]
    assert len(errors) == 1 and "holds a control character" in errors[0]


@pytest.mark.parametrize("path", CONTROL_API)
def test_a_control_character_in_an_api_parameter_is_one_line_and_400(client, path):
    answer = client.get(path)
    assert answer.status_code == 400, answer.text[-300:]
    assert set(answer.json()) == {"error"} and "holds a control character" in answer.json()["error"]
    assert "\n" not in answer.json()["error"]


def test_the_search_still_finds_models_and_a_nul_never_matches_everything(client):
    hits = client.get("/api/search", params={"q": "orders"}).json()
    assert hits and all("orders" in h["model"] or "orders" in h["task_id"] for h in hits)


def test_a_driver_refusal_of_a_nul_is_a_one_line_handoff_error(registry_url):
    """Defence in depth: a NUL that reaches PostgreSQL's driver (psycopg raises a plain ValueError)
    becomes one HandoffError line, not a traceback; the search refuses it before the query (on
    SQLite a NUL would cut the LIKE pattern short and match every model)."""
    from handoff.errors import HandoffError

    with Registry(registry_url, must_exist=True) as registry:
        calls = (lambda: registry.model_view("fin\x00ance", "x"), lambda: registry.locate("a\x00b"),
                 lambda: registry.search_models("\x00"), lambda: registry.pipeline_waits("\x00"))
        for call in calls:
            with pytest.raises(HandoffError) as caught:
                call()
            assert "\n" not in caught.value.one_line()


def _line(page: str, ident: str) -> str:
    found = [line for line in page.splitlines() if f'id="{ident}"' in line]
    assert len(found) == 1, page[-500:]
    return html.unescape(found[0])


def test_a_domain_that_is_not_published_is_said_on_the_map_page_with_404(client):
    answer = client.get("/?domain=nosuch")
    assert answer.status_code == 404
    assert "no domain 'nosuch' is published" in _line(answer.text, "error")
    near = client.get("/?domain=financ")
    assert near.status_code == 404 and "did you mean 'finance'?" in _line(near.text, "error")
    assert client.get("/?domain=finance").status_code == 200 and 'id="error"' not in client.get("/").text


@pytest.mark.parametrize(("path", "said"), [
    ("/runs?model=mrt_revenue", "a model needs its domain"),
    ("/runs?model=mrt_revenue&date=2026-11-26", "a model needs its domain"),
    ("/runs?date=2026-11-26", "a date needs a domain"),
])
def test_a_run_status_request_that_matches_nothing_says_why(client, path, said):
    answer = client.get(path)
    assert answer.status_code == 400 and said in _line(answer.text, "error")
    api = client.get(f"/api{path}")
    assert api.status_code == 400 and said in api.json()["error"]


def test_a_domain_without_a_date_asks_for_one(client):
    answer = client.get("/runs?domain=finance")
    assert answer.status_code == 200 and "Choose a date." in _line(answer.text, "notice")


def test_handoff_helper_tasks_and_dags_have_a_sensible_target(client):
    from handoff.airflow.factory import MAINTENANCE_DAG_ID, SLA_WATCH_DAG_ID
    from handoff.batching import BATCH_TASK_ID
    from handoff.plan.naming import HOOK_TYPES
    from handoff.ui.app import HELPER_TASKS, OWN_DAGS

    assert HELPER_TASKS == {BATCH_TASK_ID, *HOOK_TYPES} and set(OWN_DAGS) == {MAINTENANCE_DAG_ID, SLA_WATCH_DAG_ID}
    for task in sorted(HELPER_TASKS):
        answer = client.get(f"/tasks/marketing__hourly/{task}", follow_redirects=False)
        assert answer.status_code == 303 and answer.headers["location"] == "/?domain=marketing", task
    assert client.get("/tasks/nosuch__daily/handoff__batch").status_code == 404
    assert client.get("/tasks/marketing__hourly/nosuch").status_code == 404
    for dag_id in OWN_DAGS:
        for path in (f"/dags/{dag_id}", f"/tasks/{dag_id}/watch", f"/dag-runs/{dag_id}/manual__1"):
            answer = client.get(path)
            assert answer.status_code == 200 and "belongs to no domain" in _line(answer.text, "notice"), path


def _runs(client: TestClient, query: str) -> list[tuple[str, dict[str, Any]]]:
    answer = client.get(f"/api/runs?{query}")
    assert answer.status_code == 200, answer.text
    return [(title, found) for title, found in answer.json()]


def test_a_date_is_the_pipelines_local_calendar_day_on_the_page_and_in_the_cli(client, registry_url):
    # finance__daily runs at 01:00 Berlin: the run of 31 March is at 30 March 23:00 UTC (CEST)
    [(title, state)] = _runs(client, "domain=finance&model=mrt_revenue&date=2026-03-31")
    assert state["run_logical_date"] == "2026-03-30T23:00:00+00:00"
    [(_, state)] = _runs(client, "domain=finance&model=mrt_revenue&date=2026-03-30")
    assert state["run_logical_date"] == "2026-03-29T23:00:00+00:00"
    page = client.get("/runs?domain=finance&model=mrt_revenue&date=2026-03-31").text
    assert "2026-03-30 23:00:00 UTC" in page and "own timezone" in _line(page, "date-rule")
    cli = subprocess.run([sys.executable, "-m", "handoff.cli", "explain", "finance.mrt_revenue", "--at", "2026-03-31",
                          "--format", "json", "--registry", registry_url], capture_output=True, text=True, timeout=120)
    assert cli.returncode == 0, cli.stderr
    assert json.loads(cli.stdout)["run"]["run_logical_date"] == "2026-03-30T23:00:00+00:00"


def test_an_hourly_pipelines_date_lists_its_runs_as_links_and_a_link_is_one_run(client, registry_url):
    found = dict(_runs(client, "domain=marketing&date=2026-11-26"))
    hourly = found["marketing__hourly"]
    assert len(hourly["runs_on_date"]) == 24 and hourly["runs_on_date"][0] == "2026-11-25T23:00:00+00:00"
    assert "run_logical_date" in found["marketing__daily"]  # a daily pipeline: its one run
    page = client.get("/runs?domain=marketing&date=2026-11-26").text
    links = re.findall(r'<li><a href="([^"]+)">([^<]+)</a></li>', _block(page, 'id="runs-marketing__hourly"'))
    assert len(links) == 24 and links[10][1] == "2026-11-26 09:00 UTC"
    target = html.unescape(links[10][0])
    assert "dag_id=marketing__hourly" in target and "date=2026-11-26T09%3A00%3A00%2B00%3A00" in target
    one = client.get(target)
    assert one.status_code == 200 and 'data-dag-id="marketing__hourly"' in one.text
    assert "2026-11-26 09:00:00 UTC" in one.text and 'id="runs-marketing__hourly"' not in one.text
    form = _block(one.text, 'id="run-form"')
    assert 'value="2026-11-26T09:00:00+00:00"' in html.unescape(form)  # the time survives a resubmit
    assert 'name="dag_id" value="marketing__hourly"' in form
    model = next(h["task_id"] for h in client.get("/api/search?q=_&limit=200").json()
                 if h["dag_id"] == "marketing__hourly")
    cli = subprocess.run([sys.executable, "-m", "handoff.cli", "explain", f"marketing.{model}", "--at", "2026-11-26",
                          "--registry", registry_url], capture_output=True, text=True, timeout=120)
    assert cli.returncode == 0, cli.stderr
    assert "24 runs of marketing__hourly have their logical date on 2026-11-26 (Europe/Berlin)" in cli.stdout
    assert "2026-11-26T09:00:00+00:00" in cli.stdout and "Run of marketing__hourly" not in cli.stdout


def _block(page: str, marker: str) -> str:
    """The element ``marker`` opens, up to its list's or form's end."""
    start = page.index(marker)
    return page[start:page.index("</form>" if "run-form" in marker else "</ul>", start)]


def test_an_unreachable_registry_answers_503_not_404(tmp_path):
    for url in (f"sqlite:///{tmp_path}/none.db", "postgresql://handoff:secret@127.0.0.1:1/handoff"):
        app = create_app(Settings(registry_url=url, urls=Urls(prefix="", airflow=""), airflow_api_url=None),
                         Auth(page=_accept, api=_accept, token=lambda r: None))
        unreachable = TestClient(app)
        for path in ("/", "/models/finance/mrt_revenue", "/runs?domain=finance&date=2026-11-26", "/dags/finance__daily"):
            answer = unreachable.get(path, follow_redirects=False)
            assert answer.status_code == 503 and "secret" not in answer.text, (url, path, answer.status_code)
            assert 'id="error"' in answer.text
        for path in ("/api/map", "/api/search?q=x", "/api/runs?domain=finance&date=2026-11-26"):
            answer = unreachable.get(path)
            assert answer.status_code == 503 and "secret" not in answer.text, (url, path)


def test_a_bad_date_names_the_url_parameter_and_is_400(client):
    page = client.get("/runs?domain=finance&date=soon")
    assert page.status_code == 400 and "the URL parameter date= 'soon' is not a date" in _line(page.text, "error")
    assert "--at" not in page.text
    api = client.get("/api/runs?domain=finance&date=soon")
    assert api.status_code == 400 and "date=" in api.json()["error"] and "--at" not in api.json()["error"]
