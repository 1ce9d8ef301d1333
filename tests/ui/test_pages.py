"""The server's pages as HTML (pure functions over what the query layer returns): escaping, the
consumer summary of a wide tree, run-status highlighting, and keys a page does not know."""

from __future__ import annotations

import re

from handoff.registry.queries import Consumer
from handoff.ui.pages import MAX_CONSUMER_ROWS, Urls, model_page
from handoff.ui.run_pages import run_section, sensor_class

URLS = Urls(prefix="/handoff", airflow="")


def _info(**extra):
    return {
        "domain": {"name": "shop", "owner": "team-shop", "slack": "#shop", "description": "", "project": "shop",
                   "published_at": "2026-11-30T04:34:56.321721Z", "label": "abc123", "plan_sha256": "0" * 64},
        "pipeline": {"name": "daily", "dag_id": "shop__daily", "schedule": "0 3 * * *", "start_date": "2024-01-01"},
        "model": {"name": "orders", "task_id": "orders", "kind": "dbt_model", "unique_id": "model.shop.orders",
                  "relation": '"db"."shop"."orders"', "access": "public", "owner": "<b>team</b>", "slack": "#shop",
                  "available_by": "05:30"},
        "upstream_tasks": [], "downstream_tasks": [], "waits_on": [], "consumers": [], "transitive_consumers": 0,
        **extra,
    }


def _consumer(i: int, domain: str, depth: int) -> Consumer:
    return Consumer(domain=domain, dag_id=f"{domain}__daily", task_id=f"m{i:04d}", model=f"m{i:04d}", owner="",
                    slack="", depth=depth, via=("shop.orders",), sensor_task_id="wait__shop__orders",
                    direct=depth == 1 and i % 2 == 0, kind="dbt_model", access="protected", available_by=None)


def test_a_wide_consumer_tree_is_summarised_per_domain_and_capped():
    found = [_consumer(i, f"d{i % 7}", 1 + i % 3) for i in range(950)]
    teams = {f"d{k}": (f"team-d{k}", f"#d{k}") for k in range(7)}
    page = model_page(_info(transitive_consumers=950, run_notes={"x": "<script>"}), found, teams, URLS)
    summary = page.split('id="consumer-domains"', 1)[1].split("</table>", 1)[0]
    assert summary.count("<tr>") == 1 + 7 and "#d3" in summary and "team-d6" in summary
    listed = page.split('id="consumers"', 1)[1].split("</table>", 1)[0]
    assert listed.count("<tr") == 1 + MAX_CONSUMER_ROWS
    assert f"{950 - MAX_CONSUMER_ROWS} more consumer(s)" in page and "/handoff/api/models/shop/orders" in page
    depths = [int(d) for d in re.findall(r"<td>(\d)(?: \(direct\))?</td>", listed)]
    assert depths == sorted(depths)  # the nearest first
    assert "&lt;b&gt;team&lt;/b&gt;" in page and "<b>team</b>" not in page
    assert "run_notes" in page and "&lt;script&gt;" in page and "<script>" not in page.split("</header>", 1)[1]
    assert 'href="/dags/shop__daily/tasks/orders" target="_top"' in page


def test_run_status_rows_are_highlighted_by_what_happened():
    state = {"dag_id": "shop__daily", "at": "2026-11-24T23:59:59+00:00", "run_logical_date": "2026-11-24T05:00:00+00:00",
             "runs": ["manual__1"], "sensors": [
                 {"sensor_task_id": "a", "upstream": "x.a", "verdict": "satisfied by reconcile", "state_before": "failed",
                  "live_states": {"manual__1": "success"}},
                 {"sensor_task_id": "b", "upstream": "x.b", "verdict": "satisfied by poke", "actor": None,
                  "upstream_tries": [{"try_number": 1, "state": "success", "completed_at": "2026-11-24T05:01:00+00:00"}],
                  "live_states": {"manual__1": None}},
                 {"sensor_task_id": "c", "upstream": "x.c", "verdict": "waiting on upstream", "why": "no completion",
                  "live_states": {"manual__1": "failed"}},
                 {"sensor_task_id": "d", "upstream": "x.d", "verdict": "waiting on upstream", "attempts": 3,
                  "live_states": {"manual__1": "deferred"},
                  "waiting_since": {"manual__1": "2026-11-24T05:00:07+00:00"}},
             ]}
    assert [sensor_class(s) for s in state["sensors"]] == ["recovered", "satisfied", "failed", "waiting"]
    html = run_section("shop__daily", state, URLS)
    assert re.findall(r'<tr class="(\w+)">', html) == ["recovered", "satisfied", "failed", "waiting"]
    assert "2026-11-24 05:00:00 UTC" in html and "manual__1: success" in html
    assert "manual__1: deferred, waiting since 2026-11-24 05:00:07 UTC" in html  # since when it waits, as UTC
    assert "waiting_since" not in html and "waiting since:" not in html  # in the live column, not under "more"
    assert "attempts:</span> 3" in html  # a key the page does not know is still shown, as text
    assert "manual__1: not started" in html
    assert "upstream tries:</span> try number 1, state success, completed at 2026-11-24 05:01:00 UTC" in html
    assert "None" not in html and "{" not in html.split("<tbody>", 1)[1]  # no Python None, no raw JSON
    assert 'href="/dags/shop__daily/runs/manual__1"' in html


def test_sla_verdicts_are_a_table_highlighted_like_the_sensors():
    def verdict(task_id, verdict, late_s=None, **extra):
        return {"domain": "shop", "dag_id": "shop__daily", "task_id": task_id, "model": task_id,
                "sla": "available_by 05:30 UTC", "logical_date": "2026-11-24T03:00:00+00:00",
                "deadline": "2026-11-24T05:30:00+00:00", "verdict": verdict, "late_s": late_s,
                "finished_at": None, "recorded": False, "detected_at": None, "state_at_deadline": None,
                "why": "<why>", **extra}

    state = {"dag_id": "shop__daily", "at": "2026-11-24T23:59:59+00:00", "run_logical_date": "2026-11-24T03:00:00+00:00",
             "runs": [], "sensors": [], "slas": [
                 verdict("late", "missed", 90061.0, finished_at="2026-11-25T06:31:01+00:00", recorded=True,
                         detected_at="2026-11-24T05:30:02+00:00", state_at_deadline="running"),
                 verdict("early", "met", -1200.0, finished_at="2026-11-24T05:10:00+00:00"),
                 verdict("open", "pending"), verdict("old", "not watched")]}
    html = run_section("shop__daily", state, URLS)
    table = html.split('id="slas-shop__daily"', 1)[1].split("</table>", 1)[0]
    assert re.findall(r"<tr(?: class=\"(\w+)\")?><td>", table) == ["failed", "satisfied", "waiting", ""]
    assert "1d01h01m late" in table and "20m early" in table
    assert "2026-11-24 05:30:00 UTC" in table and "2026-11-25 06:31:01 UTC" in table
    assert "2026-11-24 05:30:02 UTC</span> (running)" in table
    assert "&lt;why&gt;" in table and "<why>" not in table
    assert "&quot;slas&quot;" not in html  # shown as the table, not again as unknown JSON
    empty = run_section("shop__daily", {**state, "slas": []}, URLS)
    assert "No model of this run has an SLA." in empty and "slas-shop__daily" not in empty
