"""The deployed dbt artefact of a domain: dbt's parsed Manifest, stored once at deploy so that a
worker runs any task of the domain without parsing the project and without linking its graph.
(Over 400 lines on purpose: its writer and its reader share one file format, kept in one place.)

Written by `handoff package` (docs/deployment.md) to ``<project>/target/handoff-artifact.sqlite``:
one SQLite file holding

- ``info``: what the artefact was built from (format version, dbt version, the sha256 of the
  ``target/manifest.json`` written by the same parse, the sha256 of ``dbt_project.yml``, and the
  *target identity* — adapter type, database and schema — that dbt baked into relation names);
- ``base``: dbt's Manifest without nodes (macros, groups, selectors, unit-test fixtures,
  metadata), msgpack as dbt writes its own ``partial_parse.msgpack``;
- ``nodes``: one row per node, source, unit test and function: its dbt class, its parents, the
  tests that read it, whether it is ephemeral, a hook, or reads dbt's ``graph`` variable, and
  its msgpack.

A worker opens it read-only and loads a **slice** (``slice_members``): the task's node, the tests
and unit tests that read it, the parents their refs resolve to (through ephemeral models), the
sources they read and (on request) the project's hooks; every macro. No credentials are stored: the profile is
read on the worker at run time. dbt is imported only to write and to load nodes, never to read
``info`` or the index.

The loader is the API batched execution builds on: ``open_artifact(path).load_manifest()`` is
the domain's full Manifest without parsing; ``.load_slice(roots)`` the slice of some nodes.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import sqlite3
import tempfile
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from . import __version__
from .errors import HandoffError
from .files import output_target

# 2: ``info.root_path`` (the packaging folder, rebased onto the deployed folder when loading)
FORMAT_VERSION = 2
ARTIFACT_NAME = "handoff-artifact.sqlite"
PACKAGE_HINT = "re-run `handoff package` on the project at deploy, then `handoff compile` its target/manifest.json"

# dbt classes a row may name; anything else in a file is refused (a name never becomes code)
_NODE_CLASSES = ("AnalysisNode", "FunctionNode", "GenericTestNode", "HookNode", "ModelNode", "SeedNode",
                 "SingularTestNode", "SnapshotNode", "SqlNode", "SourceDefinition", "UnitTestDefinition")
_KINDS = ("node", "source", "unit_test", "function")
_GRAPH_WORD = re.compile(r"\bgraph\b")
_SHA256 = re.compile(r"[0-9a-f]{64}")


@dataclass(frozen=True)
class TargetIdentity:
    """What dbt bakes into every relation name at parse time: the worker's profile must agree."""

    adapter_type: str
    database: str | None
    schema: str | None

    def describe(self) -> str:
        return f"{self.adapter_type} database {self.database!r} schema {self.schema!r}"


@dataclass(frozen=True)
class ArtifactInfo:
    format_version: int
    handoff_version: str
    dbt_version: str
    project_name: str
    manifest_sha256: str
    project_file_sha256: str
    target: TargetIdentity
    nodes: int
    root_path: str = ""  # the project folder as dbt saw it at packaging ("" when no node says)


@dataclass(frozen=True)
class Entry:
    """One row of the index: enough to compute a slice without loading any dbt object."""

    unique_id: str
    kind: str  # node / source / unit_test / function
    parents: tuple[str, ...]
    tests: tuple[str, ...]  # tests and unit tests that depend on this node
    ephemeral: bool = False
    hook: bool = False
    uses_graph: bool = False


def artifact_path(project_dir: str | Path) -> Path:
    """Where `handoff package` writes a project's artefact and a worker looks for it."""
    return Path(project_dir) / "target" / ARTIFACT_NAME


def sha256_file(path: str | Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


# --------------------------------------------------------------------------------------
# Which nodes a slice holds (pure)
# --------------------------------------------------------------------------------------

def slice_members(roots: Iterable[str], entry: Mapping[str, Entry] | Any) -> set[str] | None:
    """The unique_ids a worker must load to run ``roots`` exactly as a full-manifest
    `dbt build --select` would; None when the whole manifest is needed (a member reads dbt's
    ``graph`` variable, whose content would otherwise differ).

    ``entry`` maps unique_id -> Entry (a Mapping, or anything with ``__getitem__`` and ``get``
    that fetches lazily). Members: the roots, every test and unit test reading a root, the
    parents of all of those, the parents of every ephemeral member (its SQL is inlined, so its
    own refs must resolve), recursively. Hooks are added by the caller (``hook`` rows).
    """
    executed: set[str] = set()
    for root in roots:
        node = entry[root]
        executed.add(root)
        executed.update(node.tests)
    members = set(executed)
    pending = list(executed)
    while pending:
        current = entry.get(pending.pop())
        if current is None:
            continue  # a parent outside the manifest (dbt would have refused it at parse)
        if current.uses_graph:
            return None
        for parent in current.parents:
            if parent in members:
                continue
            members.add(parent)
            row = entry.get(parent)
            if row is not None and (row.ephemeral or row.uses_graph):
                pending.append(parent)  # its own refs/graph reads matter too
    return members


def rebase_path(path: str, packaged_root: str, deployed_root: str) -> str:
    """``path`` (a node's ``root_path`` as dbt wrote it at packaging) moved from the folder the
    project was packaged in to the folder it is deployed in (``deployed_root``, absolute).

    dbt stores each node's folder as it saw it at parse time (``/ci/marketplace``, or ``.`` when
    packaged with a relative path), and reads files through it at run time (dbt-duckdb's seeds:
    ``root_path/original_file_path``). A path outside the packaging folder is returned unchanged.
    """
    if not path or not packaged_root:
        return path
    old, root = os.path.normpath(path), os.path.normpath(packaged_root)
    if os.path.isabs(old) != os.path.isabs(root):
        return path
    relative = os.path.relpath(old, root)
    if relative == os.pardir or relative.startswith(os.pardir + os.sep):
        return path
    return os.path.normpath(os.path.join(deployed_root, relative))


def _rebase(manifest: Any, packaged_root: str, deployed_root: str | Path | None) -> None:
    if deployed_root is None or not packaged_root:
        return
    deployed = os.path.abspath(deployed_root)
    for group in (manifest.nodes, manifest.sources, manifest.unit_tests, manifest.functions, manifest.macros):
        for obj in group.values():
            old = getattr(obj, "root_path", None)
            if isinstance(old, str):
                obj.root_path = rebase_path(old, packaged_root, deployed)


# --------------------------------------------------------------------------------------
# Writing (at deploy)
# --------------------------------------------------------------------------------------

def _macro_graph_reader(macros: Mapping[str, Any]) -> Any:
    memo: dict[str, bool] = {}

    def reads_graph(macro_id: str, trail: frozenset[str] = frozenset()) -> bool:
        if macro_id in memo:
            return memo[macro_id]
        macro = macros.get(macro_id)
        if macro is None or macro_id in trail:
            return False
        found = bool(_GRAPH_WORD.search(macro.macro_sql or "")) or any(
            reads_graph(dep, trail | {macro_id}) for dep in macro.depends_on.macros)
        memo[macro_id] = found
        return found

    return reads_graph


def _index(manifest: Any) -> dict[str, Entry]:
    reads_graph = _macro_graph_reader(manifest.macros)
    tests_of: dict[str, list[str]] = {}
    for uid, node in [*manifest.nodes.items(), *manifest.unit_tests.items()]:
        if getattr(node, "resource_type", None) in ("test", "unit_test"):
            for parent in node.depends_on.nodes:
                tests_of.setdefault(parent, []).append(uid)

    def uses_graph(node: Any) -> bool:
        code = getattr(node, "raw_code", "") or ""
        macros = getattr(getattr(node, "depends_on", None), "macros", ()) or ()
        return bool(_GRAPH_WORD.search(code)) or any(reads_graph(m) for m in macros)

    entries: dict[str, Entry] = {}
    groups = (("node", manifest.nodes), ("source", manifest.sources), ("unit_test", manifest.unit_tests),
              ("function", manifest.functions))
    for kind, objects in groups:
        for uid, node in objects.items():
            depends = getattr(node, "depends_on", None)
            parents = tuple(getattr(depends, "nodes", ()) or ())
            config = getattr(node, "config", None)
            entries[uid] = Entry(
                unique_id=uid, kind=kind, parents=parents, tests=tuple(sorted(tests_of.get(uid, ()))),
                ephemeral=getattr(config, "materialized", None) == "ephemeral",
                hook=getattr(node, "resource_type", None) == "operation",
                uses_graph=kind != "source" and uses_graph(node))
    return entries


def write_artifact(manifest: Any, dest: str | Path, *, manifest_sha256: str, project_file_sha256: str,
                   target: TargetIdentity) -> ArtifactInfo:
    """Write ``manifest`` (dbt's parsed Manifest) as an artefact at ``dest``, atomically (a
    temporary file in the same folder, then a rename): a reader never sees half a file."""
    from dbt.contracts.graph.manifest import Manifest
    from dbt.parser.manifest import extended_mashumaro_encoder as encode

    dest = Path(dest)
    entries = _index(manifest)
    base = Manifest(macros=manifest.macros, groups=manifest.groups, selectors=manifest.selectors,
                    fixtures=manifest.fixtures, metadata=manifest.metadata)
    objects = {**manifest.nodes, **manifest.sources, **manifest.unit_tests, **manifest.functions}
    project_name = str(manifest.metadata.project_name)
    root_path = next((str(n.root_path) for n in manifest.nodes.values()
                      if n.package_name == project_name and getattr(n, "root_path", None)), "")
    info = ArtifactInfo(FORMAT_VERSION, __version__, str(manifest.metadata.dbt_version), project_name,
                        manifest_sha256, project_file_sha256, target, len(entries), root_path)
    dest = output_target(dest)  # a regular file (new or existing) in an existing folder, or one line
    fd, tmp = tempfile.mkstemp(prefix=f".{dest.name}.", dir=dest.parent)
    os.close(fd)
    try:
        with contextlib.closing(sqlite3.connect(tmp)) as db:
            db.executescript(
                "PRAGMA journal_mode=OFF; PRAGMA synchronous=OFF;"
                "CREATE TABLE info (key TEXT PRIMARY KEY, value TEXT NOT NULL);"
                "CREATE TABLE base (data BLOB NOT NULL);"
                "CREATE TABLE nodes (unique_id TEXT PRIMARY KEY, kind TEXT NOT NULL, class TEXT NOT NULL,"
                " parents TEXT NOT NULL, tests TEXT NOT NULL, ephemeral INTEGER NOT NULL, hook INTEGER NOT NULL,"
                " uses_graph INTEGER NOT NULL, data BLOB NOT NULL) WITHOUT ROWID;"
                "CREATE INDEX nodes_hook ON nodes (hook) WHERE hook = 1;")
            db.executemany("INSERT INTO info VALUES (?, ?)", _info_rows(info))
            db.execute("INSERT INTO base VALUES (?)", (base.to_msgpack(encode),))
            db.executemany("INSERT INTO nodes VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)", (
                (e.unique_id, e.kind, type(objects[e.unique_id]).__name__, json.dumps(e.parents),
                 json.dumps(e.tests), int(e.ephemeral), int(e.hook), int(e.uses_graph),
                 objects[e.unique_id].to_msgpack(encode))
                for e in entries.values()))
            db.commit()
        with open(tmp, "rb") as handle:
            os.fsync(handle.fileno())
        os.chmod(tmp, 0o644)
        os.replace(tmp, dest)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return info


def _info_rows(info: ArtifactInfo) -> list[tuple[str, str]]:
    return [("format_version", str(info.format_version)), ("handoff_version", info.handoff_version),
            ("dbt_version", info.dbt_version), ("project_name", info.project_name),
            ("manifest_sha256", info.manifest_sha256), ("project_file_sha256", info.project_file_sha256),
            ("target", json.dumps([info.target.adapter_type, info.target.database, info.target.schema])),
            ("nodes", str(info.nodes)), ("root_path", info.root_path)]


# --------------------------------------------------------------------------------------
# Reading (on a worker)
# --------------------------------------------------------------------------------------

class DeployedArtifact:
    """An artefact opened read-only. Use as a context manager, or call ``close()``."""

    def __init__(self, path: Path, db: sqlite3.Connection, info: ArtifactInfo) -> None:
        self.path = path
        self._db = db
        self.info = info

    def __enter__(self) -> DeployedArtifact:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._db.close()

    def _bad(self, problem: str) -> HandoffError:
        return HandoffError(f"dbt artefact is unusable: {problem}", where=str(self.path), hint=PACKAGE_HINT)

    def check(self, *, manifest_sha256: str | None, project_file: str | Path | None) -> None:
        """Refuse an artefact that does not belong to the plan (its manifest digest differs) or
        to the deployed project (its dbt_project.yml changed since packaging)."""
        if manifest_sha256 is not None and manifest_sha256 != self.info.manifest_sha256:
            raise HandoffError(
                f"dbt artefact is stale: built from manifest {self.info.manifest_sha256[:12]}…, the plan was "
                f"compiled from {manifest_sha256[:12]}…", where=str(self.path), hint=PACKAGE_HINT)
        if project_file is not None:
            try:
                digest = sha256_file(project_file)
            except OSError as exc:
                raise HandoffError(f"cannot read the deployed dbt_project.yml: {exc.strerror}",
                                   where=str(project_file), hint="deploy the dbt project with its artefact") from None
            if digest != self.info.project_file_sha256:
                raise HandoffError("dbt artefact is stale: dbt_project.yml changed after `handoff package`",
                                   where=str(self.path), hint=PACKAGE_HINT)

    # -- the index ---------------------------------------------------------------------
    def _rows(self, ids: Iterable[str], columns: str) -> list[tuple[Any, ...]]:
        wanted = sorted(set(ids))
        found: list[tuple[Any, ...]] = []
        for start in range(0, len(wanted), 500):
            chunk = wanted[start:start + 500]
            found.extend(self._db.execute(
                # only "?" placeholders and our own column names are formatted in; values are bound
                f"SELECT unique_id, {columns} FROM nodes WHERE unique_id IN ({','.join('?' * len(chunk))})",  # noqa: S608
                chunk).fetchall())
        return found

    def entries(self, ids: Iterable[str]) -> dict[str, Entry]:
        """Index rows of ``ids`` (unknown ids are absent)."""
        out: dict[str, Entry] = {}
        try:
            for uid, kind, parents, tests, ephemeral, hook, graph in self._rows(
                    ids, "kind, parents, tests, ephemeral, hook, uses_graph"):
                out[uid] = Entry(uid, kind, tuple(json.loads(parents)), tuple(json.loads(tests)),
                                 bool(ephemeral), bool(hook), bool(graph))
        except (sqlite3.Error, ValueError, TypeError) as exc:
            raise self._bad(f"index row unreadable ({exc})") from None
        return out

    def slice_ids(self, roots: Iterable[str], *, hooks: bool = True) -> set[str] | None:
        """``slice_members`` of ``roots`` plus (with ``hooks``) the project's hooks; None = the whole
        manifest. handoff's node tasks load no hooks: a DAG runs them once, in its hook tasks."""
        cache: dict[str, Entry | None] = {}
        artefact = self

        class _Lazy:
            def get(self, uid: str) -> Entry | None:
                if uid not in cache:
                    cache.update(dict.fromkeys([uid], None))
                    cache.update(artefact.entries([uid]))
                return cache[uid]

            def __getitem__(self, uid: str) -> Entry:
                found = self.get(uid)
                if found is None:
                    raise HandoffError(f"node {uid} is not in the dbt artefact", where=str(artefact.path),
                                       hint=PACKAGE_HINT)
                return found

        roots = list(roots)
        lazy = _Lazy()
        for root in roots:  # fetch each root's tests in one round trip
            cache.update(self.entries(lazy[root].tests))
        members = slice_members(roots, lazy)
        if members is None or not hooks:
            return members
        hook_rows = self._db.execute("SELECT unique_id, uses_graph FROM nodes WHERE hook = 1").fetchall()
        if any(graph for _, graph in hook_rows):
            return None  # a hook reads `graph`
        members.update(uid for uid, _ in hook_rows)
        return members

    # -- dbt objects ---------------------------------------------------------------------
    def _decode(self, rows: Iterable[tuple[Any, ...]], into: Any, keep: set[str] | None) -> None:
        import dbt.contracts.graph.nodes as dbt_nodes
        from dbt.parser.manifest import extended_mashumuro_decoder as decode

        targets = {"node": into.nodes, "source": into.sources, "unit_test": into.unit_tests,
                   "function": into.functions}
        for uid, kind, class_name, data in rows:
            if class_name not in _NODE_CLASSES or kind not in _KINDS:
                raise self._bad(f"row {uid!r} names an unknown dbt class {class_name!r}")
            try:
                obj = getattr(dbt_nodes, class_name).from_msgpack(data, decoder=decode)
            except Exception as exc:  # noqa: BLE001 - whatever dbt raises, the artifact is unusable
                raise self._bad(f"node {uid!r} cannot be decoded by dbt "
                                f"{self.info.dbt_version} ({type(exc).__name__})") from None
            if keep is not None and hasattr(getattr(obj, "depends_on", None), "nodes"):
                # a parent loaded for context only keeps the edges inside the slice: dbt's linker
                # refuses a graph with dangling edges, and nothing outside the slice runs
                obj.depends_on.nodes = [d for d in obj.depends_on.nodes if d in keep]
            targets[kind][uid] = obj

    def _base(self) -> Any:
        from dbt.contracts.graph.manifest import Manifest
        from dbt.parser.manifest import extended_mashumuro_decoder as decode

        row = self._db.execute("SELECT data FROM base").fetchone()
        if row is None:
            raise self._bad("no base manifest")
        try:
            return Manifest.from_msgpack(row[0], decoder=decode)
        except Exception as exc:  # noqa: BLE001 - whatever dbt raises, the artifact is unusable
            raise self._bad(f"base manifest cannot be decoded ({type(exc).__name__})") from None

    def load_manifest(self, *, project_dir: str | Path | None = None) -> Any:
        """The domain's full dbt Manifest, as parsed at deploy (no parse, no file of the project read).

        ``project_dir``: the folder the project is deployed in; every ``root_path`` under the
        packaging folder is rebased onto it (``rebase_path``), so the artefact runs wherever the
        project was copied to. None keeps the packaging paths."""
        manifest = self._base()
        try:
            rows = self._db.execute("SELECT unique_id, kind, class, data FROM nodes").fetchall()
        except sqlite3.Error as exc:
            raise self._bad(str(exc)) from None
        self._decode(rows, manifest, None)
        _rebase(manifest, self.info.root_path, project_dir)
        return manifest

    def load_slice(self, roots: Iterable[str], *, hooks: bool = True, project_dir: str | Path | None = None) -> Any:
        """The Manifest a worker hands to ``dbtRunner(manifest=…)`` to build ``roots`` (with the
        tests reading them): ``slice_ids(roots)``, or the whole manifest when that is None.
        ``project_dir`` as in ``load_manifest``."""
        members = self.slice_ids(roots, hooks=hooks)
        if members is None:
            return self.load_manifest(project_dir=project_dir)
        manifest = self._base()
        self._decode(self._rows(members, "kind, class, data"), manifest, members)
        _rebase(manifest, self.info.root_path, project_dir)
        return manifest


def open_artifact(path: str | Path) -> DeployedArtifact:
    """Open an artefact read-only; a missing or foreign file is a one-line HandoffError."""
    path = Path(path)
    if not path.is_file():
        raise HandoffError("no dbt artefact", where=str(path), hint=PACKAGE_HINT)
    try:
        db = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)
    except sqlite3.Error as exc:
        raise HandoffError(f"cannot open the dbt artefact: {exc}", where=str(path), hint=PACKAGE_HINT) from None
    try:
        raw = dict(db.execute("SELECT key, value FROM info").fetchall())
        info = _parse_info(raw)
    except (sqlite3.Error, ValueError, TypeError, KeyError) as exc:
        db.close()
        raise HandoffError(f"not a handoff dbt artefact ({type(exc).__name__}: {exc})", where=str(path),
                           hint=PACKAGE_HINT) from None
    return DeployedArtifact(path, db, info)


def check_packaged_manifest(manifest_path: str | Path) -> None:
    """Refuse a ``target/manifest.json`` that is not the one `handoff package` wrote next to the
    artefact in the same folder: a dbt command run after packaging (``dbt run-operation``,
    ``dbt parse``, ``dbt build``…) rewrites it, and a plan compiled from it would make every task
    fail at run time as stale. No artefact next to it: nothing to check (CI compiles PR manifests
    without packaging). One-line HandoffError otherwise (dbt is not imported)."""
    manifest = Path(manifest_path)
    path = manifest.parent / ARTIFACT_NAME
    if not path.is_file():
        return
    with open_artifact(path) as artefact:
        packaged = artefact.info.manifest_sha256
    try:
        digest = sha256_file(manifest)
    except OSError as exc:
        raise HandoffError(f"cannot read the manifest: {exc.strerror}", where=str(manifest)) from None
    if digest != packaged:
        raise HandoffError(
            f"this manifest (sha256 {digest[:12]}…) is not the one `handoff package` wrote with {path.name} "
            f"({packaged[:12]}…): a dbt command run after packaging rewrote it, and every task would fail "
            "as stale", where=str(manifest),
            hint="run dbt commands (e.g. `dbt run-operation handoff_validate`) before `handoff package`, then "
                 "re-run `handoff package` on the project and `handoff compile` its target/manifest.json")


def _parse_info(raw: Mapping[str, str]) -> ArtifactInfo:
    version = int(raw["format_version"])
    if version != FORMAT_VERSION:
        raise ValueError(f"format version {version}, this handoff reads {FORMAT_VERSION}")
    adapter, database, schema = json.loads(raw["target"])
    for key in ("manifest_sha256", "project_file_sha256"):
        if not _SHA256.fullmatch(raw[key]):
            raise ValueError(f"{key} is not a sha256")
    if not isinstance(adapter, str) or not all(v is None or isinstance(v, str) for v in (database, schema)):
        raise ValueError("target is not [adapter, database, schema]")
    return ArtifactInfo(version, raw["handoff_version"], raw["dbt_version"], raw["project_name"],
                        raw["manifest_sha256"], raw["project_file_sha256"], TargetIdentity(adapter, database, schema),
                        int(raw["nodes"]), str(raw["root_path"]))

