"""Who hears what, and the words (pure: no database, no Airflow, no network).

Three kinds of message (docs/notifications.md has an example of each):

* ``blocked`` — an upstream model task failed for good, or a consumer's sensor gave up waiting on
  it: each consuming domain's channel hears which of its tasks and runs are blocked and that
  recovery resumes them by itself; the upstream owner's channel hears which teams are blocked.
* ``resumed`` — the upstream succeeded after all: the channels told it was blocked hear it.
* ``sla_miss`` — a model run passed its SLA deadline without success: its owner's channel and
  the channels of the domains that read it. The misses one check finds are one message per
  channel: a channel hearing of several gets them listed in one (``sla_miss_digests``).

One message per channel and subject: a channel that is both the owner's and a consumer's gets one
message saying both. A channel a domain muted (``handoff_domain.mute``) still gets its row in the
outbox, with status ``muted``, so nobody wonders whether it was forgotten.

Every name and free text from a manifest is escaped for Slack (``&``, ``<``, ``>``), so a model
description or owner can never ping ``<!channel>`` or smuggle a link.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

KINDS = ("blocked", "resumed", "sla_miss")
MAX_LISTED = 10  # tasks or runs named per line; the rest are counted
MAX_MISSES_LISTED = 20  # SLA misses named in one channel's message; the rest are counted ("and N more")
MAX_SECTION = 2900  # Slack: a section's text holds at most 3,000 characters
MAX_HEADER = 150  # Slack: a header's plain text holds at most 150 characters


@dataclass(frozen=True)
class Team:
    """A domain's owner and channel, and what it muted (message kinds)."""

    domain: str
    owner: str
    slack: str
    mute: frozenset[str] = frozenset()

    def mutes(self, kind: str) -> bool:
        return kind in self.mute


@dataclass(frozen=True)
class UpstreamRun:
    """The run of an upstream task a message is about (its subject)."""

    domain: str
    dag_id: str
    task_id: str
    logical_date: datetime  # the run's logical date (or run_after when it has none)
    run_id: str | None = None
    owner: str = ""
    slack: str = ""  # the model's own channel, else its domain's

    @property
    def name(self) -> str:
        return f"{self.domain}.{self.task_id}"


@dataclass(frozen=True)
class Blocked:
    """One consuming DAG held up by the upstream: its runs waiting and the tasks that cannot run."""

    domain: str
    dag_id: str
    runs: tuple[datetime, ...]  # logical dates of its runs that wait (empty: not computed, e.g. transitively)
    tasks: tuple[str, ...]
    sensors: tuple[str, ...]
    via: tuple[str, ...] = ()  # models crossed from the upstream (more than one: a transitive consumer)


@dataclass(frozen=True)
class Message:
    """One message for one channel: the outbox row without its bookkeeping."""

    kind: str
    subject: UpstreamRun
    channel: str
    domain: str  # whose channel
    roles: frozenset[str]  # owner / consumer
    text: str
    blocks: list[dict[str, Any]] = field(hash=False, compare=False)
    muted: bool = False

    def row(self) -> dict[str, Any]:
        """The outbox row (``Registry.enqueue_notifications``)."""
        return {"kind": self.kind, "subject_dag_id": self.subject.dag_id, "subject_task_id": self.subject.task_id,
                "subject_date": self.subject.logical_date, "subject_run_id": self.subject.run_id,
                "channel": self.channel, "domain": self.domain, "roles": "+".join(sorted(self.roles)),
                "text": self.text, "blocks": self.blocks, "status": "muted" if self.muted else "pending"}


# -- blocked ---------------------------------------------------------------------------------------

def blocked_messages(upstream: UpstreamRun, *, cause: str, blocked: Sequence[Blocked],
                     teams: Mapping[str, Team]) -> list[Message]:
    """The messages of one blocked upstream run: one per consuming domain channel, one to the owner.

    ``cause`` is a sentence fragment saying what happened ("failed after 3 tries", "has not
    succeeded: finance's sensor gave up waiting after 6h"). ``teams`` must hold the upstream's and
    every consuming domain. No consumer, no message (nobody is blocked)."""
    if not blocked:
        return []
    by_domain: dict[str, list[Blocked]] = {}
    for item in blocked:
        by_domain.setdefault(item.domain, []).append(item)
    owner_channel = upstream.slack or teams[upstream.domain].slack
    audience = _audience(owner_channel, upstream.domain, {d: teams[d].slack for d in by_domain})
    messages = []
    for channel, (domain, roles, consumer_domains) in audience.items():
        header = f"Blocked: {upstream.name} {cause.split(':')[0]}"
        lines = [f"*{_esc(upstream.name)}* (`{_esc(upstream.dag_id)}`, run of {_when(upstream.logical_date)}) "
                 f"{_esc(cause)}."]
        if "consumer" in roles:
            for d in consumer_domains:
                lines.append(f"*Blocked in {_esc(d)}*:")
                lines.extend(_blocked_lines(by_domain[d]))
            lines.append(f"Upstream owner: {_esc(upstream.owner or teams[upstream.domain].owner)} "
                         f"({_esc(owner_channel)}).")
            lines.append("handoff resumes the blocked runs by itself as soon as "
                         f"{_esc(upstream.name)} succeeds for this run (late-completion recovery): "
                         "nothing to clear on your side.")
        if "owner" in roles:
            waiting = [d for d in by_domain if "consumer" not in roles or d not in consumer_domains]
            if waiting:
                lines.append("*Teams blocked by it*: " + "; ".join(
                    f"{_esc(d)} ({_esc(teams[d].owner)}, {_esc(teams[d].slack)}): "
                    f"{_count(sum(len(b.tasks) for b in by_domain[d]), 'task')} in "
                    + ", ".join(f"`{_esc(b.dag_id)}`" for b in by_domain[d]) for d in waiting) + ".")
            lines.append("Once it succeeds for this run (fix it, then clear the task), handoff resumes "
                         "their runs by itself.")
        messages.append(_message("blocked", upstream, channel, domain, roles, header, lines, teams))
    return messages


def _blocked_lines(items: Iterable[Blocked]) -> list[str]:
    lines = []
    for b in items:
        runs = f" run{'s' if len(b.runs) > 1 else ''} of {_listed([_when(r) for r in b.runs])}" if b.runs else ""
        via = f" (via {' -> '.join(_esc(v) for v in b.via[1:])})" if len(b.via) > 1 else ""
        lines.append(f"• `{_esc(b.dag_id)}`{runs}{via}: {_listed([f'`{_esc(t)}`' for t in b.tasks])}"
                     + (f" — waiting in {_listed([f'`{_esc(s)}`' for s in b.sensors])}" if b.sensors else ""))
    return lines


# -- resumed ---------------------------------------------------------------------------------------

def resumed_message(blocked_message: Mapping[str, Any], upstream: UpstreamRun, *, succeeded: datetime,
                    released: Sequence[tuple[str, str, str]], teams: Mapping[str, Team]) -> Message:
    """The follow-up to one 'blocked' message (``blocked_message``: its outbox row as a dict with
    channel, domain, roles, subject_task_id): ``upstream`` succeeded at ``succeeded``; ``released``
    lists (dag_id, run_id, sensor) recovery set to success for this channel's domain."""
    roles = frozenset(str(blocked_message["roles"]).split("+"))
    subject = UpstreamRun(upstream.domain, upstream.dag_id, str(blocked_message["subject_task_id"]),
                          upstream.logical_date, upstream.run_id, upstream.owner, upstream.slack)
    header = f"Resumed: {upstream.name} succeeded"
    lines = [f"*{_esc(upstream.name)}* succeeded for the run of {_when(upstream.logical_date)} "
             f"at {_when(succeeded)}" + (f" (it had blocked `{_esc(subject.task_id)}`)"
                                          if subject.task_id != upstream.task_id else "") + "."]
    mine = [r for r in released if r[0].split("__", 1)[0] == blocked_message["domain"]] if "consumer" in roles else []
    if mine:
        lines.append("Released by handoff: " + _listed([f"`{_esc(d)}` {_esc(run)}: `{_esc(s)}`" for d, run, s in mine])
                     + " — the blocked tasks are running again.")
    elif "consumer" in roles:
        lines.append("Your runs waiting on it continue (their sensors see it now).")
    if "owner" in roles and released:
        lines.append(f"Consumers released: {_count(len(released), 'sensor')} in "
                     + ", ".join(sorted({f'`{_esc(d)}`' for d, _, _ in released})) + ".")
    domain = str(blocked_message["domain"])
    return _message("resumed", subject, str(blocked_message["channel"]), domain, roles, header, lines, teams)


# -- SLA miss --------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Miss:
    """One model run past its SLA deadline: ``sla`` the promise ("available_by 06:30 UTC"),
    ``state`` what the task was doing at the deadline ("running", "failed", "no run"),
    ``completed`` when it has completed since (late), ``consumers`` the DAGs reading it."""

    model: UpstreamRun
    sla: str
    deadline: datetime
    state: str
    consumers: tuple[Blocked, ...] = ()
    completed: datetime | None = None


def sla_miss_messages(model: UpstreamRun, *, sla: str, deadline: datetime, state: str,
                      consumers: Sequence[Blocked], teams: Mapping[str, Team],
                      completed: datetime | None = None) -> list[Message]:
    """A model run passed its SLA deadline without success: its owner's channel and each reading
    domain's channel hear it (one message each)."""
    return sla_miss_digests([Miss(model, sla, deadline, state, tuple(consumers), completed)], teams)


def sla_miss_digests(misses: Sequence[Miss], teams: Mapping[str, Team]) -> list[Message]:
    """The messages of the misses one check found: ONE per channel (and mute state). A channel that
    hears of one miss gets the single-model message; a channel that hears of several gets one
    message listing them (the first ``MAX_MISSES_LISTED`` by deadline, then "and N more"), so a
    domain whose thousand models all miss at once posts one message per channel, not a thousand.
    ``teams`` must hold every domain involved."""
    per_channel: dict[tuple[str, bool], list[tuple[Miss, str, frozenset[str], list[str]]]] = {}
    for miss in misses:
        model = miss.model
        owner_channel = model.slack or teams[model.domain].slack
        domains = sorted({c.domain for c in miss.consumers})
        for channel, (domain, roles, consumer_domains) in _audience(
                owner_channel, model.domain, {d: teams[d].slack for d in domains}).items():
            team = teams.get(domain)
            per_channel.setdefault((channel, bool(team and team.mutes("sla_miss"))), []).append(
                (miss, domain, roles, consumer_domains))
    messages = []
    for (channel, _), entries in per_channel.items():
        if len(entries) == 1:
            miss, domain, roles, consumer_domains = entries[0]
            messages.append(_sla_miss_message(miss, channel, domain, roles, consumer_domains, teams))
        else:
            messages.append(_sla_miss_digest(channel, entries, teams))
    return messages


def _digest_line(miss: Miss, roles: frozenset[str], consumer_domains: Sequence[str]) -> str:
    model = miss.model
    line = (f"• *{_esc(model.name)}* (`{_esc(model.dag_id)}`, run of {_when(model.logical_date)}): "
            f"{_esc(miss.sla)}, due {_when(miss.deadline)}; {_status(miss)}")
    readers = sorted({c.domain for c in miss.consumers})
    if "owner" in roles and readers:
        line += f" — read by {_listed([_esc(d) for d in readers])}"
    if "consumer" in roles:
        dags = sorted({c.dag_id for c in miss.consumers if c.domain in consumer_domains})
        line += f" — waiting in {_listed([f'`{_esc(d)}`' for d in dags])}"
    return line


def _status(miss: Miss) -> str:
    return (f"it completed late, at {_when(miss.completed)}" if miss.completed is not None
            else f"at the deadline it was *{_esc(miss.state)}*")


def _sla_miss_message(miss: Miss, channel: str, domain: str, roles: frozenset[str], consumer_domains: list[str],
                      teams: Mapping[str, Team]) -> Message:
    model = miss.model
    owner_channel = model.slack or teams[model.domain].slack
    by_domain: dict[str, list[Blocked]] = {}
    for item in miss.consumers:
        by_domain.setdefault(item.domain, []).append(item)
    header = f"SLA missed: {model.name}"
    lines = [f"*{_esc(model.name)}* (`{_esc(model.dag_id)}`, run of {_when(model.logical_date)}) missed its SLA: "
             f"{_esc(miss.sla)}, due {_when(miss.deadline)}; {_status(miss)}."]
    if "owner" in roles:
        lines.append(f"Owner: {_esc(model.owner or teams[model.domain].owner)}."
                     + (f" Read by {', '.join(_esc(d) for d in by_domain)}." if by_domain else ""))
    if "consumer" in roles:
        for d in consumer_domains:
            lines.append(f"*Waiting in {_esc(d)}*:")
            lines.extend(_blocked_lines(by_domain[d]))
        lines.append(f"Ask {_esc(model.owner or teams[model.domain].owner)} in {_esc(owner_channel)}; "
                     "`handoff sla " + _esc(model.name) + "` shows how reliable this promise has been.")
    return _message("sla_miss", model, channel, domain, roles, header, lines, teams)


def _sla_miss_digest(channel: str, entries: Sequence[tuple[Miss, str, frozenset[str], list[str]]],
                     teams: Mapping[str, Team]) -> Message:
    """One message listing several misses for one channel (its subject: the first, by deadline)."""
    ordered = sorted(entries, key=lambda e: (e[0].deadline, e[0].model.dag_id, e[0].model.task_id,
                                             e[0].model.logical_date))
    owners = sorted({e[0].model.domain for e in ordered})
    header = f"SLA missed: {_count(len(ordered), 'model run')}" + (f" of {owners[0]}" if len(owners) == 1 else "")
    head = [f"*{_count(len(ordered), 'model run')}* missed their SLA"
            f" ({_count(len({e[0].model.dag_id for e in ordered}), 'DAG')}):"]
    items = [_digest_line(miss, roles, consumer_domains) for miss, _, roles, consumer_domains in ordered]
    tail = []
    if any("owner" in e[2] for e in ordered):
        tail.append("Owner: " + ", ".join(f"{_esc(teams[d].owner)} ({_esc(d)})" for d in owners if d in teams) + ".")
    tail.append(" ".join(f"`handoff sla {_esc(d)}`" for d in owners[:MAX_LISTED])
                + " shows how reliable these promises have been.")
    shown = min(len(items), MAX_MISSES_LISTED)
    while True:  # as many as the section holds (Slack: 3,000 characters), the rest counted
        rest = len(items) - shown
        lines = head + items[:shown] + ([f"and {rest} more."] if rest > 0 else []) + tail
        if shown <= 1 or len("\n".join(lines)) <= MAX_SECTION:
            break
        shown -= 1
    first, domain = ordered[0][0], ordered[0][1]
    roles = frozenset().union(*(e[2] for e in ordered))
    return _message("sla_miss", first.model, channel, domain, roles, header, lines, teams)


# -- shared ----------------------------------------------------------------------------------------

def _audience(owner_channel: str, owner_domain: str,
              consumer_channels: Mapping[str, str]) -> dict[str, tuple[str, frozenset[str], list[str]]]:
    """channel -> (whose, roles, consuming domains posting there), owner first, then by domain."""
    found: dict[str, tuple[str, frozenset[str], list[str]]] = {owner_channel: (owner_domain, frozenset({"owner"}), [])}
    for domain in sorted(consumer_channels):
        channel = consumer_channels[domain]
        whose, roles, domains = found.get(channel, (domain, frozenset(), []))
        found[channel] = (whose, roles | {"consumer"}, [*domains, domain])
    return found


def _message(kind: str, subject: UpstreamRun, channel: str, domain: str, roles: frozenset[str], header: str,
             lines: list[str], teams: Mapping[str, Team]) -> Message:
    body = _clip("\n".join(lines), MAX_SECTION)
    text = f"{_esc(header)}\n{body}"
    blocks: list[dict[str, Any]] = [
        {"type": "header", "text": {"type": "plain_text", "text": _clip(header, MAX_HEADER), "emoji": False}},
        {"type": "section", "text": {"type": "mrkdwn", "text": body}},
        {"type": "context", "elements": [{"type": "mrkdwn", "text": _clip(
            f"handoff · {kind} · to {_esc(channel)} as {' and '.join(sorted(roles))} · "
            f"`{_esc(subject.dag_id)}.{_esc(subject.task_id)}` {_when(subject.logical_date)}", 300)}]},
    ]
    team = teams.get(domain)
    return Message(kind, subject, channel, domain, roles, text, blocks, muted=bool(team and team.mutes(kind)))


def _esc(value: object) -> str:
    """Slack's three escapes: no mention, link or markup can come from a name or an owner."""
    return str(value).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _when(moment: datetime) -> str:
    """2026-11-24 05:00 UTC."""
    found = moment.astimezone(timezone.utc)
    return found.strftime("%Y-%m-%d %H:%M" + (":%S" if found.second else "")) + " UTC"


def _listed(items: Sequence[str]) -> str:
    shown = list(items[:MAX_LISTED])
    rest = len(items) - len(shown)
    return ", ".join(shown) + (f" and {rest} more" if rest > 0 else "")


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}{'' if n == 1 else 's'}"


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[:limit - 1] + "…"
