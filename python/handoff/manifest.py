"""Reads a dbt manifest.json into small frozen objects holding only what handoff needs."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .errors import HandoffError

SUPPORTED_SCHEMA_VERSIONS = (10, 11, 12)
EXECUTABLE_TYPES = ("model", "seed", "snapshot")
_PROJECT_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,127}")
_SCHEMA_VERSION = re.compile(r"[^\s]*/manifest/v([0-9]{1,4})\.json")


@dataclass(frozen=True)
class Column:
    name: str
    data_type: str | None


@dataclass(frozen=True)
class Ref:
    """One ``ref()`` of a node as dbt recorded it (``refs``): ``package`` is None for a one-argument
    ref, ``version`` None when no ``v=`` was given."""

    name: str
    package: str | None = None
    version: str | None = None


@dataclass(frozen=True)
class Node:
    """A model, seed, snapshot or test."""

    unique_id: str
    resource_type: str
    name: str
    package_name: str
    original_file_path: str
    depends_on: tuple[str, ...]
    meta: Mapping[str, Any]
    materialized: str | None = None
    access: str | None = None
    group: str | None = None
    relation_name: str | None = None
    version: str | None = None
    columns: tuple[Column, ...] = ()
    contract_enforced: bool = False
    checksum: str | None = None
    description: str = ""
    attached_node: str | None = None
    enabled: bool = True
    latest_version: str | None = None
    deprecation_date: str | None = None
    unrendered_config: Mapping[str, Any] = field(default_factory=dict)
    compiled_code: str | None = None  # only after `dbt compile` / `dbt build` (not `dbt parse`)
    refs: tuple[Ref, ...] = ()
    # dbt's external node (``ModelNode.is_external_node``: no original_file_path and no path): another
    # project's model injected by a plugin such as dbt-loom, or by dbt Cloud. None: the manifest lacks
    # those fields, so it cannot tell (handoff.cross_project).
    external: bool | None = False
    tags: tuple[str, ...] = ()
    hook_index: int | None = None  # a project hook's position in its project's on-run-start/-end list
    incremental_strategy: str | None = None

    @property
    def is_ephemeral(self) -> bool:
        return self.materialized == "ephemeral"

    @property
    def is_microbatch(self) -> bool:
        """An incremental model built in event-time batches (dbt's microbatch strategy)."""
        return self.materialized == "incremental" and self.incremental_strategy == "microbatch"


@dataclass(frozen=True)
class Source:
    """A source table; ``meta`` is the table's own meta, ``source_meta`` its source's."""

    unique_id: str
    source_name: str
    name: str
    package_name: str
    original_file_path: str
    meta: Mapping[str, Any]
    source_meta: Mapping[str, Any]
    relation_name: str | None = None
    columns: tuple[Column, ...] = ()  # documented in the source's YAML


@dataclass(frozen=True)
class UnitTest:
    """A dbt unit test (dbt 1.8+): ``model`` is the unique_id of the model it tests."""

    unique_id: str
    name: str
    package_name: str
    model: str | None


@dataclass(frozen=True)
class Group:
    name: str
    owner_name: str | None
    owner_email: str | None


@dataclass(frozen=True)
class Manifest:
    path: str
    schema_version: int
    dbt_version: str
    project_name: str
    sha256: str
    nodes: Mapping[str, Node]
    sources: Mapping[str, Source]
    groups: Mapping[str, Group] = field(default_factory=dict)
    adapter_type: str | None = None  # metadata.adapter_type: the SQL dialect of compiled_code
    unit_tests: Mapping[str, UnitTest] = field(default_factory=dict)
    disabled: frozenset[str] = frozenset()  # unique ids of the disabled nodes (manifest "disabled")
    invocation_id: str | None = None  # metadata.invocation_id: the dbt command that wrote it

    def own_nodes(self, *resource_types: str) -> list[Node]:
        """Nodes of the root project (not of installed packages), sorted by unique_id."""
        types = resource_types or EXECUTABLE_TYPES
        return sorted(
            (n for n in self.nodes.values()
             if n.package_name == self.project_name and n.resource_type in types and n.enabled),
            key=lambda n: n.unique_id,
        )

    def own_sources(self) -> list[Source]:
        return sorted(
            (s for s in self.sources.values() if s.package_name == self.project_name),
            key=lambda s: s.unique_id,
        )


def load_manifest(path: str | Path) -> Manifest:
    """Read and check a manifest.json; any problem is a one-line HandoffError naming the file."""
    from .files import read_json_bytes

    path = Path(path)
    data, raw = read_json_bytes(path, what="file", allow_nan=True,
                                hint="run `dbt parse` in the project and pass its target/manifest.json")
    return parse_manifest(data, source=str(path), sha256=hashlib.sha256(raw).hexdigest())


def parse_manifest(data: Any, *, source: str, sha256: str = "") -> Manifest:
    """Build a Manifest from already decoded JSON."""
    if not isinstance(data, dict):
        raise HandoffError("a manifest is a JSON object", where=source, hint="pass dbt's target/manifest.json")
    metadata = _mapping(data, "metadata", source)
    version_url = metadata.get("dbt_schema_version")
    match = _SCHEMA_VERSION.fullmatch(version_url) if isinstance(version_url, str) else None
    if not match:
        raise HandoffError(f"metadata.dbt_schema_version is {version_url!r}, not a dbt manifest schema URL",
                           where=source, hint="pass dbt's target/manifest.json")
    schema_version = int(match.group(1))
    if schema_version not in SUPPORTED_SCHEMA_VERSIONS:
        raise HandoffError(
            f"manifest schema v{schema_version} is not supported (supported: "
            f"v{SUPPORTED_SCHEMA_VERSIONS[0]}-v{SUPPORTED_SCHEMA_VERSIONS[-1]})",
            where=source, hint="parse the project with dbt-core 1.6-1.11")
    raw_nodes = _mapping(data, "nodes", source)
    raw_sources = _mapping(data, "sources", source)
    project_name = metadata.get("project_name")
    if not isinstance(project_name, str) or not project_name:
        project_name = _infer_project_name(raw_nodes)
        if project_name is None:
            raise HandoffError("metadata.project_name is missing", where=source,
                               hint="re-run `dbt parse` with dbt-core >= 1.6")
    if not _PROJECT_NAME.fullmatch(project_name):  # it names a folder on the workers: dbt's own rule
        raise HandoffError(f"metadata.project_name {project_name!r} is not a dbt project name", where=source,
                           hint="dbt project names hold letters, digits and '_'; re-run `dbt parse`")
    nodes = {uid: _node(uid, raw, source) for uid, raw in raw_nodes.items()}
    sources = {uid: _source(uid, raw, source) for uid, raw in raw_sources.items()}
    groups = {}
    raw_groups = data.get("groups") or {}
    if not isinstance(raw_groups, dict):
        raise HandoffError(f"'groups' is a {type(raw_groups).__name__}, not an object", where=source,
                           hint="the file is not a dbt manifest; re-run `dbt parse`")
    for uid, raw in raw_groups.items():
        if isinstance(raw, dict):
            owner = raw.get("owner") or {}
            groups[str(raw.get("name") or uid.split(".")[-1])] = Group(
                name=str(raw.get("name") or uid.split(".")[-1]),
                owner_name=owner.get("name") if isinstance(owner, dict) else None,
                owner_email=owner.get("email") if isinstance(owner, dict) else None,
            )
    return Manifest(
        path=source,
        schema_version=schema_version,
        dbt_version=str(metadata.get("dbt_version", "")),
        project_name=project_name,
        sha256=sha256,
        nodes=nodes,
        sources=sources,
        groups=groups,
        adapter_type=metadata.get("adapter_type") if isinstance(metadata.get("adapter_type"), str) else None,
        unit_tests=_unit_tests(data.get("unit_tests"), source),
        disabled=frozenset(str(uid) for uid in (data.get("disabled") or {})),
        invocation_id=metadata.get("invocation_id") if isinstance(metadata.get("invocation_id"), str) else None,
    )


def _unit_tests(raw: Any, source: str) -> dict[str, UnitTest]:
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        raise HandoffError("'unit_tests' is not an object", where=source, hint="re-run `dbt parse`")
    found = {}
    for uid, entry in raw.items():
        if not isinstance(entry, dict):
            raise HandoffError(f"unit test {uid} is not an object", where=source, hint="re-run `dbt parse`")
        depends = entry.get("depends_on") or {}
        models = depends.get("nodes") if isinstance(depends, dict) else None
        if not isinstance(models, list) or not all(isinstance(m, str) for m in models):
            raise HandoffError(f"unit test {uid}: depends_on.nodes is not a list of ids", where=source,
                               hint="re-run `dbt parse`")
        tested = [m for m in models if m.startswith("model.")]
        found[str(uid)] = UnitTest(
            unique_id=str(uid),
            name=_field(entry, "name", str, uid, source),
            package_name=_field(entry, "package_name", str, uid, source),
            model=tested[0] if tested else None,
        )
    return found


def _mapping(data: dict[str, Any], key: str, source: str) -> dict[str, Any]:
    value = data.get(key)
    if not isinstance(value, dict):
        state = "missing" if key not in data else f"a {type(value).__name__}, not an object"
        raise HandoffError(f"'{key}' is {state}", where=source,
                           hint="the file is not a complete dbt manifest; re-run `dbt parse`")
    return value


def _infer_project_name(raw_nodes: dict[str, Any]) -> str | None:
    names = {str(uid).split(".")[1] for uid in raw_nodes if str(uid).count(".") >= 2}
    return names.pop() if len(names) == 1 else None


def _field(raw: dict[str, Any], key: str, kind: type, uid: str, source: str, default: Any = ...) -> Any:
    value = raw.get(key, default)
    if value is ...:
        raise HandoffError(f"node {uid} has no '{key}'", where=source, hint="re-run `dbt parse`")
    if value is not None and not isinstance(value, kind):
        raise HandoffError(f"node {uid}: '{key}' is a {type(value).__name__}, expected {kind.__name__}",
                           where=source, hint="re-run `dbt parse`")
    return value


def _config_meta(raw: dict[str, Any], uid: str, source: str) -> dict[str, Any]:
    config = raw.get("config") or {}
    if not isinstance(config, dict):
        raise HandoffError(f"node {uid}: 'config' is not an object", where=source, hint="re-run `dbt parse`")
    meta = config.get("meta")
    if meta is None:
        meta = raw.get("meta") or {}
    if not isinstance(meta, dict):
        raise HandoffError(f"node {uid}: 'config.meta' is not an object", where=source, hint="re-run `dbt parse`")
    return meta


def _object(value: Any) -> dict[str, Any]:
    """``value`` when it is a JSON object, else an empty one (an optional object dbt may leave out)."""
    return value if isinstance(value, dict) else {}


def _node(uid: str, raw: Any, source: str) -> Node:
    if not isinstance(raw, dict):
        raise HandoffError(f"node {uid} is not an object", where=source, hint="re-run `dbt parse`")
    depends = raw.get("depends_on") or {}
    dep_nodes = depends.get("nodes", []) if isinstance(depends, dict) else None
    if not isinstance(dep_nodes, list) or not all(isinstance(d, str) for d in dep_nodes):
        raise HandoffError(f"node {uid}: depends_on.nodes is not a list of ids", where=source,
                           hint="re-run `dbt parse`")
    config = _object(raw.get("config"))
    columns = raw.get("columns") or {}
    contract = config.get("contract") or raw.get("contract") or {}
    checksum = raw.get("checksum") or {}
    version = raw.get("version")
    return Node(
        unique_id=uid,
        resource_type=_field(raw, "resource_type", str, uid, source),
        name=_field(raw, "name", str, uid, source),
        package_name=_field(raw, "package_name", str, uid, source),
        original_file_path=_field(raw, "original_file_path", str, uid, source, ""),
        depends_on=tuple(dep_nodes),
        meta=_config_meta(raw, uid, source),
        materialized=config.get("materialized"),
        access=raw.get("access") or config.get("access"),  # seeds: only config.access (dbt 1.11); checked by HO210
        group=raw.get("group") or config.get("group"),
        relation_name=raw.get("relation_name"),
        version=None if version is None else str(version),
        columns=_columns(columns),
        contract_enforced=bool(isinstance(contract, dict) and contract.get("enforced")),
        checksum=checksum.get("checksum") if isinstance(checksum, dict) else None,
        description=str(raw.get("description") or ""),
        attached_node=raw.get("attached_node"),
        enabled=bool(config.get("enabled", True)),
        latest_version=None if raw.get("latest_version") is None else str(raw["latest_version"]),
        deprecation_date=None if raw.get("deprecation_date") is None else str(raw["deprecation_date"]),
        unrendered_config=_object(raw.get("unrendered_config")),
        compiled_code=_optional_text(raw, "compiled_code", uid, source),
        refs=_refs(raw.get("refs"), uid, source),
        external=_external(raw),
        tags=tuple(t for t in raw["tags"] if isinstance(t, str)) if isinstance(raw.get("tags"), list) else (),
        hook_index=_int_or_none(raw.get("index")),
        incremental_strategy=config.get("incremental_strategy") if isinstance(
            config.get("incremental_strategy"), str) else None,
    )


def _optional_text(raw: dict[str, Any], key: str, uid: str, source: str) -> str | None:
    value = raw.get(key)
    if value is None or isinstance(value, str):
        return value
    raise HandoffError(f"node {uid}: {key} is a {type(value).__name__}, not text", where=source,
                       hint="re-run `dbt compile`")


def _int_or_none(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _external(raw: dict[str, Any]) -> bool | None:
    file, path = raw.get("original_file_path"), raw.get("path")
    if not isinstance(file, str) or not isinstance(path, str):
        return None
    return file == "" and path == ""


def _refs(raw: Any, uid: str, source: str) -> tuple[Ref, ...]:
    """``refs`` of a v10-v12 manifest: a list of {name, package, version}."""
    if raw is None:
        return ()
    if not isinstance(raw, list) or not all(isinstance(r, dict) and isinstance(r.get("name"), str) for r in raw):
        raise HandoffError(f"node {uid}: 'refs' is not a list of {{name, package, version}}", where=source,
                           hint="re-run `dbt parse`")
    found = []
    for r in raw:
        package, version = r.get("package"), r.get("version")
        if package is not None and not isinstance(package, str):
            raise HandoffError(f"node {uid}: a ref's package is a {type(package).__name__}", where=source,
                               hint="re-run `dbt parse`")
        if version is not None and (isinstance(version, bool) or not isinstance(version, (str, int, float))):
            raise HandoffError(f"node {uid}: a ref's version is a {type(version).__name__}", where=source,
                               hint="re-run `dbt parse`")
        found.append(Ref(r["name"], package, None if version is None else str(version)))
    return tuple(found)


def _columns(columns: Any) -> tuple[Column, ...]:
    if not isinstance(columns, dict):
        return ()
    return tuple(Column(name=str(c.get("name", key)),
                        data_type=c["data_type"] if isinstance(c.get("data_type"), str) else None)
                 for key, c in columns.items() if isinstance(c, dict))


def _source(uid: str, raw: Any, source: str) -> Source:
    if not isinstance(raw, dict):
        raise HandoffError(f"source {uid} is not an object", where=source, hint="re-run `dbt parse`")
    own_meta = raw.get("meta") or {}
    if not isinstance(own_meta, dict):
        raise HandoffError(f"source {uid}: 'meta' is a {type(own_meta).__name__}, not an object", where=source,
                           hint="re-run `dbt parse`")
    meta = dict(own_meta)
    config = _object(raw.get("config"))
    if isinstance(config.get("meta"), dict):
        meta = {**config["meta"], **meta}
    source_meta = raw.get("source_meta") or {}
    if not isinstance(source_meta, dict):
        raise HandoffError(f"source {uid}: 'source_meta' is not an object", where=source, hint="re-run `dbt parse`")
    return Source(
        unique_id=uid,
        source_name=_field(raw, "source_name", str, uid, source),
        name=_field(raw, "name", str, uid, source),
        package_name=_field(raw, "package_name", str, uid, source),
        original_file_path=_field(raw, "original_file_path", str, uid, source, ""),
        meta=meta,
        source_meta=source_meta,
        relation_name=raw.get("relation_name"),
        columns=_columns(raw.get("columns")),
    )
