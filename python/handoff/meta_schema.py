"""The meta convention, part one: schema checks of one meta block against
schemas/meta.schema.json (rule codes HO1xx), with the key path and a suggestion for a misspelt key.

Rule codes (docs/convention.md lists them all) are shared with the dbt macros, which must give
the same verdict (code and key path) on the same meta (tests/test_macro_parity.py). The project
rules (HO2xx) and effective settings are ``handoff.convention``.
"""

from __future__ import annotations

import difflib
import json
from collections.abc import Iterable
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import jsonschema

from . import schemas

# JSON Schema keyword -> rule code. The Jinja validator in macros/ maps the same way.
SCHEMA_CODES = {
    "unknown_key": "HO101",
    "type": "HO102",
    "pattern": "HO103",
    "required": "HO104",
    "enum": "HO105",
    "range": "HO106",
}

KINDS = {"node": "node_meta", "source": "source_meta"}


@dataclass(frozen=True, order=True)
class Issue:
    """One violation inside a meta block: ``path`` is dotted from the meta root."""

    code: str
    path: str
    message: str


def validate_meta(kind: str, meta: Any) -> list[Issue]:
    """Check one meta block (``kind`` is 'node' or 'source') against schemas/meta.schema.json.

    Verdicts are cached by the block's content: across a project most nodes share the same
    meta (thousands of nodes, a handful of distinct blocks), and jsonschema costs ~1 ms per
    node otherwise. Inside a block, each root key's value is judged on its own (cached too),
    since the root only maps handoff's keys to sub-schemas."""
    if kind not in KINDS:
        raise ValueError(f"unknown meta kind {kind!r}")
    try:
        key = json.dumps(meta if meta is not None else {}, sort_keys=True)
    except (TypeError, ValueError):
        key = None
    if key is None:
        return _judge(kind, meta if meta is not None else {})
    return list(_cached_verdict(kind, key))


@lru_cache(maxsize=4096)
def _cached_verdict(kind: str, meta_json: str) -> tuple[Issue, ...]:
    return tuple(_judge(kind, json.loads(meta_json)))


def _judge(kind: str, meta: Any) -> list[Issue]:
    if not isinstance(meta, dict):
        return sorted(set(_issues_for(KINDS[kind], None, json.dumps(meta, default=str))))
    issues: list[Issue] = []
    properties = schemas.load("meta")["$defs"][KINDS[kind]]["properties"]
    for key, value in meta.items():
        if key in properties:
            issues.extend(_issues_for(KINDS[kind], key, json.dumps(value, sort_keys=True, default=str)))
    issues.extend(_misspelt_root_keys(KINDS[kind], meta))
    return sorted(set(issues))


@lru_cache(maxsize=4096)
def _issues_for(definition: str, key: str | None, value_json: str) -> tuple[Issue, ...]:
    """Issues of one root key's value (or, with key None, of a whole non-object meta)."""
    value = json.loads(value_json)
    if key is None:
        validator = schemas.validator("meta", definition)
        return tuple(i for e in validator.iter_errors(value) for i in _issues_from(e))
    ref = schemas.load("meta")["$defs"][definition]["properties"][key]["$ref"]
    validator = schemas.validator("meta", ref.rsplit("/", 1)[1])
    return tuple(Issue(i.code, f"{key}.{i.path}" if i.path else key, i.message)
                 for e in validator.iter_errors(value) for i in _issues_from(e))


def _misspelt_root_keys(definition: str, meta: dict[str, Any]) -> list[Issue]:
    """Root keys caught by a ``false`` patternProperty (jsonschema reports those without the key)."""
    schema = schemas.load("meta")["$defs"][definition]
    known = sorted(schema.get("properties", {}))
    return [
        Issue(SCHEMA_CODES["unknown_key"], str(key),
              f"unknown key '{key}'{suggest(str(key), known)}; handoff reads here: {', '.join(known)}")
        for key in meta
        for pattern, sub in schema.get("patternProperties", {}).items()
        if sub is False and schemas.full_match(pattern, str(key))
    ]


def _dotted(parts: Iterable[Any]) -> str:
    return ".".join(str(p) for p in parts)


def _describe(schema: Any) -> str:
    if isinstance(schema, dict):
        if "description" in schema:
            return str(schema["description"])
        ref = schema.get("$ref")
        if isinstance(ref, str):
            target: Any = schemas.load("meta")
            for part in ref.split("#/", 1)[1].split("/"):
                target = target[part]
            return _describe(target)
    return ""


def _allowed_keys(schema: dict[str, Any]) -> list[str]:
    return sorted(schema.get("properties", {}))


def suggest(key: str, allowed: Iterable[str]) -> str:
    """' (did you mean X?)' for the nearest allowed key, or ''."""
    match = difflib.get_close_matches(key, list(allowed), n=1, cutoff=0.6)
    return f" (did you mean '{match[0]}'?)" if match else ""


def _issues_from(error: jsonschema.ValidationError) -> list[Issue]:
    path = list(error.absolute_path)
    # jsonschema leaves the keyword unset (None, whatever its stubs say) for a `false` schema
    keyword = error.validator if isinstance(error.validator, str) else None
    instance: Any = error.instance
    expected_value: Any = error.validator_value
    if keyword in ("$ref", "allOf"):
        return [i for sub in error.context or [] for i in _issues_from(sub)]
    if keyword == "additionalProperties":
        allowed = _allowed_keys(error.schema) if isinstance(error.schema, dict) else []
        patterns = list(error.schema.get("patternProperties", {})) if isinstance(error.schema, dict) else []
        extras = sorted(k for k in set(instance) - set(allowed)
                        if not any(schemas.full_match(p, str(k)) for p in patterns))
        expected = f"allowed: {', '.join(allowed)}" if allowed else f"expected {_describe(error.schema)}"
        return [
            Issue(SCHEMA_CODES["unknown_key"], _dotted([*path, k]),
                  f"unknown key '{k}'{suggest(k, allowed)}; {expected}")
            for k in extras
        ]
    if keyword is None:
        return []  # a `false` patternProperty: reported by _misspelt_root_keys, which knows the key
    if keyword == "required":
        missing = [k for k in expected_value if k not in instance]
        return [Issue(SCHEMA_CODES["required"], _dotted([*path, k]), f"required key '{k}' is missing")
                for k in missing]
    if keyword == "type":
        return [Issue(SCHEMA_CODES["type"], _dotted(path), type_message(expected_value, instance))]
    if keyword == "pattern":
        return [Issue(SCHEMA_CODES["pattern"], _dotted(path),
                      f"{instance!r} is not {_describe(error.schema) or 'of the expected form'}")]
    if keyword == "enum":
        options = ", ".join(repr(v) for v in expected_value)
        return [Issue(SCHEMA_CODES["enum"], _dotted(path), f"{instance!r} is not one of {options}")]
    if keyword in ("minimum", "maximum", "minLength", "maxLength"):
        return [Issue(SCHEMA_CODES["range"], _dotted(path),
                      f"{instance!r} breaks {keyword} {expected_value}")]
    raise AssertionError(f"schemas/meta.schema.json uses keyword {keyword!r} that handoff does not map")


def type_message(wanted: str | list[str], instance: Any) -> str:
    """HO102's message, word for word the macro handoff_schema_issues' (tests/test_macro_parity.py):
    ``expected integer (no quotes); got string "2"``; a number where a string is wanted (an unquoted
    12:30, which YAML reads as 750) adds the hint to quote it."""
    names = [wanted] if isinstance(wanted, str) else list(wanted)
    quotes = " (no quotes)" if isinstance(instance, str) and "string" not in names else ""
    number = isinstance(instance, (int, float)) and not isinstance(instance, bool)
    hint = " (quote it in YAML: unquoted 12:30 is read as the number 750)" if names == ["string"] and number else ""
    try:
        shown = json.dumps(instance)
    except (TypeError, ValueError):
        shown = repr(instance)
    return f"expected {' or '.join(names)}{quotes}; got {_json_type(instance)} {shown}{hint}"


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    return "object"
