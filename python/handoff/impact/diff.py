"""Comparing two manifests of one domain: every added, removed and changed model, seed and snapshot,
each change classified (``classes.CLASSES``). Pure: manifests in, a ``Report`` out."""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import replace
from typing import Any

from ..columns import Catalog, ColumnList, ColumnResolver
from ..convention import Resolved, resolve
from ..errors import HandoffError
from ..manifest import Manifest, Node
from ..plan import task_id_for_node
from .classes import ORDER
from .column_changes import Sides, column_changes, documented
from .report import Change, ModelImpact, Report, version_order

RESOURCE_TYPES = ("model", "seed", "snapshot")

# unrendered_config keys compared by other classes (or irrelevant to consumers), not by config_changed
_CONFIG_IGNORED = frozenset({"meta", "access", "contract", "docs", "group", "enabled", "description",
                             "deprecation_date", "latest_version", "database", "schema", "alias"})


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


def diff_manifests(base: Manifest, head: Manifest, *, base_catalog: Catalog | None = None,
                   head_catalog: Catalog | None = None, deployed: Mapping[str, ColumnList] | None = None) -> Report:
    """Classify every added, removed and changed model, seed and snapshot of one domain (pure).

    Columns (``handoff.columns``) come from each side's catalog when given, else contracts, else the
    compiled SQL; ``deployed`` (task id -> ColumnList, from the registry) stands in for a base model
    whose columns the base manifest cannot tell.
    """
    base_resolved, head_resolved = resolve(base), resolve(head)
    domain = check_comparable(base, head, base_resolved, head_resolved)
    sides = Sides(ColumnResolver(base, base_catalog), ColumnResolver(head, head_catalog), deployed or {})
    old, new = _nodes(base), _nodes(head)
    old_sla, new_sla = _available_by(base_resolved), _available_by(head_resolved)
    impacts: dict[_Key, ModelImpact] = {}

    gone = [k for k in old if k not in new]
    came = [k for k in new if k not in old]
    old_names = {(k[0], k[1]) for k in old}
    new_names = {(k[0], k[1]) for k in new}
    renames = _pair_renames(
        [k for k in gone if (k[0], k[1]) not in new_names], [k for k in came if (k[0], k[1]) not in old_names],
        old, new, sides)

    for key in gone:
        node = old[key]
        if key in renames:
            target_key, evidence = renames[key]
            target = new[target_key]
            changes = [Change("renamed", f"{evidence}; consumers must follow the new name")]
            changes += _compare(node, target, old_sla.get(node.unique_id), new_sla.get(target.unique_id), sides)
            impacts[key] = _impact(target, changes, base_node=node)
            continue
        siblings = sorted((k[2] for k in new if (k[0], k[1]) == (key[0], key[1])), key=version_order)
        if siblings:
            remaining = ", ".join(_v(v) for v in siblings)
            plural = "s" if len(siblings) > 1 else ""
            detail = (f"unversioned `{node.name}` replaced by version{plural} {remaining}" if key[2] is None
                      else f"version {_v(key[2])} removed ({remaining} remain{'s' if len(siblings) == 1 else ''})")
            impacts[key] = _impact(None, [Change("version_removed", detail)], base_node=node)
        else:
            impacts[key] = _impact(None, [Change("removed", f"{node.resource_type} removed")], base_node=node)

    paired = {target for target, _ in renames.values()}
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
        changes = _compare(old[key], new[key], old_sla.get(old[key].unique_id), new_sla.get(new[key].unique_id),
                           sides)
        if changes:
            impacts[key] = _impact(new[key], changes, base_node=old[key])

    _latest_version_changes(old, new, impacts)
    for key, impact in impacts.items():
        if key[0] == "model":
            was, now = old.get(key), new.get(key) if key in new else None
            if key in renames:
                now = new[renames[key][0]]
            impacts[key] = replace(impact, columns_from=(
                sides.before(was).source if was is not None else None,
                sides.after(now).source if now is not None else None))
    models = sorted(impacts.values(), key=lambda m: (m.resource_type != "model", m.name, version_order(m.version)))
    return Report(domain=domain, project=head.project_name, models=tuple(models))


def _nodes(manifest: Manifest) -> dict[_Key, Node]:
    return {(n.resource_type, n.name, n.version): n for n in manifest.own_nodes(*RESOURCE_TYPES)}


def _available_by(resolved: Resolved) -> dict[str, str | None]:
    return {uid: s.available_by for uid, s in resolved.nodes.items()}


def _impact(node: Node | None, changes: list[Change], base_node: Node | None = None) -> ModelImpact:
    shown = node or base_node
    if shown is None:
        raise ValueError("an impact needs the base or the head node")
    return ModelImpact(
        resource_type=shown.resource_type,
        name=shown.name,
        version=shown.version,
        unique_id=shown.unique_id,
        task_id=task_id_for_node(base_node or shown),
        access_base=_access(base_node),
        access_head=_access(node),
        changes=tuple(sorted(changes, key=lambda c: ORDER[c.kind])),
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


def _key_order(key: _Key) -> tuple[str, str, tuple[int, float, str]]:
    return (key[0], key[1], version_order(key[2]))


def _pair_renames(gone: list[_Key], came: list[_Key], old: Mapping[_Key, Node], new: Mapping[_Key, Node],
                  sides: Sides) -> dict[_Key, tuple[_Key, str]]:
    """Removed -> (added, evidence) pairs, each pair unique: the same type, version, checksum and documented
    columns (a certain rename); else, for models, the same real columns and the same inputs (a likely
    rename that also edited the SQL)."""
    def certain(node: Node) -> tuple[Any, ...] | None:
        if not node.checksum:
            return None
        return (node.resource_type, node.version, node.checksum, tuple(sorted(documented(node).items())))

    def likely(node: Node, columns: ColumnList) -> tuple[Any, ...] | None:
        if node.resource_type != "model" or not columns.known or not columns.columns:
            return None
        return (node.version, tuple(sorted(columns.names())), tuple(sorted(node.depends_on)))

    found: dict[_Key, tuple[_Key, str]] = {}
    for pair in _unique_pairs(gone, came, lambda k: certain(old[k]), lambda k: certain(new[k])):
        found[pair[0]] = (pair[1], f"renamed `{old[pair[0]].name}` → `{new[pair[1]].name}` (same SQL and columns)")
    rest_gone = [k for k in gone if k not in found]
    rest_came = [k for k in came if k not in {v[0] for v in found.values()}]
    for was, now in _unique_pairs(rest_gone, rest_came, lambda k: likely(old[k], sides.before(old[k])),
                                  lambda k: likely(new[k], sides.after(new[k]))):
        columns = sides.after(new[now]).names()
        inputs = sorted(d.split(".")[-1] for d in new[now].depends_on)
        shown = ", ".join(f"`{c}`" for c in columns[:6]) + (", …" if len(columns) > 6 else "")
        found[was] = (now, f"likely rename of `{old[was].name}` → `{new[now].name}`: same {len(columns)} columns "
                           f"({shown}) and same inputs ({', '.join(f'`{i}`' for i in inputs) or 'none'}); "
                           "SQL edited")
    return found


def _unique_pairs(gone: list[_Key], came: list[_Key], old_sig: Callable[[_Key], Any],
                  new_sig: Callable[[_Key], Any]) -> list[tuple[_Key, _Key]]:
    by_old: dict[Any, list[_Key]] = {}
    by_new: dict[Any, list[_Key]] = {}
    for key in gone:
        sig = old_sig(key)
        if sig is not None:
            by_old.setdefault(sig, []).append(key)
    for key in came:
        sig = new_sig(key)
        if sig is not None:
            by_new.setdefault(sig, []).append(key)
    return [(keys[0], by_new[sig][0]) for sig, keys in by_old.items()
            if len(keys) == 1 and len(by_new.get(sig, ())) == 1]


def _compare(old: Node, new: Node, old_sla: str | None, new_sla: str | None, sides: Sides) -> list[Change]:
    """Changes between two nodes that are the same model (or a rename of it)."""
    changes = _access_changes(old, new)
    if old.contract_enforced and not new.contract_enforced:
        changes.append(Change("contract_removed", "contract no longer enforced"))
    elif new.contract_enforced and not old.contract_enforced:
        changes.append(Change("contract_added", "contract now enforced"))
    changes += _relation_changes(old, new)
    changes += column_changes(old, new, sides)
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
        if not any(c.kind == "columns_unknown" for c in changes):
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
        # columns of each: not `before`/`after`, which the loop still reads for the next model
        was_columns, now_columns = documented(was), documented(now)
        dropped = [c for c in was_columns if c not in now_columns]
        retyped = [c for c, t in was_columns.items()
                   if c in now_columns and t and now_columns[c] and t != now_columns[c]]
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
                                                                 key=lambda c: ORDER[c.kind])))
