"""The meta convention: schema checks of one meta block, with stable rule codes.

Rule codes (docs/convention.md lists them all) are shared with the dbt macros,
which must give the same verdict (code and key path) on the same meta.
"""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass
from typing import Any, Iterable

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
    """Check one meta block (``kind`` is 'node' or 'source') against schemas/meta.schema.json."""
    if kind not in KINDS:
        raise ValueError(f"unknown meta kind {kind!r}")
    validator = schemas.validator("meta", KINDS[kind])
    meta = meta if meta is not None else {}
    issues: list[Issue] = []
    for error in validator.iter_errors(meta):
        issues.extend(_issues_from(error))
    if isinstance(meta, dict):
        issues.extend(_misspelt_root_keys(KINDS[kind], meta))
    return sorted(set(issues))


def _misspelt_root_keys(definition: str, meta: dict[str, Any]) -> list[Issue]:
    """Root keys caught by a ``false`` patternProperty (jsonschema reports those without the key)."""
    schema = schemas.load("meta")["$defs"][definition]
    known = sorted(schema.get("properties", {}))
    return [
        Issue(SCHEMA_CODES["unknown_key"], str(key),
              f"unknown key '{key}'{suggest(str(key), known)}; handoff reads here: {', '.join(known)}")
        for key in meta
        for pattern, sub in schema.get("patternProperties", {}).items()
        if sub is False and re.search(pattern, str(key))
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
    keyword = error.validator
    if keyword in ("$ref", "allOf"):
        return [i for sub in error.context or [] for i in _issues_from(sub)]
    if keyword == "additionalProperties":
        allowed = _allowed_keys(error.schema) if isinstance(error.schema, dict) else []
        extras = sorted(set(error.instance) - set(allowed))
        return [
            Issue(SCHEMA_CODES["unknown_key"], _dotted(path + [k]),
                  f"unknown key '{k}'{suggest(k, allowed)}; allowed: {', '.join(allowed)}")
            for k in extras
        ]
    if keyword is None:
        return []  # a `false` patternProperty: reported by _misspelt_root_keys, which knows the key
    if keyword == "required":
        missing = [k for k in error.validator_value if k not in error.instance]
        return [Issue(SCHEMA_CODES["required"], _dotted(path + [k]), f"required key '{k}' is missing")
                for k in missing]
    if keyword == "type":
        want = error.validator_value
        return [Issue(SCHEMA_CODES["type"], _dotted(path),
                      f"expected {want}, got {_json_type(error.instance)} {error.instance!r}")]
    if keyword == "pattern":
        return [Issue(SCHEMA_CODES["pattern"], _dotted(path),
                      f"{error.instance!r} is not {_describe(error.schema) or 'of the expected form'}")]
    if keyword == "enum":
        options = ", ".join(repr(v) for v in error.validator_value)
        return [Issue(SCHEMA_CODES["enum"], _dotted(path), f"{error.instance!r} is not one of {options}")]
    if keyword in ("minimum", "maximum", "minLength", "maxLength"):
        return [Issue(SCHEMA_CODES["range"], _dotted(path),
                      f"{error.instance!r} breaks {keyword} {error.validator_value}")]
    raise AssertionError(f"schemas/meta.schema.json uses keyword {keyword!r} that handoff does not map")


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

