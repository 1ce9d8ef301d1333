"""The PR impact report: what changed between two manifests of one domain, and who it reaches.

Pure: ``diff_manifests`` compares two ``Manifest`` objects, ``attach_consumers`` adds what a
lookup function (the registry, at the CLI's edge) says about consumers in other domains, and
``render_markdown`` / ``to_json`` format the result. docs/impact.md documents every change class.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from typing import Any, Callable, Collection, Iterable, Mapping, Sequence

from .convention import Resolved, resolve
from .errors import HandoffError
from .manifest import Manifest, Node
from .plan import task_id_for_node

IMPACT_VERSION = 1
RESOURCE_TYPES = ("model", "seed", "snapshot")


@dataclass(frozen=True)
class ChangeClass:
    kind: str
    breaking: bool
    meaning: str


# Every change class, in the order the report lists them. ``breaking`` says whether the class
# breaks a consumer in another domain; it only matters for a model other domains can see.
CLASSES: tuple[ChangeClass, ...] = (
    ChangeClass("removed", True, "the model is gone; consumers' sources and sensors point at nothing"),
    ChangeClass("renamed", True, "same SQL and columns under another name; consumers must follow the new name"),
    ChangeClass("version_removed", True, "a dbt model version is gone (consumers pinned to it break)"),
    ChangeClass("access_narrowed", True, "public became protected or private: other domains may no longer read it"),
    ChangeClass("contract_removed", True, "the enforced contract was dropped: the columns are no longer guaranteed"),
    ChangeClass("relation_changed", True, "configured database, schema or alias changed, or it became ephemeral: "
                "consumers' sources name the old relation"),
    ChangeClass("column_removed", True, "a documented column is gone (contracted, or its SQL changed too)"),
    ChangeClass("column_type_changed", True, "a column's documented or contracted data_type changed"),
    ChangeClass("latest_version_changed", True, "dbt's latest_version moved; breaking when the new latest version "
                "drops or retypes a column of the old one"),
    ChangeClass("name_ambiguous", True, "a versioned model with one version got another: consumers that wait on "
                "its bare name no longer resolve; with a registry, breaking only when one does"),
    ChangeClass("available_by_later", True, "the SLA moved later; with a registry, breaking only when a consumer's "
                "own SLA is earlier than the new one (it can no longer be met)"),
    ChangeClass("added", False, "a new model, seed or snapshot"),
    ChangeClass("version_added", False, "a new dbt model version next to the existing ones"),
    ChangeClass("access_widened", False, "became public: other domains may now depend on it"),
    ChangeClass("access_changed", False, "protected <-> private, or another group"),
    ChangeClass("contract_added", False, "the contract is now enforced"),
    ChangeClass("column_added", False, "a new documented column"),
    ChangeClass("column_undocumented", False, "a column left the YAML of an uncontracted model whose SQL did not "
                "change: a documentation change"),
    ChangeClass("deprecation_changed", False, "dbt deprecation_date set, moved or lifted"),
    ChangeClass("available_by_changed", False, "the SLA moved earlier, or was set or removed"),
    ChangeClass("sql_changed", False, "the SQL (or seed data) changed; the documented columns did not"),
    ChangeClass("config_changed", False, "dbt config changed (materialization, tags, grants, ...)"),
)
CLASS = {c.kind: c for c in CLASSES}
_ORDER = {c.kind: i for i, c in enumerate(CLASSES)}

# unrendered_config keys compared by other classes (or irrelevant to consumers), not by config_changed
_CONFIG_IGNORED = frozenset({"meta", "access", "contract", "docs", "group", "enabled", "description",
                             "deprecation_date", "latest_version", "database", "schema", "alias"})


@dataclass(frozen=True)
class Change:
    kind: str
    detail: str
    breaking_override: bool | None = None  # for classes whose verdict depends on the case
    sla: str | None = None  # available_by_later: the new SLA

    @property
    def breaking(self) -> bool:
        """Whether this change breaks a consumer, if the model has one."""
        return CLASS[self.kind].breaking if self.breaking_override is None else self.breaking_override


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


@dataclass(frozen=True)
class Team:
    """A consuming team (one Slack channel) and the changed models that reach it."""

    slack: str
    owners: tuple[str, ...]
    domains: tuple[str, ...]
    models: tuple[str, ...]
    breaking: bool
    indirect: tuple[str, ...] = ()  # models that reach it only through another domain


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
                                                         "breaking": False})
                team["owners"].add(consumer.owner)
                team["domains"].add(consumer.domain)
                team["breaking"] = team["breaking"] or model.breaking
            for slack, nearest in depth.items():
                found[slack]["models"].add((model.label, nearest > 1))
        teams = [Team(slack, tuple(sorted(t["owners"])), tuple(sorted(t["domains"])),
                      tuple(sorted(label for label, _ in t["models"])),
                      t["breaking"], tuple(sorted(label for label, indirect in t["models"] if indirect)))
                 for slack, t in found.items()]
        return tuple(sorted(teams, key=lambda t: (not t.breaking, t.slack)))


# --------------------------------------------------------------------------------------
# Comparing two manifests
# --------------------------------------------------------------------------------------

_Key = tuple[str, str, "str | None"]  # (resource_type, name, version)


def _domain_name(manifest: Manifest, resolved: Resolved) -> str:
    """The domain a manifest declares (handoff_domain.name), or its dbt project name."""
    return resolved.domain.name if resolved.domain else manifest.project_name


def check_comparable(base: Manifest, head: Manifest, base_resolved: Resolved | None = None,
                     head_resolved: Resolved | None = None) -> str:
    """The domain both manifests belong to; a one-line HandoffError if they cannot be compared."""
    if base.sha256 and base.sha256 == head.sha256:
        raise HandoffError(
            "no changes: base and head are the same manifest",
            where=head.path if base.path == head.path else f"{base.path} and {head.path}",
            hint="two `dbt parse` runs never write identical files, so this compares a file with itself; "
                 "pass the deployed manifest as --base and the PR's target/manifest.json as --head")
    if base.project_name != head.project_name:
        raise HandoffError(
            f"manifests of different dbt projects: base is '{base.project_name}', head is '{head.project_name}'",
            where=f"{base.path} and {head.path}",
            hint="compare two manifests of the same project (the deployed one and the PR's)")
    base_domain = _domain_name(base, base_resolved or resolve(base))
    head_domain = _domain_name(head, head_resolved or resolve(head))
    if base_domain != head_domain:
        raise HandoffError(
            f"manifests of different domains: base is '{base_domain}', head is '{head_domain}'",
            where=f"{base.path} and {head.path}",
            hint="renaming a domain is a new domain to the registry: publish it and move consumers first")
    return head_domain


def diff_manifests(base: Manifest, head: Manifest) -> Report:
    """Classify every added, removed and changed model, seed and snapshot of one domain (pure)."""
    base_resolved, head_resolved = resolve(base), resolve(head)
    domain = check_comparable(base, head, base_resolved, head_resolved)
    old, new = _nodes(base), _nodes(head)
    old_sla, new_sla = _available_by(base_resolved), _available_by(head_resolved)
    impacts: dict[_Key, ModelImpact] = {}

    gone = [k for k in old if k not in new]
    came = [k for k in new if k not in old]
    old_names = {(k[0], k[1]) for k in old}
    new_names = {(k[0], k[1]) for k in new}
    renames = _pair_renames(
        [k for k in gone if (k[0], k[1]) not in new_names], [k for k in came if (k[0], k[1]) not in old_names],
        old, new)

    for key in gone:
        node = old[key]
        if key in renames:
            target = new[renames[key]]
            changes = [Change("renamed", f"renamed `{node.name}` → `{target.name}` (same SQL and columns); "
                                         f"consumers must follow the new name")]
            changes += _compare(node, target, old_sla.get(node.unique_id), new_sla.get(target.unique_id))
            impacts[key] = _impact(target, changes, base_node=node)
            continue
        siblings = sorted((k[2] for k in new if (k[0], k[1]) == (key[0], key[1])), key=_version_order)
        if siblings:
            remaining = ", ".join(_v(v) for v in siblings)
            plural = "s" if len(siblings) > 1 else ""
            detail = (f"unversioned `{node.name}` replaced by version{plural} {remaining}" if key[2] is None
                      else f"version {_v(key[2])} removed ({remaining} remain{'s' if len(siblings) == 1 else ''})")
            impacts[key] = _impact(None, [Change("version_removed", detail)], base_node=node)
        else:
            impacts[key] = _impact(None, [Change("removed", f"{node.resource_type} removed")], base_node=node)

    paired = set(renames.values())
    for key in came:
        if key in paired:
            continue
        node = new[key]
        if (key[0], key[1]) in old_names:
            change = Change("version_added", f"version {_v(key[2])} added" if key[2] is not None
                            else f"unversioned `{node.name}` added")
        else:
            change = Change("added", f"new {'public ' if node.access == 'public' else ''}{node.resource_type}")
        impacts[key] = _impact(node, [change])

    for key in sorted(set(old) & set(new), key=_key_order):
        changes = _compare(old[key], new[key], old_sla.get(old[key].unique_id), new_sla.get(new[key].unique_id))
        if changes:
            impacts[key] = _impact(new[key], changes, base_node=old[key])

    _latest_version_changes(old, new, impacts)
    _ambiguous_names(old, new, impacts)
    models = sorted(impacts.values(), key=lambda m: (m.resource_type != "model", m.name, _version_order(m.version)))
    return Report(domain=domain, project=head.project_name, models=tuple(models))


def _nodes(manifest: Manifest) -> dict[_Key, Node]:
    return {(n.resource_type, n.name, n.version): n for n in manifest.own_nodes(*RESOURCE_TYPES)}


def _available_by(resolved: Resolved) -> dict[str, str | None]:
    return {uid: s.available_by for uid, s in resolved.nodes.items()}


def _impact(node: Node | None, changes: list[Change], base_node: Node | None = None) -> ModelImpact:
    shown = node or base_node
    assert shown is not None
    return ModelImpact(
        resource_type=shown.resource_type,
        name=shown.name,
        version=shown.version,
        unique_id=shown.unique_id,
        task_id=task_id_for_node(base_node or shown),
        access_base=_access(base_node),
        access_head=_access(node),
        changes=tuple(sorted(changes, key=lambda c: _ORDER[c.kind])),
        lookup_name=base_node.name if base_node is not None else None,
    )


def _access(node: Node | None) -> str | None:
    if node is None:
        return None
    if node.resource_type != "model":
        return None  # seeds and snapshots have no dbt access level: never visible to other domains
    return node.access or "protected"


def _v(version: str | None) -> str:
    return "(unversioned)" if version is None else f"v{version}"


def _version_order(version: str | None) -> tuple[int, float, str]:
    if version is None:
        return (0, 0.0, "")
    try:
        return (1, float(version), version)
    except ValueError:
        return (2, 0.0, version)


def _key_order(key: _Key) -> tuple[str, str, tuple[int, float, str]]:
    return (key[0], key[1], _version_order(key[2]))


def _columns(node: Node) -> dict[str, str | None]:
    return {c.name.lower(): _type(c.data_type) for c in node.columns}


def _type(data_type: str | None) -> str | None:
    return " ".join(data_type.lower().split()) if data_type else None


def _pair_renames(gone: list[_Key], came: list[_Key], old: Mapping[_Key, Node],
                  new: Mapping[_Key, Node]) -> dict[_Key, _Key]:
    """Removed -> added pairs with the same type, version, checksum and columns, when the pair is unique."""
    def signature(node: Node) -> tuple[Any, ...] | None:
        if not node.checksum:
            return None
        return (node.resource_type, node.version, node.checksum, tuple(sorted(_columns(node).items(),
                                                                              key=lambda kv: kv[0])))
    by_old: dict[Any, list[_Key]] = {}
    by_new: dict[Any, list[_Key]] = {}
    for key in gone:
        sig = signature(old[key])
        if sig is not None:
            by_old.setdefault(sig, []).append(key)
    for key in came:
        sig = signature(new[key])
        if sig is not None:
            by_new.setdefault(sig, []).append(key)
    return {keys[0]: by_new[sig][0] for sig, keys in by_old.items()
            if len(keys) == 1 and len(by_new.get(sig, ())) == 1}


def _compare(old: Node, new: Node, old_sla: str | None, new_sla: str | None) -> list[Change]:
    """Changes between two nodes that are the same model (or a rename of it)."""
    changes = _access_changes(old, new)
    if old.contract_enforced and not new.contract_enforced:
        changes.append(Change("contract_removed", "contract no longer enforced"))
    elif new.contract_enforced and not old.contract_enforced:
        changes.append(Change("contract_added", "contract now enforced"))
    changes += _relation_changes(old, new)
    changes += _column_changes(old, new)
    if old_sla != new_sla:
        if old_sla and new_sla and new_sla > old_sla:
            changes.append(Change("available_by_later", f"SLA later: available_by {old_sla} → {new_sla} UTC",
                                  sla=new_sla))
        else:
            changes.append(Change("available_by_changed",
                                  f"available_by {old_sla or 'unset'} → {new_sla or 'unset'}" +
                                  (" UTC" if old_sla and new_sla else "")))
    if old.deprecation_date != new.deprecation_date:
        detail = (f"deprecated from {_date(new.deprecation_date)}" if new.deprecation_date
                  else "deprecation lifted")
        changes.append(Change("deprecation_changed", detail))
    if old.checksum != new.checksum:
        what = {"seed": "seed data changed", "snapshot": "snapshot definition changed"}.get(new.resource_type,
                                                                                           "SQL changed")
        changes.append(Change("sql_changed", what))
    config = _config_changes(old, new)
    if config:
        changes.append(Change("config_changed", "config changed: " + ", ".join(config)))
    return changes


def _access_changes(old: Node, new: Node) -> list[Change]:
    before, after = _access(old), _access(new)
    changes = []
    if before != after:
        if before == "public":
            changes.append(Change("access_narrowed", f"access public → {after}"))
        elif after == "public":
            changes.append(Change("access_widened", f"access {before} → public"))
        else:
            changes.append(Change("access_changed", f"access {before} → {after}"))
    elif old.group != new.group and new.resource_type == "model":
        changes.append(Change("access_changed", f"group {old.group or 'none'} → {new.group or 'none'}"))
    return changes


def _relation_changes(old: Node, new: Node) -> list[Change]:
    # Like dbt's state:modified.relation, compare the *configured* database/schema/alias (unrendered),
    # so the same project parsed for different targets (prod vs CI) is not a change.
    moved = [f"{key} {_show(old.unrendered_config.get(key))} → {_show(new.unrendered_config.get(key))}"
             for key in ("database", "schema", "alias")
             if old.unrendered_config.get(key) != new.unrendered_config.get(key)]
    if not old.is_ephemeral and new.is_ephemeral:
        moved.append("now ephemeral: no relation in the warehouse")
    return [Change("relation_changed", "relation changed: " + "; ".join(moved))] if moved else []


def _show(value: Any) -> str:
    return "default" if value is None else f"`{value}`"


def _column_changes(old: Node, new: Node) -> list[Change]:
    before, after = _columns(old), _columns(new)
    names = {c.name.lower(): c.name for c in (*old.columns, *new.columns)}
    changes = []
    removed = [names[c] for c in before if c not in after]
    if removed:
        listed = ", ".join(f"`{c}`" for c in removed)
        if old.contract_enforced or old.checksum != new.checksum:
            changes.append(Change("column_removed", f"column{'s' if len(removed) > 1 else ''} {listed} removed"))
        else:
            changes.append(Change("column_undocumented",
                                  f"column{'s' if len(removed) > 1 else ''} {listed} no longer documented "
                                  "(SQL unchanged, no contract)"))
    retyped = [f"`{names[c]}` {before[c]} → {after[c]}" for c in before
               if c in after and before[c] and after[c] and before[c] != after[c]]
    if retyped:
        changes.append(Change("column_type_changed", "type changed: " + ", ".join(retyped)))
    added = [names[c] for c in after if c not in before]
    if added:
        changes.append(Change("column_added", f"column{'s' if len(added) > 1 else ''} "
                              + ", ".join(f"`{c}`" for c in added) + " added"))
    return changes


def _config_changes(old: Node, new: Node) -> list[str]:
    keys = sorted((set(old.unrendered_config) | set(new.unrendered_config)) - _CONFIG_IGNORED)
    changed = []
    for key in keys:
        if _canonical(old.unrendered_config.get(key)) != _canonical(new.unrendered_config.get(key)):
            changed.append(key)
    if old.materialized != new.materialized:
        text = f"materialized {old.materialized} → {new.materialized}"
        changed = [text] + [k for k in changed if k != "materialized"]
    return changed


def _canonical(value: Any) -> str:
    return json.dumps(value, sort_keys=True, default=str)


def _date(value: str | None) -> str:
    return (value or "")[:10]


def _latest_version_changes(old: Mapping[_Key, Node], new: Mapping[_Key, Node],
                            impacts: dict[_Key, ModelImpact]) -> None:
    """A versioned model whose latest_version moved: one change on the entry of the old latest version."""
    def latest(nodes: Mapping[_Key, Node]) -> dict[tuple[str, str], Node]:
        found: dict[tuple[str, str], Node] = {}
        for (rtype, name, version), node in nodes.items():
            if version is not None and node.latest_version is not None and version == node.latest_version:
                found[(rtype, name)] = node
        return found

    before, after = latest(old), latest(new)
    for name_key in sorted(set(before) & set(after)):
        was, now = before[name_key], after[name_key]
        if was.version == now.version:
            continue
        dropped = [c for c in _columns(was) if c not in _columns(now)]
        retyped = [c for c, t in _columns(was).items()
                   if c in _columns(now) and t and _columns(now)[c] and t != _columns(now)[c]]
        problems = []
        if dropped:
            problems.append("drops " + ", ".join(f"`{c}`" for c in dropped))
        if retyped:
            problems.append("retypes " + ", ".join(f"`{c}`" for c in retyped))
        detail = (f"latest version v{was.version} → v{now.version}: unpinned references now get "
                  f"v{now.version}, which " + ("; ".join(problems) if problems else "keeps every column of "
                                               f"v{was.version}"))
        change = Change("latest_version_changed", detail, breaking_override=bool(problems))
        key = (name_key[0], name_key[1], was.version)
        current = impacts.get(key)
        if current is None:
            node = new.get(key)
            impacts[key] = _impact(node, [change], base_node=was)
        else:
            impacts[key] = replace(current, changes=tuple(sorted((*current.changes, change),
                                                                 key=lambda c: _ORDER[c.kind])))


def _ambiguous_names(old: Mapping[_Key, Node], new: Mapping[_Key, Node], impacts: dict[_Key, ModelImpact]) -> None:
    """A versioned model that had one version and now has several: a sensor naming it without a version
    (``upstream_model: orders``) resolved to that version and is now ambiguous (see registry.mesh)."""
    def versions(nodes: Mapping[_Key, Node]) -> dict[tuple[str, str], list[str]]:
        found: dict[tuple[str, str], list[str]] = {}
        for rtype, name, version in nodes:
            if version is not None:
                found.setdefault((rtype, name), []).append(version)
        return found

    before, after = versions(old), versions(new)
    for name_key, was in sorted(before.items()):
        now = sorted(after.get(name_key, []), key=_version_order)
        if len(was) != 1 or len(now) < 2 or was[0] not in now:
            continue
        key = (name_key[0], name_key[1], was[0])
        change = Change("name_ambiguous", f"`{name_key[1]}` now has versions {', '.join(_v(v) for v in now)}: "
                        f"consumers that wait on `{name_key[1]}` without a version must name "
                        f"`{task_id_for_node(old[key])}`")
        current = impacts.get(key)
        if current is None:
            impacts[key] = _impact(new[key], [change], base_node=old[key])
        else:
            impacts[key] = replace(current, changes=tuple(sorted((*current.changes, change),
                                                                 key=lambda c: _ORDER[c.kind])))


# --------------------------------------------------------------------------------------
# Consumers
# --------------------------------------------------------------------------------------

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


# --------------------------------------------------------------------------------------
# Exit code
# --------------------------------------------------------------------------------------

FAIL_ON = ("never", "breaking", "any")


def exit_code(report: Report, fail_on: str) -> int:
    """1 when --fail-on's condition holds: ``breaking`` — a breaking change reaches a consumer;
    ``any`` — any change reaches a consumer. Without a registry every public model counts as consumed."""
    if fail_on == "never":
        return 0
    if fail_on == "breaking":
        return 1 if report.breaking_changes else 0
    if fail_on == "any":
        return 1 if report.cross_domain_impact else 0
    raise ValueError(f"unknown fail_on {fail_on!r}")


# --------------------------------------------------------------------------------------
# Rendering
# --------------------------------------------------------------------------------------

def summary_line(report: Report) -> str:
    """The report's first line."""
    if not report.models:
        return f"handoff impact ({report.domain}): no cross-domain impact — no model, seed or snapshot changed"
    if not report.cross_domain_impact:
        why = ("none is used by another domain" if report.consumers_checked
               else "none was visible to other domains")
        return (f"handoff impact ({report.domain}): no cross-domain impact — "
                f"{_count(len(report.models), 'changed node')}, {why}")
    if not report.consumers_checked:
        breaking = (_count(report.breaking_changes, "breaking change") if report.breaking_changes
                    else "No breaking changes")
        return (f"{breaking} in {_count(len(report.reaching), 'changed public model')}; "
                "consumers not checked (run with --registry)")
    teams = report.teams()
    channels = ", ".join(t.slack for t in teams)
    if report.breaking_changes:
        hit = [t for t in teams if t.breaking]
        line = (f"{_count(report.breaking_changes, 'breaking change')} "
                f"affect{'s' if report.breaking_changes == 1 else ''} "
                f"{_count(len(hit), 'team')}: {', '.join(t.slack for t in hit)}")
        others = [t for t in teams if not t.breaking]
        if others:
            line += f" (non-breaking changes also reach {', '.join(t.slack for t in others)})"
        return line
    changes = sum(len(m.changes) for m in report.consumed)
    return f"No breaking changes; {_count(changes, 'change')} reach{'es' if changes == 1 else ''} " \
           f"{_count(len(teams), 'team')}: {channels}"


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}{'' if n == 1 else 's'}"


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def render_markdown(report: Report) -> str:
    """Markdown for a PR body: summary first, then who to talk to, then the changes per model."""
    if not report.cross_domain_impact:
        return summary_line(report) + "\n"
    out = [f"**{summary_line(report)}**", ""]
    teams = report.teams()
    if teams:
        out += ["| talk to | owner | domain | because of |", "|---|---|---|---|"]
        for team in teams:
            flag = "🔴 " if team.breaking else "🟡 "
            out.append(f"| {flag}**{team.slack}** | {', '.join(team.owners)} | {', '.join(team.domains)} | "
                       f"{', '.join(f'`{m}`' + (' (indirect)' if m in team.indirect else '') for m in team.models)} |")
        out.append("")

    shown = list(report.reaching)
    for model in sorted(shown, key=lambda m: (not m.breaking, m.name, _version_order(m.version))):
        out += _model_section(model, report.consumers_checked)

    quiet_public = [m for m in report.models if m not in shown and m.public]
    if quiet_public:
        out += ["<details><summary>" + _count(len(quiet_public), "public node") +
                " changed, no consumer in another domain yet</summary>", "",
                "| model | change | breaking for a consumer? |", "|---|---|---|"]
        for model in quiet_public:
            for change in model.changes:
                out.append(f"| `{model.label}` | {_cell(change.detail)} | {'yes' if change.breaking else 'no'} |")
        out += ["", "</details>", ""]
    internal = [m for m in report.models if m not in shown and not m.public]
    if internal:
        out += ["<details><summary>" + _count(len(internal), "internal change") +
                " (not public: no other domain can depend on them)</summary>", "",
                "| node | access | changes |", "|---|---|---|"]
        for model in internal:
            access = model.access_head or model.access_base or model.resource_type
            out.append(f"| `{model.label}` | {access} | {_cell('; '.join(c.detail for c in model.changes))} |")
        out += ["", "</details>", ""]
    return "\n".join(out).rstrip("\n") + "\n"


def _model_section(model: ModelImpact, consumers_checked: bool) -> list[str]:
    state = "breaking" if model.breaking else "non-breaking"
    icon = "🔴" if model.breaking else "🟡"
    access = model.access_base if model.lookup_name is not None else model.access_head
    out = [f"#### {icon} `{model.label}` — {state} ({access or model.resource_type})", "",
           "| change | breaking? |", "|---|---|"]
    for change in model.changes:
        verdict = "**yes**" if change.breaking and model.exposed else "no"
        out.append(f"| {_cell(change.detail)} | {verdict} |")
    out.append("")
    if not consumers_checked:
        return out + ["Consumers: not checked (no --registry).", ""]
    out += ["| consumer domain | owner | Slack | tasks | how |", "|---|---|---|---|---|"]
    for (domain, owner, slack, how), tasks in _consumer_rows(model.consumers or ()):
        out.append(f"| {domain} | {owner} | {slack} | {_cell(tasks)} | {_cell(how)} |")
    out.append("")
    return out


def _consumer_rows(consumers: Iterable[Consumer]) -> list[tuple[tuple[str, str, str, str], str]]:
    """Consumers grouped by team and by how they depend on the model; tasks listed per DAG."""
    groups: dict[tuple[int, int, str, str, str, str], dict[str, list[str]]] = {}
    for c in consumers:
        if c.depth > 1:
            how, rank = "through " + " → ".join(f"`{v}`" for v in c.via[1:]), 2
        elif c.direct:
            how, rank = "reads it", 0
        else:
            how, rank = "downstream of a reader", 1
        groups.setdefault((c.depth, rank, c.domain, c.owner, c.slack, how), {}).setdefault(c.dag_id, []).append(
            c.task_id)
    rows = []
    for (_, _, domain, owner, slack, how), dags in sorted(groups.items()):
        tasks = "; ".join(f"`{dag}`: " + ", ".join(f"`{t}`" for t in sorted(ids)) for dag, ids in sorted(dags.items()))
        rows.append(((domain, owner, slack, how), tasks))
    return rows


def to_json(report: Report) -> dict[str, Any]:
    """The report as JSON-ready data (stable keys, no timestamps or paths)."""
    return {
        "impact_version": IMPACT_VERSION,
        "domain": report.domain,
        "project": report.project,
        "summary": summary_line(report),
        "consumers_checked": report.consumers_checked,
        "cross_domain_impact": report.cross_domain_impact,
        "breaking_changes": report.breaking_changes,
        "teams": [{"slack": t.slack, "owners": list(t.owners), "domains": list(t.domains),
                   "models": list(t.models), "indirect": list(t.indirect), "breaking": t.breaking}
                  for t in report.teams()],
        "models": [_model_json(m) for m in report.models],
    }


def _model_json(model: ModelImpact) -> dict[str, Any]:
    return {
        "resource_type": model.resource_type,
        "name": model.name,
        "version": model.version,
        "unique_id": model.unique_id,
        "task_id": model.task_id,
        "known_as": model.lookup_name,
        "access": {"base": model.access_base, "head": model.access_head},
        "public": model.public,
        "breaking": model.breaking,
        "changes": [{"kind": c.kind, "breaking": c.breaking and model.exposed, "breaking_class": c.breaking,
                     "detail": c.detail} for c in model.changes],
        "consumers": None if model.consumers is None else [
            {"domain": c.domain, "dag_id": c.dag_id, "task_id": c.task_id, "model": c.model, "owner": c.owner,
             "slack": c.slack, "depth": c.depth, "direct": c.direct, "via": list(c.via)} for c in model.consumers],
    }


def dumps_json(report: Report) -> str:
    return json.dumps(to_json(report), indent=2, ensure_ascii=False) + "\n"


def classes_table() -> Sequence[tuple[str, str, str]]:
    """(kind, breaking, meaning) rows, for docs/impact.md."""
    return [(c.kind, "yes" if c.breaking else "no", c.meaning) for c in CLASSES]
