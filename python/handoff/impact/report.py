"""The impact report's data: a change, a consumer, one changed model, a team, the whole report.

Frozen dataclasses, no I/O. ``diff`` builds a ``Report``, ``consumers`` adds who reads each model,
``render`` and ``json_report`` format it, ``policy`` turns it into an exit code.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ..columns import Demand
from .classes import CLASS

ConsumerKey = tuple[str, str, str]  # (domain, dag_id, task_id)


@dataclass(frozen=True)
class Change:
    """One change of one model. ``columns``: the model's columns it removes or retypes (judged per
    consumer, by what each reads). Once consumers are known, ``hits`` are the consumers it breaks (None:
    every consumer, when breaking) and ``maybe`` those it may break (what they read is unknown)."""

    kind: str
    detail: str
    breaking_override: bool | None = None  # for classes whose verdict depends on the case
    sla: str | None = None  # available_by_later: the new SLA
    columns: tuple[str, ...] = ()
    hits: frozenset[ConsumerKey] | None = None
    maybe: frozenset[ConsumerKey] = frozenset()

    @property
    def breaking(self) -> bool:
        """Whether this change breaks a consumer, if the model has one."""
        return CLASS[self.kind].breaking if self.breaking_override is None else self.breaking_override

    @property
    def uncertain(self) -> bool:
        """Not known to break, but may: the columns involved are unknown (``columns_unknown``, or a
        consumer whose read columns are unknown)."""
        return not self.breaking and (CLASS[self.kind].uncertain or bool(self.maybe))

    def breaks(self, consumer: Consumer) -> bool:
        return self.breaking and (self.hits is None or consumer.key in self.hits)

    def may_break(self, consumer: Consumer) -> bool:
        if self.breaks(consumer):
            return False
        return consumer.key in self.maybe or (CLASS[self.kind].uncertain and self.breaking_override is None)


@dataclass(frozen=True)
class Consumer:
    """A task of another domain that reads the changed model, directly (depth 1) or through others."""

    domain: str
    dag_id: str
    task_id: str
    model: str
    owner: str
    slack: str
    depth: int = 1
    via: tuple[str, ...] = ()  # domain.model crossed, from the changed model to the one this task waits on
    direct: bool = True  # reads the changed model itself (one sensor away)
    available_by: str | None = None  # its own SLA (HH:MM UTC)
    reads: Demand | None = None  # direct readers: the changed model's columns its SQL reads (None: unknown)
    readers: tuple[str, ...] = ()  # downstream of readers: the direct readers (task ids) in its DAG above it

    @property
    def key(self) -> ConsumerKey:
        return (self.domain, self.dag_id, self.task_id)


@dataclass(frozen=True)
class ModelImpact:
    """One changed model (one version of it), seed or snapshot."""

    resource_type: str
    name: str
    version: str | None
    unique_id: str
    task_id: str
    access_base: str | None
    access_head: str | None
    changes: tuple[Change, ...]
    lookup_name: str | None = None  # the name other domains know it by (the base name); None if new
    consumers: tuple[Consumer, ...] | None = None  # None: not looked up
    columns_from: tuple[str | None, str | None] = (None, None)  # where (base, head) column lists came from

    @property
    def label(self) -> str:
        """How the report names it: ``orders v2``; a rename shows ``old → new``."""
        name = self.name if self.lookup_name in (None, self.name) else f"{self.lookup_name} → {self.name}"
        return name if self.version is None else f"{name} v{self.version}"

    @property
    def public(self) -> bool:
        """Visible to other domains before this change (or, for a new model, after it)."""
        access = self.access_base if self.lookup_name is not None else self.access_head
        return access == "public"

    @property
    def exposed(self) -> bool:
        """Whether other domains can be hurt: public, or actually consumed (which `handoff check` rejects
        for a non-public model, but the consumers are real)."""
        return self.public or bool(self.consumers)

    @property
    def breaking_changes(self) -> tuple[Change, ...]:
        return tuple(c for c in self.changes if c.breaking) if self.exposed else ()

    @property
    def breaking(self) -> bool:
        return bool(self.breaking_changes)

    @property
    def uncertain_changes(self) -> tuple[Change, ...]:
        """Changes that may break a consumer (columns unknown); none for an internal model."""
        return tuple(c for c in self.changes if c.uncertain) if self.exposed else ()

    @property
    def uncertain(self) -> bool:
        """Not known to break, but may."""
        return not self.breaking and bool(self.uncertain_changes)

    def breaks(self, consumer: Consumer) -> bool:
        return self.exposed and any(c.breaks(consumer) for c in self.changes)

    def may_break(self, consumer: Consumer) -> bool:
        return self.exposed and not self.breaks(consumer) and any(c.may_break(consumer) for c in self.changes)


@dataclass(frozen=True)
class Team:
    """A consuming team (one Slack channel) and the changed models that reach it."""

    slack: str
    owners: tuple[str, ...]
    domains: tuple[str, ...]
    models: tuple[str, ...]
    breaking: bool
    indirect: tuple[str, ...] = ()  # models that reach it only through another domain
    uncertain: bool = False  # a change may break it (columns unknown)


@dataclass(frozen=True)
class Report:
    domain: str
    project: str
    models: tuple[ModelImpact, ...]
    consumers_checked: bool = False

    @property
    def consumed(self) -> tuple[ModelImpact, ...]:
        return tuple(m for m in self.models if m.consumers)

    @property
    def reaching(self) -> tuple[ModelImpact, ...]:
        """Changed models that reach other domains: those with consumers, or, when consumers were not
        looked up, every model that was public before the change."""
        if self.consumers_checked:
            return self.consumed
        return tuple(m for m in self.models if m.public and m.lookup_name is not None)

    @property
    def breaking_changes(self) -> int:
        """Breaking changes that reach another domain."""
        return sum(len(m.breaking_changes) for m in self.reaching)

    @property
    def uncertain_changes(self) -> int:
        """Changes that reach another domain and may break it (columns unknown)."""
        return sum(len(m.uncertain_changes) for m in self.reaching)

    @property
    def cross_domain_impact(self) -> bool:
        return bool(self.reaching)

    def teams(self) -> tuple[Team, ...]:
        """Consumers' teams, one per Slack channel, sorted: teams hit by a breaking change first.
        A model a team reaches only through another domain is marked "(indirect)"."""
        found: dict[str, dict[str, Any]] = {}
        for model in self.consumed:
            depth: dict[str, int] = {}
            for consumer in model.consumers or ():
                depth[consumer.slack] = min(depth.get(consumer.slack, consumer.depth), consumer.depth)
                team = found.setdefault(consumer.slack, {"owners": set(), "domains": set(), "models": set(),
                                                         "breaking": False, "uncertain": False})
                team["owners"].add(consumer.owner)
                team["domains"].add(consumer.domain)
                team["breaking"] = team["breaking"] or model.breaks(consumer)
                team["uncertain"] = team["uncertain"] or model.may_break(consumer)
            for slack, nearest in depth.items():
                found[slack]["models"].add((model.label, nearest > 1))
        teams = [Team(slack, tuple(sorted(t["owners"])), tuple(sorted(t["domains"])),
                      tuple(sorted(label for label, _ in t["models"])),
                      t["breaking"], tuple(sorted(label for label, indirect in t["models"] if indirect)),
                      t["uncertain"])
                 for slack, t in found.items()]
        return tuple(sorted(teams, key=lambda t: (not t.breaking, not t.uncertain, t.slack)))


def version_order(version: str | None) -> tuple[int, float, str]:
    """Sort key of dbt model versions: unversioned first, then numeric, then other strings."""
    if version is None:
        return (0, 0.0, "")
    try:
        return (1, float(version), version)
    except ValueError:
        return (2, 0.0, version)
