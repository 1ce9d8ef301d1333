"""Loads the JSON Schemas in schemas/ (shipped inside the package as handoff/schemas)."""

from __future__ import annotations

import json
from functools import lru_cache
from importlib import resources
from typing import Any

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
