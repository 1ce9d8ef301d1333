"""Loads the JSON Schemas in schemas/ (shipped inside the package as handoff/schemas)."""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator
from functools import cache
from importlib import resources
from typing import Any

import jsonschema
from jsonschema.exceptions import ValidationError
from referencing import Registry, Resource


@cache
def load(name: str) -> dict[str, Any]:
    """The schema ``schemas/<name>.schema.json`` as a dict."""
    text = (resources.files("handoff") / "schemas" / f"{name}.schema.json").read_text("utf-8")
    schema: dict[str, Any] = json.loads(text)
    return schema


def names() -> list[str]:
    """Every schema shipped in schemas/ (file stem without .schema.json)."""
    folder = resources.files("handoff").joinpath("schemas")
    return sorted(p.name[: -len(".schema.json")] for p in folder.iterdir() if p.name.endswith(".schema.json"))


# Full-match patterns (issue #12): JSON Schema's `pattern` is a search, and Python's `$` also
# matches before a trailing newline, so `^[a-z]+$` let "finance\n" through. handoff's enforcers
# (this validator and the macros' interpreter, macros/schema/handoff_schema_issues.sql) match
# `pattern` and `patternProperties` against the WHOLE string (re.fullmatch); the schemas keep
# `^...$` so that they read the same to any other JSON Schema tool.
@cache
def _regex(pattern: str) -> re.Pattern[str]:
    return re.compile(pattern)


def full_match(pattern: str, text: str) -> bool:
    """Whether ``text`` as a whole matches ``pattern`` (how handoff reads every schema pattern)."""
    return _regex(pattern).fullmatch(text) is not None


def _pattern(validator: Any, pattern: str, instance: Any, schema: Any) -> Iterator[ValidationError]:
    if validator.is_type(instance, "string") and not full_match(pattern, instance):
        yield ValidationError(f"{instance!r} does not match {pattern!r}")


def _pattern_properties(validator: Any, patterns: dict[str, Any], instance: Any,
                        schema: Any) -> Iterator[ValidationError]:
    if not validator.is_type(instance, "object"):
        return
    for pattern, subschema in patterns.items():
        for key, value in instance.items():
            if full_match(pattern, key):
                yield from validator.descend(value, subschema, path=key, schema_path=pattern)


def _additional_properties(validator: Any, allowed: Any, instance: Any, schema: Any) -> Iterator[ValidationError]:
    if not validator.is_type(instance, "object"):
        return
    known = schema.get("properties", {})
    patterns = schema.get("patternProperties", {})
    extras = [k for k in instance if k not in known and not any(full_match(p, k) for p in patterns)]
    if validator.is_type(allowed, "object"):
        for extra in extras:
            yield from validator.descend(instance[extra], allowed, path=extra)
    elif allowed is False and extras:
        listed = ", ".join(repr(e) for e in sorted(extras, key=str))
        verb = "was" if len(extras) == 1 else "were"
        yield ValidationError(f"Additional properties are not allowed ({listed} {verb} unexpected)")


FullMatchValidator = jsonschema.validators.extend(  # type: ignore[no-untyped-call]  # unannotated in its stubs
    jsonschema.Draft202012Validator,
    {"pattern": _pattern, "patternProperties": _pattern_properties, "additionalProperties": _additional_properties},
)


@cache
def validator(name: str, definition: str | None = None) -> Any:
    """A validator (Draft 2020-12, patterns full-matched) for a whole schema, or one of its ``$defs``."""
    schema = load(name)
    registry: Registry = Registry().with_resources(
        (other["$id"], Resource.from_contents(other)) for other in map(load, names())
    )
    target = {"$ref": f"{schema['$id']}#/$defs/{definition}"} if definition else schema
    return FullMatchValidator(target, registry=registry)


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
            twin: dict[str, Any] = _full_match_twin(load(name))
            return twin
    raise ValueError(f"reference outside handoff's schemas: {uri}")


def _full_match_twin(schema: Any) -> Any:
    """The schema with every ``pattern`` (and ``patternProperties`` key) anchored as ``\\A(?:p)\\Z``:
    fastjsonschema searches, and its fast path must accept nothing the full-match validator refuses."""
    if isinstance(schema, list):
        return [_full_match_twin(item) for item in schema]
    if not isinstance(schema, dict):
        return schema
    twin: dict[str, Any] = {}
    for key, value in schema.items():
        if key == "pattern" and isinstance(value, str):
            twin[key] = rf"\A(?:{value})\Z"
        elif key == "patternProperties" and isinstance(value, dict):
            twin[key] = {rf"\A(?:{k})\Z": _full_match_twin(v) for k, v in value.items()}
        elif key in ("properties", "$defs", "definitions") and isinstance(value, dict):
            twin[key] = {k: _full_match_twin(v) for k, v in value.items()}  # names, not schemas
        else:
            twin[key] = _full_match_twin(value)
    return twin


@cache
def fast_check(name: str) -> Callable[[Any], bool] | None:
    """``check(data) -> bool``: True means valid for ``validator(name)``; False means "ask
    jsonschema". None when the schema uses a keyword the compiled validator may not enforce."""
    import fastjsonschema

    if not all(_draft7_compatible(load(other)) for other in names()):
        return None
    schema = dict(_full_match_twin(load(name)), **{"$schema": "http://json-schema.org/draft-07/schema#"})
    handlers = {"https": _local_schema, "http": _local_schema}
    compiled = _compiled_lean(fastjsonschema.compile_to_code(schema, handlers=handlers))
    if compiled is None:
        compiled = fastjsonschema.compile(schema, handlers=handlers)

    def check(data: Any) -> bool:
        try:
            compiled(data)
        except Exception:  # noqa: BLE001 - any refusal or surprise: let jsonschema decide and explain
            return False
        return True

    return check


# fastjsonschema names each array item for its error messages as it validates it, with
# ``"...[{i}]".format(**locals())`` (a dict of every local of a large function): half of checking a
# valid plan's tasks (docs/benchmarks.md). The fast path never reads those messages (a refusal
# means "ask jsonschema"), so each such expression is turned into the f-string that builds the same
# text. Only a literal with one ``{identifier}`` placeholder is rewritten; anything else is left as
# fastjsonschema wrote it, and any surprise means fastjsonschema's own compile.
_ITEM_NAME = re.compile(r'"([^"{}\\]*)\{([A-Za-z_][A-Za-z0-9_]*)\}([^"{}\\]*)"\.format\(\*\*locals\(\)\)')
_ENTRY = re.compile(r"^def (validate\w*)\(", re.MULTILINE)


def _compiled_lean(code: str) -> Callable[[Any], Any] | None:
    """The validator of fastjsonschema's generated ``code`` (the root function comes first), item
    names built by f-strings; None when the code is not shaped as expected."""
    entry = _ENTRY.search(code)
    if entry is None:
        return None
    namespace: dict[str, Any] = {}
    try:
        # our own shipped schemas, generated by fastjsonschema in this process: no outside input
        exec(compile(_ITEM_NAME.sub(r'f"\1{\2}\3"', code), "<handoff fast schema check>", "exec"),  # noqa: S102
             namespace)
    except (SyntaxError, ValueError, NameError, ImportError):
        return None
    found = namespace.get(entry.group(1))
    return found if callable(found) else None
