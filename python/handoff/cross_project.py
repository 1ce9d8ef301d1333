"""Cross-project refs (dbt Mesh): another dbt project's models read with ``ref('project', 'model')``.

In dbt Core the dbt-loom plugin, in dbt Cloud the platform itself, injects the other project's
models into this project's manifest, so that a two-argument ``ref()`` resolves. handoff turns each
such ref into an upstream ``(domain, model key)`` exactly like a source marked ``handoff_upstream``
(docs/mesh.md): one sensor per upstream model, shared by its readers.

**Which nodes are another project's** (the rule, dbt's own ``ModelNode.is_external_node``): a node
of another package whose ``original_file_path`` and ``path`` are both empty. Injected nodes have no
file; a model of an installed package (dbt_utils, a ``local:`` package) always has one. When the
manifest cannot tell — those fields are missing, or one package has nodes of both kinds (installed
*and* injected) — reading a ref into it is a one-line ``HandoffError`` naming the ref.

Pure: the project -> domain mapping (the registry's binding of domains to dbt projects) is passed in.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass

from .convention import DEFAULT_WAIT, Upstream, Violation, seconds
from .errors import HandoffError
from .manifest import Manifest, Node

RULE = "HO207"
READER_TYPES = ("model", "snapshot")  # the own nodes that can hold a ref() and become (or feed) a task


def model_key(name: str, version: str | None) -> str:
    """The model key of a node (docs/plan.md): its name, or ``<name>_v<version>`` for one version."""
    return name if version is None else f"{name}_v{version}"


@dataclass(frozen=True)
class CrossProjectRef:
    """One ``ref('project', 'name'[, v=N])`` of an own node to another project's model."""

    reader: str  # unique_id of the own node holding the ref
    file: str  # its original_file_path
    project: str
    name: str
    version: str | None  # the pinned version; None for an unpinned ref
    target: str  # unique_id of the injected node the ref resolved to in this manifest

    @property
    def model_key(self) -> str:
        """The upstream model key its sensor waits on: ``<name>_v<N>`` when pinned, else the bare name,
        which the registry resolves to the model's latest version (as an unpinned ref does)."""
        return model_key(self.name, self.version)

    @property
    def upstream_id(self) -> str:
        """The id the compiler gives this upstream (like a source's unique_id): one per (project, key)."""
        return f"ref:{self.project}.{self.model_key}"

    def call(self) -> str:
        """The ref as the reader wrote it, e.g. ``ref('shipping', 'shipments', v=1)``."""
        pinned = f", v={self.version}" if self.version is not None else ""
        return f"ref('{self.project}', '{self.name}'{pinned})"


def find_refs(manifest: Manifest) -> list[CrossProjectRef]:
    """Every cross-project ref of the project's own models and snapshots, sorted by reader and ref.

    Raises a one-line HandoffError naming the ref when the manifest cannot tell whether its package
    is another project, or when the ref does not resolve the way dbt resolved it (a stale manifest).
    """
    by_name: dict[tuple[str, str], list[Node]] = defaultdict(list)
    kinds: dict[str, set[bool | None]] = defaultdict(set)
    for node in manifest.nodes.values():
        if node.package_name != manifest.project_name:
            by_name[(node.package_name, node.name)].append(node)
            kinds[node.package_name].add(node.external)
    found: set[CrossProjectRef] = set()
    for reader in manifest.own_nodes(*READER_TYPES):
        for ref in reader.refs:
            if ref.package is None or ref.package == manifest.project_name:
                continue
            candidates = by_name.get((ref.package, ref.name), [])
            shown = CrossProjectRef(reader.unique_id, reader.original_file_path, ref.package, ref.name,
                                    ref.version, "").call()
            where = f"{reader.unique_id} ({reader.original_file_path})"
            package_kinds = kinds.get(ref.package, set())
            if None in package_kinds:
                raise HandoffError(
                    f"{where}: {shown}: the manifest does not say whether '{ref.package}' is another dbt project "
                    "(its nodes lack original_file_path/path)", where=manifest.path,
                    hint="pass the manifest.json dbt wrote (`dbt parse`), not a trimmed copy")
            if package_kinds == {True, False}:
                raise HandoffError(
                    f"{where}: {shown}: '{ref.package}' is both an installed package (nodes with files) and "
                    "another project injected by dbt-loom or dbt Cloud (nodes without): handoff cannot tell "
                    "which this ref reads", where=manifest.path,
                    hint=f"exclude '{ref.package}' from dbt-loom (excluded_packages in dbt_loom.config.yml) or "
                         "remove it from packages.yml, then re-run `dbt parse`")
            if package_kinds != {True}:
                continue  # an installed package's model (dbt_utils-like): not another team's
            target = _resolve(candidates, ref.version)
            if target is None or target.unique_id not in reader.depends_on:
                raise HandoffError(
                    f"{where}: {shown} does not resolve to a node it depends on in this manifest",
                    where=manifest.path, hint="the manifest is stale or edited; re-run `dbt parse`")
            found.add(CrossProjectRef(reader.unique_id, reader.original_file_path, ref.package, ref.name,
                                      ref.version, target.unique_id))
    return sorted(found, key=lambda r: (r.reader, r.project, r.name, r.version or ""))


def _resolve(candidates: list[Node], version: str | None) -> Node | None:
    """dbt's resolution: a pinned version; else the latest version of a versioned model; else the model."""
    if version is not None:
        pinned = [c for c in candidates if c.version == version]
        return pinned[0] if len(pinned) == 1 else None
    versioned = [c for c in candidates if c.version is not None]
    if versioned:
        latest = [c for c in versioned if c.version == c.latest_version]
        return latest[0] if len(latest) == 1 else None
    return candidates[0] if len(candidates) == 1 else None


# --------------------------------------------------------------------------------------
# How the sensors wait: meta handoff_refs of the readers (rule HO207)
# --------------------------------------------------------------------------------------

Wait = tuple[tuple[str, str], ...]  # sorted (key, value) pairs: timeout, poke_interval, mode


def reader_wait(meta: Mapping[str, object], ref: CrossProjectRef) -> dict[str, str]:
    """The effective wait of ``ref`` for a reader with ``meta`` (docs/mesh.md): the entry of
    ``handoff_refs.upstreams`` keyed ``<project>.<model key>``, else ``<project>.<name>``, replaces
    ``handoff_refs.wait`` as a whole; then the built-in defaults fill the keys left out."""
    refs = meta.get("handoff_refs")
    refs = refs if isinstance(refs, Mapping) else {}
    upstreams = refs.get("upstreams")
    upstreams = upstreams if isinstance(upstreams, Mapping) else {}
    specific = upstreams.get(f"{ref.project}.{ref.model_key}") or upstreams.get(f"{ref.project}.{ref.name}")
    wait = specific.get("wait") if isinstance(specific, Mapping) and "wait" in specific else refs.get("wait")
    return {**DEFAULT_WAIT, **(wait if isinstance(wait, Mapping) else {})}


def _comparable(wait: Mapping[str, str]) -> tuple[int, int, str]:
    return (seconds(wait["timeout"]) or 0, seconds(wait["poke_interval"]) or 0, wait["mode"])


def _describe(wait: Mapping[str, str]) -> str:
    return f"timeout {wait['timeout']}, poke_interval {wait['poke_interval']}, mode {wait['mode']}"


def ref_waits(manifest: Manifest, refs: list[CrossProjectRef], readers: set[str]
              ) -> tuple[dict[str, dict[str, str]], list[Violation]]:
    """The wait of each upstream (by ``upstream_id``) and HO207 for readers that disagree on it.

    ``readers``: the unique ids whose meta passed the schema (others are already reported). One
    sensor serves every reader of an upstream, so they must agree; the first reader (by unique_id)
    sets the wait, every reader differing from it is a violation.
    """
    waits: dict[str, dict[str, str]] = {}
    first: dict[str, str] = {}
    violations: list[Violation] = []
    for ref in refs:  # sorted by reader
        if ref.reader not in readers:
            continue
        wait = reader_wait(manifest.nodes[ref.reader].meta, ref)
        seen = waits.setdefault(ref.upstream_id, wait)
        first.setdefault(ref.upstream_id, ref.reader)
        if _comparable(seen) != _comparable(wait):
            violations.append(Violation(
                RULE, ref.reader, ref.file, "handoff_refs",
                f"the readers of {ref.call()} share one sensor but wait differently: {_describe(wait)} here, "
                f"{_describe(seen)} on {first[ref.upstream_id]}; set handoff_refs once, at project level "
                "(or give this upstream one entry under handoff_refs.upstreams)"))
    return waits, violations


# --------------------------------------------------------------------------------------
# Refs as upstreams (what the compiler needs)
# --------------------------------------------------------------------------------------

@dataclass(frozen=True)
class RefUpstreams:
    """The refs of a manifest as upstreams: ``upstreams`` by upstream id (like sources' unique_ids),
    ``inputs`` (reader, injected node) -> the upstream ids that dependency stands for, and
    ``targets`` upstream id -> the injected nodes it stands for (the sensor's ``refs``)."""

    upstreams: Mapping[str, Upstream]
    inputs: Mapping[tuple[str, str], frozenset[str]]
    targets: Mapping[str, tuple[str, ...]]


def ref_upstreams(refs: list[CrossProjectRef], waits: Mapping[str, Mapping[str, str]],
                  projects: Mapping[str, str] | None, *, where: str, registry: str = "the registry") -> RefUpstreams:
    """Map each ref's project to its domain (``projects``: dbt project -> domain, the registry's binding).

    Raises a one-line HandoffError naming the first ref whose project no domain is bound to (or all
    refs, when no mapping is given at all), saying what to publish first.
    """
    if not refs:
        return RefUpstreams({}, {}, {})
    if projects is None:
        first = refs[0]
        raise HandoffError(
            f"{first.reader} ({first.file}): {first.call()} is a cross-project ref (dbt Mesh){_more(refs, first)}; "
            f"handoff finds the domain behind dbt project '{first.project}' in the registry",
            where=where,
            hint="pass --registry URL (or set HANDOFF_REGISTRY_URL): the registry `handoff publish` writes to")
    unbound = [r for r in refs if r.project not in projects]
    if unbound:
        first = unbound[0]
        others = sorted({r.project for r in unbound} - {first.project})
        also = f" (also unbound: {', '.join(others)})" if others else ""
        raise HandoffError(
            f"{first.reader} ({first.file}): {first.call()} reads dbt project '{first.project}', which no domain "
            f"in {registry} is bound to{also}",
            where=where, hint=f"publish the plan of dbt project '{first.project}' first (`handoff compile` and "
                              "`handoff publish` in that project), then compile this one again")
    upstreams: dict[str, Upstream] = {}
    inputs: dict[tuple[str, str], set[str]] = defaultdict(set)
    targets: dict[str, set[str]] = defaultdict(set)
    for ref in refs:
        wait = waits.get(ref.upstream_id) or DEFAULT_WAIT
        upstreams.setdefault(ref.upstream_id, Upstream(
            source_unique_id=ref.upstream_id, source_name=ref.project, table=ref.name,
            domain=projects[ref.project], model=ref.model_key,
            timeout_s=seconds(wait["timeout"]) or 0, poke_interval_s=seconds(wait["poke_interval"]) or 0,
            mode=wait["mode"], kind="ref"))
        inputs[(ref.reader, ref.target)].add(ref.upstream_id)
        targets[ref.upstream_id].add(ref.target)
    return RefUpstreams(upstreams, {k: frozenset(v) for k, v in inputs.items()},
                        {k: tuple(sorted(v)) for k, v in targets.items()})


def _more(refs: list[CrossProjectRef], first: CrossProjectRef) -> str:
    projects = sorted({r.project for r in refs} - {first.project})
    return f" (and {len(refs) - 1} more ref(s){': projects ' + ', '.join(projects) if projects else ''})" \
        if len(refs) > 1 else ""
