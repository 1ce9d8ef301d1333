"""Consumers: who in other domains reads each changed model, and the verdicts that depend on them.

``attach_consumers`` asks a lookup function (the registry, at the CLI's edge) for each changed
model's consumers and judges the classes whose verdict depends on who reads the model.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable, Sequence
from dataclasses import replace

from .report import Change, Consumer, ModelImpact, Report

ConsumerLookup = Callable[[ModelImpact], Iterable[Consumer]]


def attach_consumers(report: Report, lookup: ConsumerLookup, waited_on: Collection[str] | None = None) -> Report:
    """The report with each changed model's consumers in other domains (new models have none).

    A consumer reached only through *another* model of this domain (its path re-enters this domain
    after the changed model, e.g. through a task dependency of a test) does not read the changed
    model: it is left out here and listed under that other model when that one changes.
    ``waited_on``: the model keys other domains' sensors name (kept for callers; no class needs it
    since a bare name resolves to the latest version, docs/plan.md).
    """
    own = f"{report.domain}."
    models = []
    for model in report.models:
        if model.lookup_name is None:
            models.append(replace(model, consumers=()))
            continue
        keys = {f"{report.domain}.{model.lookup_name}", f"{report.domain}.{model.task_id}"}
        found = {}
        for consumer in lookup(model):
            # a path may hop through the model's other key (orders_v1 -> orders): that is the model itself
            via = consumer.via[:1] + tuple(v for v in consumer.via[1:] if v not in keys)
            if consumer.domain != report.domain and not any(v.startswith(own) for v in via[1:]):
                found[(consumer.domain, consumer.dag_id, consumer.task_id)] = replace(consumer, via=via)
        ordered = tuple(sorted(found.values(), key=lambda c: (c.depth, c.slack, c.domain, c.dag_id, c.task_id)))
        changes = tuple(_judge(c, model, ordered, waited_on) for c in model.changes)
        models.append(replace(model, consumers=ordered, changes=changes))
    return replace(report, models=tuple(models), consumers_checked=True)


def _judge(change: Change, model: ModelImpact, consumers: Sequence[Consumer],
           waited_on: Collection[str] | None) -> Change:
    """Classes whose verdict depends on what the registry knows."""
    if change.kind == "available_by_later":
        return _judge_sla(change, consumers)
    if change.kind == "columns_unknown":
        return replace(change, maybe=frozenset(c.key for c in consumers))
    if change.columns and change.kind in COLUMN_KINDS and model.exposed:
        return _judge_columns(change, consumers)
    if change.columns and change.kind == "column_expression_changed" and model.exposed:
        return _judge_reworked(change, consumers)
    return change


COLUMN_KINDS = frozenset({"column_removed", "column_renamed", "column_type_changed"})
HIT, SAFE, UNKNOWN = "hit", "safe", "unknown"


def _judge_columns(change: Change, consumers: Sequence[Consumer]) -> Change:
    """A dropped, renamed or retyped column breaks the consumers whose SQL reads it (and what is downstream
    of them); it may break those whose read columns are unknown; the others are safe."""
    status = consumer_status(change.columns, consumers)
    hit = [c for c in consumers if status[c.key] == HIT]
    maybe = [c for c in consumers if status[c.key] == UNKNOWN]
    direct = [c for c in consumers if c.direct]
    if hit:
        readers = "; ".join(f"{c.domain}.{c.model} reads " + ", ".join(
            f"`{col}`" for col in change.columns if c.reads is not None and c.reads.reads(col))
            for c in direct if status[c.key] == HIT)
        detail = f"{change.detail}; read by {readers}"
    elif maybe:
        unknown = ", ".join(sorted({f"{c.domain}.{c.model}" for c in direct if status[c.key] == UNKNOWN}))
        detail = f"{change.detail}; may break: the columns {unknown or 'its consumers'} read are unknown"
    else:
        shown = "; ".join(f"{c.domain}.{c.model} reads {c.reads.describe()}" for c in direct if c.reads is not None)
        detail = f"{change.detail}; no consumer reads it" + (f" ({shown})" if shown else "")
    return replace(change, detail=detail, breaking_override=bool(hit), hits=frozenset(c.key for c in hit),
                   maybe=frozenset(c.key for c in maybe))


def _judge_reworked(change: Change, consumers: Sequence[Consumer]) -> Change:
    """A column computed differently whose type cannot be compared may break the consumers that read
    it (or whose reads are unknown); the others are safe."""
    status = consumer_status(change.columns, consumers)
    maybe = [c for c in consumers if status[c.key] in (HIT, UNKNOWN)]
    direct = sorted({f"{c.domain}.{c.model}" for c in maybe if c.direct})
    detail = (f"{change.detail}; may break {', '.join(direct) or 'its consumers'} (reading it)" if maybe
              else f"{change.detail}; no consumer reads it")
    return replace(change, detail=detail, breaking_override=False, maybe=frozenset(c.key for c in maybe))


def consumer_status(columns: Sequence[str], consumers: Sequence[Consumer]) -> dict[tuple[str, str, str], str]:
    """For each consumer: ``hit`` (reads one of ``columns``, or is downstream of a reader that does),
    ``unknown`` (what it or its reader reads is unknown) or ``safe``."""
    status: dict[tuple[str, str, str], str] = {}
    for c in consumers:
        if c.direct:
            if c.reads is None:
                status[c.key] = UNKNOWN
            else:
                status[c.key] = HIT if any(c.reads.reads(col) for col in columns) else SAFE
    for c in consumers:
        if c.direct or c.depth != 1:
            continue
        readers = c.readers or tuple(r.task_id for r in consumers if r.direct and r.dag_id == c.dag_id)
        status[c.key] = _worst(status.get((c.domain, c.dag_id, r), UNKNOWN) for r in readers)
    by_model = {f"{c.domain}.{c.model}": status[c.key] for c in consumers if c.depth == 1}
    by_model.update({f"{c.domain}.{c.task_id}": status[c.key] for c in consumers if c.depth == 1})
    for c in consumers:
        if c.depth > 1:
            status[c.key] = by_model.get(c.via[1], UNKNOWN) if len(c.via) > 1 else UNKNOWN
    return status


def _worst(found: Iterable[str]) -> str:
    seen = set(found)
    if not seen:
        return UNKNOWN
    return HIT if HIT in seen else UNKNOWN if UNKNOWN in seen else SAFE


def _judge_sla(change: Change, consumers: Sequence[Consumer]) -> Change:
    """A later SLA breaks exactly the consumers whose own SLA is now earlier than it."""
    late = sorted(f"{c.domain}.{c.model} {c.available_by}" for c in consumers
                  if c.available_by and change.sla and c.available_by < change.sla)
    if late:
        detail = f"{change.detail}; earlier than: {', '.join(late)}"
    else:
        detail = f"{change.detail}; every consumer's SLA is later" if consumers else change.detail
    hits = frozenset(c.key for c in consumers if c.available_by and change.sla and c.available_by < change.sla)
    return replace(change, detail=detail, breaking_override=bool(late), hits=hits)

