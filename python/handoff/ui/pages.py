"""The server's pages as HTML strings (pure): the shell, the map page, a model's page, run status.

Inputs are what the query layer returns — ``Registry.explain`` / ``consumers`` / ``teams`` and
``explain_run.run_state`` — rendered as they are: keys a page does not know are shown as JSON at the
end, so a feature that adds keys is visible without a change here. Every value is HTML-escaped;
every URL is built from quoted path segments.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from html import escape
from itertools import groupby
from typing import Any
from urllib.parse import quote, urlencode

from ..registry.views import Explained
from ..sla import Sla, sla_text
from .mapview import FOCUS_THRESHOLD, VENDOR_SCRIPTS, map_body, script_json


@dataclass(frozen=True)
class Urls:
    """Where things are: this app (``prefix``, e.g. /handoff) and Airflow's own UI (``airflow``, its root path)."""

    prefix: str = "/handoff"
    airflow: str = ""

    def static(self, name: str) -> str:
        return f"{self.prefix}/static/{name}"

    def model(self, domain: str, model: str) -> str:
        return f"{self.prefix}/models/{_seg(domain)}/{_seg(model)}"

    def runs(self, **params: str) -> str:
        return f"{self.prefix}/runs?{urlencode(params)}"

    def home(self, domain: str | None = None) -> str:
        return f"{self.prefix}/" + (f"?{urlencode({'domain': domain})}" if domain else "")

    def dag(self, dag_id: str) -> str:
        return f"{self.airflow}/dags/{_seg(dag_id)}"

    def task(self, dag_id: str, task_id: str) -> str:
        return f"{self.airflow}/dags/{_seg(dag_id)}/tasks/{_seg(task_id)}"

    def dag_run(self, dag_id: str, run_id: str) -> str:
        return f"{self.airflow}/dags/{_seg(dag_id)}/runs/{_seg(run_id)}"


def _seg(value: str) -> str:
    return quote(value, safe="")


def _when(value: Any) -> str:
    """An ISO date-time as ``YYYY-MM-DD HH:MM:SS UTC`` (seconds, no microseconds), escaped; other values as cells."""
    if isinstance(value, str) and len(value) >= 19 and value[10:11] == "T":
        try:
            moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            return _cell(value)
        if moment.utcoffset() is not None:
            moment = moment.astimezone(timezone.utc)
            return f'<span title="{escape(value)}">{moment:%Y-%m-%d %H:%M:%S} UTC</span>'
    return _cell(value)


def _a(text: Any, href: str, *, top: bool = False) -> str:
    target = ' target="_top"' if top else ""
    return f'<a href="{escape(href)}"{target}>{escape(str(text))}</a>'


def _cell(value: Any) -> str:
    if value is None or value == "":
        return '<span class="muted">-</span>'
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, (list, tuple)):
        return escape(" → ".join(map(str, value))) if value else '<span class="muted">-</span>'
    return escape(str(value))


def _table(headers: Sequence[str], rows: Sequence[Sequence[str]], *, table_id: str = "",
           row_classes: Sequence[str] = ()) -> str:
    """A table of pre-rendered (already escaped) cells."""
    head = "".join(f"<th>{escape(h)}</th>" for h in headers)
    body = "".join(
        f'<tr{f" class={chr(34)}{escape(row_classes[i])}{chr(34)}" if i < len(row_classes) and row_classes[i] else ""}>'
        + "".join(f"<td>{c}</td>" for c in row) + "</tr>" for i, row in enumerate(rows))
    ident = f' id="{escape(table_id)}"' if table_id else ""
    return f"<table{ident}><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def shell(title: str, body: str, urls: Urls, *, scripts: Sequence[str] = ()) -> str:
    """The page around ``body``: styles and scripts from this app, a small navigation."""
    tags = "".join(f'<script src="{escape(urls.static(s))}"></script>' for s in scripts)
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>{escape(title)} · handoff</title><link rel="stylesheet" href="{escape(urls.static('ui.css'))}"></head>
<body><header class="top"><h1>handoff</h1><nav>{_a("Domain map", urls.home())}{_a("Run status", urls.runs())}</nav>
<span class="muted">{escape(title)}</span></header>
{body}
{tags}
</body></html>
"""


def error_page(title: str, message: str, urls: Urls, *, notice: bool = False) -> str:
    """A page of one line: an error (``id="error"``), or with ``notice`` a plain statement (``id="notice"``)."""
    if notice:
        return shell(title, f'<main><p class="notice" id="notice">{escape(message)}</p></main>', urls)
    return shell(title, f'<main><p class="error" id="error">{escape(message)}</p></main>', urls)


# --------------------------------------------------------------------------------------
# The map
# --------------------------------------------------------------------------------------

def map_page(domain_map: Mapping[str, Any], urls: Urls, *, focus: str | None = None, message: str = "") -> str:
    """The map; ``message``: one line above it (a domain asked for that is not published)."""
    config = {"focusThreshold": FOCUS_THRESHOLD, "focus": focus,
              "modelUrl": f"{urls.prefix}/models/{{domain}}/{{model}}", "searchUrl": f"{urls.prefix}/api/search",
              "dagUrl": f"{urls.airflow}/dags/{{dag_id}}"}
    data = script_json({**domain_map, "config": config})
    error = f'<p class="error" id="error">{escape(message)}</p>' if message else ""
    body = (error + map_body("Domain map", "Click a domain for its pipelines and the models others read; click a model "
                     "for its page. Above 60 domains the map shows one domain and its neighbours: search to move.")
            + f'<script id="handoff-data" type="application/json">{data}</script>')
    return shell("Domain map", body, urls, scripts=(*VENDOR_SCRIPTS, "map.js"))


# --------------------------------------------------------------------------------------
# A model
# --------------------------------------------------------------------------------------

_EXPLAIN_KEYS = {"domain", "pipeline", "model", "upstream_tasks", "downstream_tasks", "waits_on", "consumers",
                 "transitive_consumers"}


def model_page(info: Explained, consumers: Sequence[Any], teams: Mapping[str, tuple[str, str]],
               urls: Urls) -> str:
    """``explain`` of one model, its consumers (direct and transitive, ``Registry.consumers``) with
    each consuming domain's owner and Slack channel (``teams``), and links into Airflow."""
    d, p, m = info["domain"], info["pipeline"], info["model"]
    name = f"{d['name']}.{m['name']}"
    facts = [
        ("domain", f"{_a(d['name'], urls.home(d['name']))} — owner {_cell(d['owner'])}, {_cell(d['slack'])}"),
        ("pipeline", f"{_cell(p['name'])} — DAG {_a(p['dag_id'], urls.dag(p['dag_id']), top=True)}, "
                     f"schedule <code>{_cell(p['schedule'])}</code> ({_cell(p.get('timezone') or 'UTC')}), "
                     f"start {_cell(p['start_date'])}"),
        ("Airflow task", f"{_a(m['task_id'], urls.task(p['dag_id'], m['task_id']), top=True)} "
                         f"<span class='muted'>({_cell(m['unique_id'])})</span>"),
        ("kind / access", f"{_cell(m['kind'])}, {_cell(m['access'])}"),
        ("relation", f"<code>{_cell(m['relation'])}</code>"),
        ("owner", f"{_cell(m['owner'])}, {_cell(m['slack'])}"),
        ("SLA", escape(sla_text(Sla(m.get("available_by"), m.get("available_within_s")), p.get("timezone") or "UTC"))),
        ("upstream in DAG", _cell(", ".join(info["upstream_tasks"]))),
        ("downstream in DAG", _cell(", ".join(info["downstream_tasks"]))),
        ("published", f"{_when(d['published_at'])}" + (f" ({_cell(d['label'])})" if d.get("label") else "")),
    ]
    out = [f'<main><h2 id="model-name">{escape(name)}</h2>', '<table class="facts" id="facts">']
    out += [f"<tr><th>{escape(k)}</th><td>{v}</td></tr>" for k, v in facts]
    out.append("</table>")
    out.append(f"""<form class="inline" method="get" action="{escape(urls.prefix)}/runs">
<input type="hidden" name="domain" value="{escape(d['name'])}">
<input type="hidden" name="model" value="{escape(m['task_id'])}">
<label>Why did (or didn't) this run? Run of <input type="date" name="date" required></label>
<button type="submit">show</button></form>""")

    waits = info["waits_on"]
    out.append(f"<h3>Waits on ({len(waits)} sensor(s) upstream in {escape(p['dag_id'])})</h3>")
    rows = []
    for w in waits:
        up: Mapping[str, Any] = w["upstream"] or {}  # {}: not published (``problem`` says why)
        target = (_a(f"{up['dag_id']}.{up['task_id']}", urls.task(up["dag_id"], up["task_id"]), top=True) if up
                  else f'<span class="error">unresolved: {escape(str(w.get("problem")))}</span>')
        rows.append([escape(w["sensor_task_id"]), _cell(w["direct"]),
                     _a(f"{w['upstream_domain']}.{w['upstream_model']}",
                        urls.model(w["upstream_domain"], w["upstream_model"])),
                     target, f"<code>{_cell(up.get('schedule'))}</code>", _cell(up.get("available_by")),
                     _cell(up.get("owner")), _cell(up.get("slack")), _cell(w.get("alignment_warning"))])
    out.append(_table(["sensor", "direct", "upstream model", "upstream task", "schedule", "available by", "owner",
                       "Slack", "alignment"], rows, table_id="waits-on") if rows else
               '<p class="muted" id="waits-on">Waits on no other DAG.</p>')

    direct = sum(1 for c in consumers if c.direct)
    domains = sorted({c.domain for c in consumers})
    out.append(f'<h3 id="consumers-title">Consumers: {len(consumers)} in {len(domains)} domain(s) '
               f'({direct} direct)</h3>')
    if not consumers:
        out.append('<p class="muted" id="consumers">No other domain reads it.</p>')
    else:
        out += _consumer_tables(d["name"], m["task_id"], consumers, teams, urls)
    out += _extra(info, _EXPLAIN_KEYS)
    out.append("</main>")
    return shell(name, "\n".join(out), urls)


MAX_CONSUMER_ROWS = 200  # a wide consumer tree (thousands of models) is summarised per domain


def _consumer_tables(domain: str, task_id: str, consumers: Sequence[Any], teams: Mapping[str, tuple[str, str]],
                     urls: Urls) -> list[str]:
    """Whom to tell (one row per consuming domain, all of them), then the consuming models
    (nearest first, at most MAX_CONSUMER_ROWS; the JSON route and the CLI list every one)."""
    ordered = sorted(consumers, key=lambda c: (c.depth, not c.direct, c.domain, c.dag_id, c.task_id))
    rows = []
    for reader, group in groupby(sorted(consumers, key=lambda c: c.domain), key=lambda c: c.domain):
        members = list(group)
        owner, slack = teams.get(reader, ("", ""))
        rows.append([_a(reader, urls.home(reader)), _cell(owner), _cell(slack), str(len(members)),
                     str(sum(1 for c in members if c.direct)), str(min(c.depth for c in members))])
    out = [_table(["domain", "owner", "Slack", "models", "direct", "nearest depth"], rows,
                  table_id="consumer-domains")]
    rows, classes = [], []
    for c in ordered[:MAX_CONSUMER_ROWS]:
        owner, slack = teams.get(c.domain, ("", ""))
        rows.append([_a(c.domain, urls.home(c.domain)), _a(c.task_id, urls.model(c.domain, c.task_id)),
                     f"{c.depth}" + (" (direct)" if c.direct else ""), _cell(c.owner or owner),
                     _cell(c.slack or slack), _a(c.dag_id, urls.dag(c.dag_id), top=True),
                     escape(c.sensor_task_id), _cell(list(c.via))])
        classes.append("direct" if c.direct else "transitive")
    out.append(_table(["domain", "model", "depth", "owner", "Slack", "DAG", "sensor", "via"], rows,
                      table_id="consumers", row_classes=classes))
    left = len(ordered) - MAX_CONSUMER_ROWS
    if left > 0:
        out.append(f'<p class="muted" id="consumers-more">{left} more consumer(s), further away: all of them in '
                   f'{_a("JSON", f"{urls.prefix}/api/models/{_seg(domain)}/{_seg(task_id)}")} or with '
                   f"<code>handoff who-depends-on {escape(domain)}.{escape(task_id)}</code>.</p>")
    return out


def _extra(info: Mapping[str, Any], known: set[str]) -> list[str]:
    """Keys a page does not know: shown as JSON, so nothing the query layer adds is hidden."""
    return [f"<h3>{escape(key)}</h3><pre class='mono'>"
            f"{escape(json.dumps(info[key], indent=2, sort_keys=True, default=str))}</pre>"
            for key in sorted(set(info) - known)]
