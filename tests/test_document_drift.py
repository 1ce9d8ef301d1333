"""The typed documents (handoff.plan_model, the registry snapshot's classes) and schemas/*.json never
drift: every class has exactly its schema object's keys, a key is required exactly when its field
has no default, and each field's type accepts what the schema accepts (JSON types, enums, nested
objects and arrays, recursively).

Plus: the comparison itself catches drift (a schema edited in memory is reported), and compiled
plans of real dbt projects survive ``Plan.from_json`` -> ``to_json`` unchanged.
"""

from __future__ import annotations

import copy
import dataclasses
import json
import types
import typing
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

import pytest

from handoff import schemas
from handoff.plan_model import DbtTask, Plan, SensorTask
from handoff.registry.snapshot import Snapshot

REPO = Path(__file__).resolve().parents[1]


# -- the comparison ----------------------------------------------------------------------------

class Schemas:
    """schemas/*.json with their cross-file $refs resolved (``meta.schema.json#/$defs/name``)."""

    def __init__(self, overrides: Mapping[str, Any] | None = None) -> None:
        self.docs = {name: schemas.load(name) for name in schemas.names()}
        self.docs.update(overrides or {})

    def resolve(self, node: Any, doc: str) -> tuple[Any, str]:
        while isinstance(node, dict) and "$ref" in node and len(set(node) - {"$ref", "description"}) == 0:
            ref = node["$ref"]
            target, _, pointer = ref.partition("#")
            doc = target.removesuffix(".schema.json") if target else doc
            node = self.docs[doc]
            for part in filter(None, pointer.split("/")):
                node = node[part]
        return node, doc


def _json_types(node: Any, docs: Schemas, doc: str) -> set[str]:
    """The JSON types a schema node accepts."""
    node, doc = docs.resolve(node, doc)
    if "anyOf" in node:
        return set().union(*(_json_types(n, docs, doc) for n in node["anyOf"]))
    if "if" in node:
        return _json_types(node["then"], docs, doc) | _json_types(node["else"], docs, doc)
    if "$ref" in node:
        return _json_types({"$ref": node["$ref"]}, docs, doc)
    if "const" in node:
        return {_type_of(node["const"])}
    if "enum" in node:
        return {_type_of(v) for v in node["enum"]}
    kind = node.get("type")
    if kind is None:
        raise AssertionError(f"schema node without a type: {node}")
    return {kind} if isinstance(kind, str) else set(kind)


def _type_of(value: Any) -> str:
    return {bool: "boolean", int: "integer", str: "string", type(None): "null"}[type(value)]


def _values(node: Any, docs: Schemas, doc: str) -> set[Any] | None:
    """The values an enum/const node allows (None: any value of its types)."""
    node, doc = docs.resolve(node, doc)
    if "anyOf" in node:
        parts = [_values(n, docs, doc) for n in node["anyOf"]]
        return None if any(p is None for p in parts) else set().union(*parts)  # type: ignore[arg-type]
    if "const" in node:
        return {node["const"]}
    if "enum" in node:
        return set(node["enum"])
    return {None} if node.get("type") == "null" else None


def _annotation_types(annotation: Any) -> tuple[set[str], list[Any]]:
    """The JSON types a Python annotation accepts, and its non-None members."""
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        found: set[str] = set()
        members: list[Any] = []
        for arg in typing.get_args(annotation):
            kinds, inner = _annotation_types(arg)
            found |= kinds
            members += inner
        return found, members
    if annotation is type(None):
        return {"null"}, []
    if typing.get_origin(annotation) is Literal:
        return {_type_of(v) for v in typing.get_args(annotation)}, [annotation]
    simple = {str: "string", int: "integer", bool: "boolean", float: "number"}
    if annotation in simple:
        return {simple[annotation]}, [annotation]
    if typing.get_origin(annotation) is tuple:
        return {"array"}, [annotation]
    if typing.get_origin(annotation) in (Mapping, dict) or dataclasses.is_dataclass(annotation):
        return {"object"}, [annotation]
    raise AssertionError(f"unsupported annotation {annotation!r}")


def drift(cls: type, node: Any, docs: Schemas, doc: str, where: str) -> list[str]:
    """Every disagreement between dataclass ``cls`` and the schema object ``node``."""
    node, doc = docs.resolve(node, doc)
    problems: list[str] = []
    if node.get("additionalProperties") is not False:
        problems.append(f"{where}: the schema object allows other keys; the class cannot hold them")
    hints = typing.get_type_hints(cls)
    fields = {f.metadata.get("json", f.name): f for f in dataclasses.fields(cls)}
    properties = node.get("properties", {})
    for key in sorted(set(properties) - set(fields)):
        problems.append(f"{where}.{key}: in the schema, not in {cls.__name__}")
    for key in sorted(set(fields) - set(properties)):
        problems.append(f"{where}.{key}: in {cls.__name__}, not in the schema")
    required = set(node.get("required", ()))
    for key in sorted(set(fields) & set(properties)):
        f = fields[key]
        has_default = f.default is not dataclasses.MISSING or f.default_factory is not dataclasses.MISSING
        if (key in required) == has_default:
            problems.append(f"{where}.{key}: {'required' if key in required else 'optional'} in the schema, "
                            f"{'has a default' if has_default else 'has no default'} in {cls.__name__}")
        annotation = hints[f.name]
        if key not in required and f.default is None and "null" not in _json_types(properties[key], docs, doc):
            annotation = _without_none(annotation)  # None stands for the absent key (to_json leaves it out)
        problems += _compare(annotation, properties[key], docs, doc, f"{where}.{key}")
    return problems


def _without_none(annotation: Any) -> Any:
    members = [a for a in typing.get_args(annotation) if a is not type(None)]
    return members[0] if len(members) == 1 else annotation


def _compare(annotation: Any, node: Any, docs: Schemas, doc: str, where: str) -> list[str]:
    kinds, members = _annotation_types(annotation)
    wanted = _json_types(node, docs, doc)
    if kinds != wanted:
        return [f"{where}: the class takes {sorted(kinds)}, the schema {sorted(wanted)}"]
    node, doc = docs.resolve(node, doc)
    problems: list[str] = []
    literals = [m for m in members if typing.get_origin(m) is Literal]
    allowed = _values(node, docs, doc)
    if literals or (allowed is not None and allowed != {None}):
        mine = {v for m in literals for v in typing.get_args(m)} | ({None} if "null" in kinds else set())
        if mine != allowed:
            problems.append(f"{where}: the class allows {sorted(map(repr, mine))}, "
                            f"the schema {sorted(map(repr, allowed or ()))}")
    branches = [n for n in node.get("anyOf", [node]) if docs.resolve(n, doc)[0].get("type") != "null"]
    for member in members:
        origin = typing.get_origin(member)
        if dataclasses.is_dataclass(member):
            target = _object_branch(branches, docs, doc)
            problems += drift(member, target, docs, doc, where)  # type: ignore[arg-type]
        elif origin is tuple:
            (item, _ellipsis) = typing.get_args(member)
            items = _array_branch(branches, docs, doc)["items"]
            if typing.get_origin(item) in (typing.Union, types.UnionType):
                problems += _compare_union_items(item, items, docs, doc, f"{where}[]")
            else:
                problems += _compare(item, items, docs, doc, f"{where}[]")
        elif origin in (Mapping, dict):
            _key, value = typing.get_args(member)
            target = _object_branch(branches, docs, doc)
            problems += _compare(value, target["additionalProperties"], docs, doc, f"{where}{{}}")
    return problems


def _compare_union_items(union: Any, items: Any, docs: Schemas, doc: str, where: str) -> list[str]:
    """An array of several classes (the tasks): ``if kind is sensor then … else …`` in the schema."""
    items, doc = docs.resolve(items, doc)
    classes = typing.get_args(union)
    if "if" not in items:
        return [f"{where}: the class takes one of {[c.__name__ for c in classes]}, the schema one object"]
    problems = []
    for branch in (items["then"], items["else"]):
        target, _ = docs.resolve(branch, doc)
        kinds = _values(target["properties"]["kind"], docs, doc)
        matching = [c for c in classes
                    if set(typing.get_args(typing.get_type_hints(c)["kind"])) == kinds]
        if len(matching) != 1:
            problems.append(f"{where}: no single class for tasks of kind {sorted(kinds or ())}")
            continue
        problems += drift(matching[0], branch, docs, doc, f"{where}<{matching[0].__name__}>")
    return problems


def _object_branch(branches: list[Any], docs: Schemas, doc: str) -> Any:
    (found,) = [b for b in branches if "object" in _json_types(b, docs, doc)]
    return docs.resolve(found, doc)[0]


def _array_branch(branches: list[Any], docs: Schemas, doc: str) -> Any:
    (found,) = [b for b in branches if "array" in _json_types(b, docs, doc)]
    return docs.resolve(found, doc)[0]


DOCUMENTS = [(Plan, "plan"), (Snapshot, "registry_snapshot")]


# -- the tests ---------------------------------------------------------------------------------

@pytest.mark.parametrize(("cls", "name"), DOCUMENTS, ids=[name for _, name in DOCUMENTS])
def test_typed_document_matches_its_schema(cls: type, name: str) -> None:
    docs = Schemas()
    assert drift(cls, docs.docs[name], docs, name, name) == []


def _edited(name: str, edit: Any) -> Schemas:
    schema = copy.deepcopy(schemas.load(name))
    edit(schema)
    return Schemas({name: schema})


@pytest.mark.parametrize(("edit", "expected"), [
    (lambda s: s["$defs"]["sensor_task"]["properties"].update(poke_jitter_s={"type": "integer"}),
     "plan.pipelines[].tasks[]<SensorTask>.poke_jitter_s: in the schema, not in SensorTask"),
    (lambda s: s["$defs"]["dbt_task"]["properties"].pop("pool"),
     "plan.pipelines[].tasks[]<DbtTask>.pool: in DbtTask, not in the schema"),
    (lambda s: s["$defs"]["pipeline"]["required"].remove("timezone"),
     "plan.pipelines[].timezone: optional in the schema, has no default in PlanPipeline"),
    (lambda s: s["$defs"]["dbt_task"]["properties"]["retries"].update(type=["integer", "null"]),
     "plan.pipelines[].tasks[]<DbtTask>.retries: the class takes ['integer'], the schema ['integer', 'null']"),
    (lambda s: s["$defs"]["dbt_task"]["properties"]["access"]["enum"].append("internal"),
     "plan.pipelines[].tasks[]<DbtTask>.access: the class allows"),
    (lambda s: s["properties"]["dbt"]["properties"]["manifest_sha256"].update(type="integer"),
     "plan.dbt.manifest_sha256: the class takes ['string'], the schema ['integer']"),
])
def test_drift_is_reported(edit: Any, expected: str) -> None:
    docs = _edited("plan", edit)
    problems = drift(Plan, docs.docs["plan"], docs, "plan", "plan")
    assert any(p.startswith(expected) for p in problems), problems


def test_snapshot_drift_is_reported() -> None:
    docs = _edited("registry_snapshot", lambda s: s["$defs"]["model"]["required"].append("timezone"))
    problems = drift(Snapshot, docs.docs["registry_snapshot"], docs, "registry_snapshot", "registry_snapshot")
    assert problems == ["registry_snapshot.models[].timezone: required in the schema, has a default in "
                        "SnapshotModel"], problems


def test_compiled_plans_round_trip(example_manifests: Any, corpus: Any, tmp_path: Path) -> None:
    """What compile writes for real dbt projects (the examples, the corpus: versions, ephemerals,
    hooks, several schedules, cross-domain sensors) loads as a typed Plan that gives it back, key
    for key; its snapshot too."""
    from handoff.manifest import load_manifest
    from handoff.plan import compile_manifest, dumps, load_plan
    from handoff.registry.mesh import Mesh, domain_from_plan
    from handoff.registry.snapshot import build_snapshot, read_snapshot, write_snapshot

    compiled = [compile_manifest(load_manifest(path)) for path in example_manifests.manifests.values()]
    compiled += list(corpus.plans.values())
    plans = []
    for typed in compiled:
        path = tmp_path / f"{typed.domain.name}.plan.json"
        path.write_text(dumps(typed), "utf-8")
        plan = load_plan(path)
        assert plan == typed, path
        assert plan.to_json() == json.loads(path.read_text("utf-8")), path  # key for key, nothing dropped
        plans.append(plan)
    tasks = [t for p in plans for pipeline in p.pipelines for t in pipeline.tasks]
    assert {type(t) for t in tasks} == {DbtTask, SensorTask}
    assert any(isinstance(t, DbtTask) and t.version for t in tasks)  # the corpus has versioned models

    built = build_snapshot(Mesh({p.domain.name: domain_from_plan(p) for p in plans}))
    snapshot = read_snapshot(write_snapshot(built, tmp_path / "registry_snapshot.json"))
    assert snapshot == built
    assert len(snapshot.models) > 100
    first = snapshot.models[0]
    assert snapshot.lookup(first.domain, first.model) == first
