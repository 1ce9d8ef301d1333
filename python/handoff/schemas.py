"""Loads the JSON Schemas in schemas/ (shipped inside the package as handoff/schemas)."""

from __future__ import annotations

import json
from functools import lru_cache
from importlib import resources
from typing import Any, Callable

import jsonschema
from referencing import Registry, Resource


@lru_cache(maxsize=None)
def load(name: str) -> dict[str, Any]:
    """The schema ``schemas/<name>.schema.json`` as a dict."""
    text = resources.files("handoff").joinpath("schemas", f"{name}.schema.json").read_text("utf-8")
    return json.loads(text)


def names() -> list[str]:
    """Every schema shipped in schemas/ (file stem without .schema.json)."""
    folder = resources.files("handoff").joinpath("schemas")
    return sorted(p.name[: -len(".schema.json")] for p in folder.iterdir() if p.name.endswith(".schema.json"))


@lru_cache(maxsize=None)
def validator(name: str, definition: str | None = None) -> jsonschema.Draft202012Validator:
    """A validator for a whole schema, or for one of its ``$defs`` entries."""
    schema = load(name)
    registry: Registry = Registry().with_resources(
        (other["$id"], Resource.from_contents(other)) for other in map(load, names())
    )
    target = {"$ref": f"{schema['$id']}#/$defs/{definition}"} if definition else schema
    return jsonschema.Draft202012Validator(target, registry=registry)


# --------------------------------------------------------------------------------------
# A compiled twin of a schema's validator, for the common case (valid input)
# --------------------------------------------------------------------------------------
# jsonschema interprets the schema at every call: ~0.2 ms per plan task, 4 s for a 20,000-task
# plan, which the dag-processor paid at its first parse after a deploy (docs/benchmarks.md).
# fastjsonschema compiles the schema to Python once: ~11x faster. It implements draft-07, so it is
# used only when every keyword of the schema (and of the schemas it refers to) means the same in
# draft 2020-12 and is enforced by it; it only ever *accepts*: when it refuses, the caller asks
# jsonschema, the authority, which also writes the message (docs/decisions.md D14).
# keywords of draft 2020-12 that draft-07 does not have (or reads otherwise): a schema using any
# of them anywhere is validated by jsonschema alone
_NOT_IN_DRAFT7 = frozenset({
    "prefixItems", "unevaluatedProperties", "unevaluatedItems", "dependentRequired", "dependentSchemas",
    "dependencies", "$dynamicRef", "$dynamicAnchor", "$recursiveRef", "$recursiveAnchor", "$anchor",
    "minContains", "maxContains", "contentSchema", "$vocabulary",
})
_ANNOTATIONS = frozenset({"$ref", "$comment", "title", "description", "default", "examples"})


def _draft7_compatible(schema: Any) -> bool:
    """Conservative: walks every value (a property named like a keyword only costs the fast path)."""
    if isinstance(schema, list):
        return all(_draft7_compatible(item) for item in schema)
    if not isinstance(schema, dict):
        return True
    if _NOT_IN_DRAFT7 & set(schema):
        return False
    if "$ref" in schema and set(schema) - _ANNOTATIONS:
        return False  # draft-07 ignores a $ref's siblings; 2020-12 applies them
    if isinstance(schema.get("items"), list):
        return False  # the array form of items is prefixItems in 2020-12
    return all(_draft7_compatible(value) for value in schema.values())


def _local_schema(uri: str) -> dict[str, Any]:
    """Resolve a reference to one of our own schemas from the package, never the network."""
    for name in names():
        if load(name).get("$id") == uri.split("#", 1)[0]:
            return load(name)
    raise ValueError(f"reference outside handoff's schemas: {uri}")


@lru_cache(maxsize=None)
def fast_check(name: str) -> Callable[[Any], bool] | None:
    """``check(data) -> bool``: True means valid for ``validator(name)``; False means "ask
    jsonschema". None when the schema uses a keyword the compiled validator may not enforce."""
    import fastjsonschema

    if not all(_draft7_compatible(load(other)) for other in names()):
        return None
    schema = dict(load(name), **{"$schema": "http://json-schema.org/draft-07/schema#"})
    compiled = fastjsonschema.compile(schema, handlers={"https": _local_schema, "http": _local_schema})

    def check(data: Any) -> bool:
        try:
            compiled(data)
        except Exception:  # noqa: BLE001 - any refusal or surprise: let jsonschema decide and explain
            return False
        return True

    return check
