"""The run-status page as HTML strings (pure): a DAG's run sensor by sensor (``explain_run.run_state``),
its SLA verdicts, the runs of a date to pick from (``run_dates``), the form. The shell, links and
cells are ``pages``'; every value is HTML-escaped.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime, timezone
from html import escape
from typing import Any

from ..sla_verdict import span
from .pages import Urls, _a, _cell, _extra, _table, _when, shell


def _plain(value: Any) -> str:
    """A value of a state as text for people (not JSON, no Python ``None``): times as
    ``YYYY-MM-DD HH:MM:SS UTC``, lists joined with "; ", mappings as "key value" pairs."""
    if value is None or value == "":
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, str) and len(value) >= 19 and value[10:11] == "T":
        try:
            moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            return value
        if moment.utcoffset() is not None:
            return f"{moment.astimezone(timezone.utc):%Y-%m-%d %H:%M:%S} UTC"
        return value
    if isinstance(value, Mapping):
        return ", ".join(f"{str(k).replace('_', ' ')} {_plain(v)}" for k, v in value.items())
    if isinstance(value, (list, tuple)):
        return "; ".join(_plain(v) for v in value) if value else "-"
    return str(value)




_SENSOR_KEYS = {"sensor_task_id", "upstream", "verdict", "why", "upstream_task", "upstream_run_date",
                "upstream_completed_at", "recorded_by", "resolved_at", "state_before", "live_states",
                "waiting_since"}
_FAILED = {"failed", "upstream_failed"}


def sensor_class(entry: Mapping[str, Any]) -> str:
    """How a sensor row is highlighted: failed (a live state failed), recovered (satisfied by
    reconciliation: its upstream was late), satisfied, waiting (late upstream), or ''."""
    live = set((entry.get("live_states") or {}).values())
    verdict = str(entry.get("verdict", ""))
    if verdict.startswith("satisfied") and "reconcile" in verdict:
        return "recovered"
    if verdict.startswith("satisfied"):
        return "satisfied"
    if live & _FAILED:
        return "failed"
    if verdict.startswith("waiting") or verdict == "unresolved" or "not recorded" in verdict:
        return "waiting"
    return ""


def run_section(title: str, state: Mapping[str, Any], urls: Urls, *, note: str = "") -> str:
    """One DAG's run at a date (``explain_run.run_state``): a row per sensor."""
    dag_id = state["dag_id"]
    runs = ", ".join(_a(r, urls.dag_run(dag_id, r), top=True) for r in state.get("runs") or []) or "none seen"
    out = [f'<section class="run" data-dag-id="{escape(dag_id)}"><h2>{escape(title)}</h2>',
           f"<p>Run of {_a(dag_id, urls.dag(dag_id), top=True)} at "
           f"<code>{_when(state['run_logical_date'])}</code>"
           f" (asked: {_when(state['at'])}); Airflow runs: {runs}</p>"]
    if note:
        out.append(f'<p class="muted note">{escape(note)}</p>')
    sensors = state.get("sensors") or []
    if not sensors:
        out.append('<p class="muted">Waits on no other DAG: nothing to explain.</p>')
    rows, classes = [], []
    for s in sensors:
        since = s.get("waiting_since") or {}
        live = "; ".join(f"{run}: {st or 'not started'}"
                         + (f", waiting since {_plain(since[run])}" if run in since else "")
                         for run, st in (s.get("live_states") or {}).items())
        klass = sensor_class(s)
        extra = {k: v for k, v in s.items() if k not in _SENSOR_KEYS}
        by = f" by {_cell(s['recorded_by'])}" if s.get("recorded_by") else ""
        more = ("<br>".join(f"<span class='muted'>{escape(k.replace('_', ' '))}:</span> {escape(_plain(v))}"
                            for k, v in sorted(extra.items())) if extra else _cell(None))
        rows.append([escape(s["sensor_task_id"]), escape(str(s.get("upstream", ""))),
                     _cell(s.get("upstream_task")), _when(s.get("upstream_run_date")),
                     f'<span class="pill {klass}">{escape(str(s.get("verdict", "")))}</span>',
                     _when(s.get("upstream_completed_at")) + by,
                     _when(s.get("resolved_at")), _cell(s.get("state_before")), _cell(live), _cell(s.get("why")), more])
        classes.append(klass)
    if rows:
        out.append(_table(["sensor", "waits on", "upstream task", "upstream run", "verdict", "upstream completed",
                           "satisfied at", "sensor state before", "live", "why", "more"], rows,
                          table_id=f"sensors-{dag_id}", row_classes=classes))
    out += sla_table(dag_id, state.get("slas") or [])
    known = {"dag_id", "at", "run_logical_date", "runs", "sensors", "slas"}
    out += _extra(state, known)
    out.append("</section>")
    return "\n".join(out)


#: How an SLA verdict is highlighted (the sensor rows' classes: red, amber, green, grey).
SLA_CLASSES = {"missed": "failed", "pending": "waiting", "met": "satisfied", "not watched": "", "no run": ""}


def sla_table(dag_id: str, slas: Sequence[Mapping[str, Any]]) -> list[str]:
    """The run's SLA verdicts (``run_state``'s ``slas``, ``sla_verdict``): a row per model with an SLA."""
    if not slas:
        return ['<p class="muted sla-none">No model of this run has an SLA.</p>']
    rows, classes = [], []
    for v in slas:
        klass = SLA_CLASSES.get(str(v.get("verdict")), "")
        late = v.get("late_s")
        against = _cell(None) if late is None else escape(
            "on the deadline" if late == 0 else f"{span(late)} {'late' if late > 0 else 'early'}")
        recorded = (f"{_when(v.get('detected_at'))} ({_cell(v.get('state_at_deadline'))})" if v.get("recorded")
                    else _cell(None))
        rows.append([escape(str(v.get("model") or v.get("task_id"))), escape(str(v.get("sla", ""))),
                     _when(v.get("deadline")),
                     f'<span class="pill {klass}">{escape(str(v.get("verdict", "")))}</span>',
                     _when(v.get("finished_at")), against, recorded, _cell(v.get("why"))])
        classes.append(klass)
    return ["<h3>SLA</h3>",
            _table(["model", "SLA", "deadline (UTC)", "verdict", "finished", "vs. deadline",
                    "miss recorded by the SLA watch", "why"], rows, table_id=f"slas-{dag_id}", row_classes=classes)]


DATE_RULE = ("A date (YYYY-MM-DD) means the runs whose logical date falls on that date in each pipeline's own "
             "timezone — several for an hourly pipeline, listed as links; a date-time (YYYY-MM-DDTHH:MM, UTC "
             "unless it carries an offset) means the one run at or before it.")


def run_form(urls: Urls, *, domain: str = "", model: str = "", dag_id: str = "", date: str = "") -> str:
    """The run-status form; the date is text, so a date-time (one precise run) survives a resubmit."""
    hidden = f'<input type="hidden" name="dag_id" value="{escape(dag_id)}">' if dag_id else ""
    need = "" if dag_id else " required"
    return f"""<form class="inline" method="get" action="{escape(urls.prefix)}/runs" id="run-form">{hidden}
<label>domain <input type="text" name="domain" value="{escape(domain)}"{need}></label>
<label>model (optional) <input type="text" name="model" value="{escape(model)}"></label>
<label>date <input type="text" name="date" value="{escape(date)}" placeholder="YYYY-MM-DD or YYYY-MM-DDTHH:MM"
 size="22" required></label>
<button type="submit">why did (or didn't) it run?</button></form>"""


def runs_choice(title: str, found: Mapping[str, Any], urls: Urls, params: Mapping[str, str]) -> str:
    """A DAG with no run or several runs on the asked date (``app._run_states``): a link to each run
    (its date-time in the URL), or to the latest run before the date."""
    dag_id, runs = found["dag_id"], list(found["runs_on_date"])
    where = f"{found['date']} ({found['timezone']})"
    out = [f'<section class="run choice" data-dag-id="{escape(dag_id)}"><h2>{escape(title)}</h2>']
    if not runs:
        before = str(found.get("latest_before") or "")
        out.append(f'<p id="no-run-{escape(dag_id)}">No run of {_a(dag_id, urls.dag(dag_id), top=True)} has its '
                   f"logical date on {escape(where)}; the latest before it: "
                   f"{_a(_when_text(before), urls.runs(**params, date=before))}</p>")
    else:
        items = "".join(f"<li>{_a(_when_text(r), urls.runs(**params, date=r))}</li>" for r in runs)
        out.append(f"<p>{len(runs)} runs of {_a(dag_id, urls.dag(dag_id), top=True)} have their logical date on "
                   f"{escape(where)}: pick one.</p>")
        out.append(f'<ul class="runs" id="runs-{escape(dag_id)}">{items}</ul>')
    out.append("</section>")
    return "\n".join(out)


def _when_text(value: str) -> str:
    """An ISO date-time as ``YYYY-MM-DD HH:MM UTC`` (plain text; the link text of a run)."""
    try:
        moment = datetime.fromisoformat(value).astimezone(timezone.utc)
    except ValueError:
        return value
    return f"{moment:%Y-%m-%d %H:%M} UTC"


def runs_page(heading: str, sections: Sequence[str], urls: Urls, *, domain: str = "", model: str = "",
              dag_id: str = "", date: str = "", message: str = "", notice: str = "") -> str:
    legend = ('<p class="muted">Highlighted: <span class="pill waiting">waiting / late upstream / SLA pending</span> '
              '<span class="pill failed">failed / SLA missed</span> <span class="pill recovered">recovered after a '
              'late upstream</span> <span class="pill satisfied">satisfied / SLA met</span></p>')
    body = [f"<main><h2>{escape(heading)}</h2>", run_form(urls, domain=domain, model=model, dag_id=dag_id, date=date),
            f'<p class="muted" id="date-rule">{escape(DATE_RULE)}</p>', legend]
    if message:
        body.append(f'<p class="error" id="error">{escape(message)}</p>')
    if notice:
        body.append(f'<p class="notice" id="notice">{escape(notice)}</p>')
    body += sections
    body.append("</main>")
    return shell(heading, "\n".join(body), urls)
