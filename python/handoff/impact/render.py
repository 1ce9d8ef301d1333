"""The report as markdown for a PR body: the summary line, who to talk to, one section per model.

Every name in it (owners, Slack channels, domains, models, columns, DAGs, tasks) comes from
manifests and the registry: untrusted. Plain text goes through ``_text`` (HTML special characters
as entities, Markdown's ``\\ ` * [ ] | ~`` backslash-escaped, line breaks as blanks), names
in code spans through ``_code`` (a fence longer than any run of backticks in the name; ``|``
escaped in table cells), a change's detail (text with names in backticks) through ``_cell``.
A name can neither close a table cell, nor start markup, a link, an image or an HTML element.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from html import escape

from .report import Consumer, ModelImpact, Report, version_order


def summary_line(report: Report) -> str:
    """The report's first line."""
    if not report.models:
        return f"handoff impact ({report.domain}): no cross-domain impact — no model, seed or snapshot changed"
    if not report.cross_domain_impact:
        why = ("none is used by another domain" if report.consumers_checked
               else "none was visible to other domains")
        return (f"handoff impact ({report.domain}): no cross-domain impact — "
                f"{_count(len(report.models), 'changed node')}, {why}")
    maybe = report.uncertain_changes
    if not report.consumers_checked:
        breaking = (_count(report.breaking_changes, "breaking change") if report.breaking_changes
                    else "No breaking changes")
        if maybe:
            breaking += f" and {_count(maybe, 'change')} that may break (columns unknown)"
        return (f"{breaking} in {_count(len(report.reaching), 'changed public model')}; "
                "consumers not checked (run with --registry)")
    teams = report.teams()
    channels = ", ".join(t.slack for t in teams)
    if report.breaking_changes or maybe:
        parts = []
        hit = [t for t in teams if t.breaking]
        if report.breaking_changes:
            parts.append(f"{_count(report.breaking_changes, 'breaking change')} "
                         f"affect{'s' if report.breaking_changes == 1 else ''} "
                         f"{_count(len(hit), 'team')}: {', '.join(t.slack for t in hit)}")
        unsure = [t for t in teams if t.uncertain]
        if maybe:
            parts.append(f"{_count(maybe, 'change')} may break {_count(len(unsure), 'team')}: columns unknown "
                         f"({', '.join(t.slack for t in unsure)})")
        line = "; ".join(parts)
        others = [t for t in teams if not t.breaking and not t.uncertain]
        if others:
            line += f" (non-breaking changes also reach {', '.join(t.slack for t in others)})"
        return line
    changes = sum(len(m.changes) for m in report.consumed)
    return f"No breaking changes; {_count(changes, 'change')} reach{'es' if changes == 1 else ''} " \
           f"{_count(len(teams), 'team')}: {channels}"


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}{'' if n == 1 else 's'}"


#: one value (a name, an owner) is shown up to this many characters, then "…"
MAX_VALUE = 200
#: the Markdown report stays under GitHub's 65,536-character limit of a PR comment; model sections
#: past it are left out with a line saying how many and where the whole report is
MAX_MARKDOWN = 60_000

_MARKDOWN = re.compile(r"([\\`*\[\]|~])")  # not "_": GFM never reads one inside a word as emphasis
_CODE_SPAN = re.compile(r"(`[^`]*`)")


def _text(value: object) -> str:
    """Untrusted text as Markdown that shows exactly that text (module docstring)."""
    return _MARKDOWN.sub(r"\\\1", escape(_short(re.sub(r"\s+", " ", str(value))), quote=False))


def _short(text: str) -> str:
    return text if len(text) <= MAX_VALUE else text[:MAX_VALUE] + "…"


def _code(value: object, *, cell: bool = True) -> str:
    """Untrusted text as one code span (in a table ``cell``, ``|`` escaped as GFM requires)."""
    text = _short(" ".join(str(value).split()))
    if cell:
        text = text.replace("|", "\\|")
    fence = "`" * (max((len(run) for run in re.findall(r"`+", text)), default=0) + 1)
    pad = " " if text.startswith("`") or text.endswith("`") else ""
    return f"{fence}{pad}{text}{pad}{fence}"


def _cell(detail: str) -> str:
    """A change's detail: text with names in backticks (``Change.detail``), every part escaped."""
    parts = _CODE_SPAN.split(" ".join(detail.split()))
    return "".join(_code(p[1:-1]) if len(p) >= 2 and p[0] == p[-1] == "`" else _text(p) for p in parts)


def render_markdown(report: Report) -> str:
    """Markdown for a PR body: summary first, then who to talk to, then the changes per model."""
    if not report.cross_domain_impact:
        return _text(summary_line(report)) + "\n"
    out = [f"**{_text(summary_line(report))}**", ""]
    teams = report.teams()
    if teams:
        out += ["| talk to | owner | domain | because of |", "|---|---|---|---|"]
        for team in teams:
            flag = "🔴 " if team.breaking else "🟠 " if team.uncertain else "🟡 "
            out.append(f"| {flag}**{_text(team.slack)}** | {_text(', '.join(team.owners))} | "
                       f"{_text(', '.join(team.domains))} | "
                       f"{', '.join(_code(m) + (' (indirect)' if m in team.indirect else '') for m in team.models)} |")
        out.append("")

    shown = list(report.reaching)
    ordered = sorted(shown, key=lambda m: (not m.breaking, not m.uncertain, m.name, version_order(m.version)))
    size = sum(len(line) + 1 for line in out)
    for index, model in enumerate(ordered):
        section = _model_section(model, report.consumers_checked)
        length = sum(len(line) + 1 for line in section)
        if index and size + length > MAX_MARKDOWN:
            out += [f"*{_count(len(ordered) - index, 'more model section')} not shown: this report would exceed "
                    "a PR comment's 65,536 characters — the whole report is `handoff impact --format json`.*", ""]
            return "\n".join(out).rstrip("\n") + "\n"
        out += section
        size += length

    quiet_public = [m for m in report.models if m not in shown and m.public]
    if quiet_public:
        out += ["<details><summary>" + _count(len(quiet_public), "public node") +
                " changed, no consumer in another domain yet</summary>", "",
                "| model | change | breaking for a consumer? |", "|---|---|---|"]
        for model in quiet_public:
            for change in model.changes:
                verdict = "yes" if change.breaking else "may break" if change.uncertain else "no"
                out.append(f"| {_code(model.label)} | {_cell(change.detail)} | {verdict} |")
        out += ["", "</details>", ""]
    internal = [m for m in report.models if m not in shown and not m.public]
    if internal:
        out += ["<details><summary>" + _count(len(internal), "internal change") +
                " (not public: no other domain can depend on them)</summary>", "",
                "| node | access | changes |", "|---|---|---|"]
        for model in internal:
            access = model.access_head or model.access_base or model.resource_type
            details = _cell("; ".join(c.detail for c in model.changes))
            out.append(f"| {_code(model.label)} | {_text(access)} | {details} |")
        out += ["", "</details>", ""]
    return "\n".join(out).rstrip("\n") + "\n"


def _model_section(model: ModelImpact, consumers_checked: bool) -> list[str]:
    state = "breaking" if model.breaking else "may break" if model.uncertain else "non-breaking"
    icon = "🔴" if model.breaking else "🟠" if model.uncertain else "🟡"
    access = model.access_base if model.lookup_name is not None else model.access_head
    out = [f"#### {icon} {_code(model.label, cell=False)} — {state} ({_text(access or model.resource_type)})", "",
           "| change | breaking? |", "|---|---|"]
    for change in model.changes:
        verdict = ("**yes**" if change.breaking and model.exposed
                   else "**may break**" if change.uncertain and model.exposed else "no")
        out.append(f"| {_cell(change.detail)} | {verdict} |")
    out.append("")
    if not consumers_checked:
        return [*out, "Consumers: not checked (no --registry).", ""]
    out += ["| consumer domain | owner | Slack | tasks | how |", "|---|---|---|---|---|"]
    for (domain, owner, slack, how), tasks in _consumer_rows(model.consumers or ()):
        out.append(f"| {_text(domain)} | {_text(owner)} | {_text(slack)} | {tasks} | {how} |")
    out.append("")
    return out


#: task ids listed per DAG in a consumer row, then "and N more"
MAX_TASKS = 25


def _listed(task_ids: list[str]) -> str:
    shown = ", ".join(_code(t) for t in task_ids[:MAX_TASKS])
    return shown + (f" and {len(task_ids) - MAX_TASKS} more" if len(task_ids) > MAX_TASKS else "")


def _consumer_rows(consumers: Iterable[Consumer]) -> list[tuple[tuple[str, str, str, str], str]]:
    """Consumers grouped by team and by how they depend on the model; tasks listed per DAG (``tasks``
    and ``how`` already Markdown, escaped)."""
    groups: dict[tuple[int, int, str, str, str, str], dict[str, list[str]]] = {}
    for c in consumers:
        if c.depth > 1:
            how, rank = "through " + " → ".join(_code(v) for v in c.via[1:]), 2
        elif c.direct:
            how, rank = "reads it", 0
        else:
            how, rank = "downstream of a reader", 1
        groups.setdefault((c.depth, rank, c.domain, c.owner, c.slack, how), {}).setdefault(c.dag_id, []).append(
            c.task_id)
    rows = []
    for (_, _, domain, owner, slack, how), dags in sorted(groups.items()):
        tasks = "; ".join(f"{_code(dag)}: " + _listed(sorted(ids)) for dag, ids in sorted(dags.items()))
        rows.append(((domain, owner, slack, how), tasks))
    return rows

