"""Plain-text rendering of registry query results for the terminal (pure)."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from itertools import groupby
from typing import Any

from ..sla import Sla, sla_text
from ..terminal import visible
from .queries import Consumer
from .views import Explained, UpstreamView, WaitView


def table(headers: Sequence[str], rows: Sequence[Sequence[Any]], indent: str = "  ") -> list[str]:
    """Left-aligned columns, a header row and a rule."""
    cells = [[_cell(v) for v in row] for row in rows]
    widths = [max([len(h), *(len(r[i]) for r in cells)]) for i, h in enumerate(headers)]

    def line(values: Sequence[str]) -> str:
        return indent + "  ".join(v.ljust(w) for v, w in zip(values, widths, strict=True)).rstrip()

    return [line(headers), line(["-" * w for w in widths]), *(line(r) for r in cells)]


def _cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, (list, tuple)):
        return " -> ".join(map(str, value)) if value else "-"
    return str(value)


def consumers_text(target: str, found: Sequence[Consumer], teams: Mapping[str, tuple[str, str]], *,
                   transitive: bool) -> str:
    scope = "direct and transitive" if transitive else "direct"
    if not found:
        return f"{target}: no {scope} consumers in other domains\n"
    domains = sorted({c.domain for c in found})
    out = [f"{target}: {len(found)} {scope} consumer(s) in {len(domains)} domain(s)", ""]
    for domain, group in groupby(sorted(found, key=lambda c: (c.domain, c.depth, c.dag_id, c.task_id)),
                                 key=lambda c: c.domain):
        owner, slack = teams.get(domain, ("?", "?"))
        members = list(group)
        out.append(f"{domain} — owner {owner}, {slack}")
        out += table(["depth", "dag_id", "task_id", "owner", "slack", "sensor", "via"],
                     [[c.depth if not c.direct else f"{c.depth} (direct)", c.dag_id, c.task_id, c.owner, c.slack,
                       c.sensor_task_id, c.via] for c in members])
        out.append("")
    return "\n".join(out)


def _sla_cell(task: UpstreamView) -> str | None:
    from ..sla import format_duration

    if task["available_within_s"]:
        return f"within {format_duration(task['available_within_s'])}"
    return f"by {task['available_by']}" if task["available_by"] else None


def _schedule_cell(task: UpstreamView) -> str | None:
    if not task["schedule"]:
        return None
    zone = task["timezone"] or "UTC"
    return task["schedule"] if zone == "UTC" else f"{task['schedule']} ({zone})"


def explain_text(info: Explained) -> str:
    """The explain dict as text; keys it does not know are shown at the end as JSON."""
    d, p, m = info["domain"], info["pipeline"], info["model"]
    sla = Sla(m["available_by"], m["available_within_s"])
    out = [
        f"{d['name']}.{m['name']}  ({m['kind']}, access {m['access']})",
        f"  domain      {d['name']} — owner {d['owner']}, {d['slack']}; project {d['project']}, "
        f"published {d['published_at']}" + (f" ({d['label']})" if d.get("label") else ""),
        f"  pipeline    {p['name']} — DAG {p['dag_id']}, schedule {p['schedule']} ({p.get('timezone') or 'UTC'}), "
        f"start {p['start_date']}",
        f"  task        {m['task_id']} ({m['unique_id']})",
        f"  relation    {m['relation'] or '-'}",
        f"  owner       {m['owner']}, {m['slack']}",
        f"  SLA         {sla_text(sla, p.get('timezone') or 'UTC')}",
        f"  upstream    {', '.join(info['upstream_tasks']) or '-'} (in its DAG)",
        f"  downstream  {', '.join(info['downstream_tasks']) or '-'} (in its DAG)",
        "",
    ]
    waits = info["waits_on"]
    if waits:
        out.append(f"Waits on ({len(waits)} sensor(s) upstream in {p['dag_id']}):")
        rows = []
        for w in waits:
            up = w["upstream"]
            where = [f"{up['dag_id']}.{up['task_id']}", _schedule_cell(up), _sla_cell(up), up["owner"], up["slack"]] \
                if up else [f"UNRESOLVED: {w['problem']}", None, None, None, None]
            rows.append([w["sensor_task_id"], "yes" if w["direct"] else "no",
                         f"{w['upstream_domain']}.{w['upstream_model']}", *where, _declared(w)])
        out += table(["sensor", "direct", "upstream", "upstream task", "schedule", "SLA", "owner", "slack",
                      "declared as"], rows)
        for w in waits:
            reason = (w.get("accepted") or {}).get("HO306")
            if w.get("alignment_warning") and reason:
                out.append(f"  ✓ {w['sensor_task_id']}: HO306 accepted ({visible(reason)}): {w['alignment_warning']}")
            elif w.get("alignment_warning"):
                out.append(f"  ! {w['sensor_task_id']}: {w['alignment_warning']}")
    else:
        out.append("Waits on: no other DAG")
    out.append("")
    consumers = info["consumers"]
    if consumers:
        out.append(f"Direct consumers ({len(consumers)}; {info['transitive_consumers']} in all, "
                   "see `handoff who-depends-on`):")
        out += table(["domain", "dag_id", "task_id", "owner", "slack", "sensor"],
                     [[c["domain"], c["dag_id"], c["task_id"], c["owner"], c["slack"], c["sensor_task_id"]]
                      for c in consumers])
    else:
        out.append(f"Direct consumers: none ({info['transitive_consumers']} in all)")
    known = {"domain", "pipeline", "model", "upstream_tasks", "downstream_tasks", "waits_on", "consumers",
             "transitive_consumers"}
    extras: Mapping[str, object] = info  # keys features add (``run``, ``readers``, …): shown as JSON
    for key in sorted(set(extras) - known):
        out += ["", f"{key}:", json.dumps(extras[key], indent=2, sort_keys=True, default=str)]
    return "\n".join(out) + "\n"


def _declared(wait: WaitView) -> str:
    """How the consumer declared the dependency: its sources, or its cross-project refs (dbt Mesh)."""
    if wait.get("refs"):
        return "ref " + ", ".join(wait["refs"])
    if wait.get("sources"):
        return "source " + ", ".join(wait["sources"])
    return "-"  # another pipeline of the same domain
