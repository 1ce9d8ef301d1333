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
    ``waited_on``: the model keys other domains' sensors name (judges ``name_ambiguous``).
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
    if change.kind == "name_ambiguous" and waited_on is not None:
        return replace(change, breaking_override=model.name in waited_on)
    return change


def _judge_sla(change: Change, consumers: Sequence[Consumer]) -> Change:
    """A later SLA breaks exactly the consumers whose own SLA is now earlier than it."""
    late = sorted(f"{c.domain}.{c.model} {c.available_by}" for c in consumers
                  if c.available_by and change.sla and c.available_by < change.sla)
    if late:
        detail = f"{change.detail}; earlier than: {', '.join(late)}"
    else:
        detail = f"{change.detail}; every consumer's SLA is later" if consumers else change.detail
    return replace(change, detail=detail, breaking_override=bool(late))

