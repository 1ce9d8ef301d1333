"""Full-match anchoring: "\\n", "\\r", a tab or NUL never passes a pattern-checked key (issue #12).

Every string of a real compiled plan and of its registry snapshot is mutated with each control
character (after, before, inside); the mutated document must be refused, unless the key is free
text (listed below, with why). The test also proves it reached every `pattern` of the plan and
snapshot schemas, so a new pattern cannot escape it. The meta convention's patterns are covered
by tests/corpus/meta/bad/control_*.json, judged by both the Python validator and the macros
(tests/test_macro_parity.py), and by test_meta_patterns_full_match below.
"""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from handoff import schemas
from handoff.errors import HandoffError
from handoff.manifest import load_manifest
from handoff.plan import compile_manifest, validate_plan
from handoff.plan_model import Plan
from handoff.registry.mesh import Mesh, domain_from_plan
from handoff.registry.snapshot import build_snapshot, validate_snapshot

CONTROLS = ("\n", "\r", "\t", "\0")
# keys whose value is free text: shown to people, never a path, an argv, an id or a lookup key
FREE_TEXT = {
    "owner",  # a team or person, any text (meta schema: owner)
    "description",  # prose
    "notes",  # compile's notes for people
    "relation",  # the warehouse relation, shown by explain/impact only
    "generated_at", "published_at", "label",  # snapshot bookkeeping, shown only
}


def strings(value: Any, path: tuple[Any, ...] = ()) -> Iterator[tuple[tuple[Any, ...], str]]:
    if isinstance(value, str):
        yield path, value
    elif isinstance(value, dict):
        for key, item in value.items():
            yield from strings(item, (*path, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from strings(item, (*path, index))


def replaced(document: Any, path: tuple[Any, ...], value: str) -> Any:
    copied = copy.deepcopy(document)
    target = copied
    for part in path[:-1]:
        target = target[part]
    target[path[-1]] = value
    return copied


def distinct_roles(document: Any) -> list[tuple[tuple[Any, ...], str]]:
    """One string per role (its path with list positions ignored): the same role is the same
    schema location, so mutating one of them says what mutating any would."""
    seen: dict[tuple[Any, ...], tuple[tuple[Any, ...], str]] = {}
    for path, value in strings(document):
        kind = _task_kind(document, path)
        role = (kind, *(p if isinstance(p, str) else "*" for p in path))
        seen.setdefault(role, (path, value))
    return list(seen.values())


def _task_kind(document: Any, path: tuple[Any, ...]) -> str:
    """Sensors and dbt tasks are different schemas under the same path."""
    if len(path) > 4 and path[0] == "pipelines" and path[2] == "tasks":
        return str(document["pipelines"][path[1]]["tasks"][path[3]].get("kind"))
    return ""


def key_of(path: tuple[Any, ...]) -> str:
    return next(str(p) for p in reversed(path) if isinstance(p, str))


def mutations(value: str) -> list[str]:
    middle = len(value) // 2
    return [m for c in CONTROLS for m in (value + c, c + value, value[:middle] + c + value[middle:])]


def schema_patterns(name: str) -> set[str]:
    found: set[str] = set()

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            if isinstance(node.get("pattern"), str):
                found.add(node["pattern"])
            for item in node.values():
                walk(item)
        elif isinstance(node, list):
            for item in node:
                walk(item)

    walk(schemas.load(name))
    return found


@pytest.fixture(scope="module")
def plan(fixture_manifest) -> dict[str, Any]:
    compiled = compile_manifest(load_manifest(fixture_manifest("shapes"))).to_json()  # the document, to mutate
    # give optional pattern-checked keys a value, so that they are exercised too
    for pipeline in compiled["pipelines"]:
        for task in pipeline["tasks"]:
            if task["kind"] != "sensor":
                task["pool"] = task["pool"] or "default_pool"
                task["available_by"] = task["available_by"] or "05:30"
                task["tests"] = task["tests"] or [f"not_null_{task['name']}_id"]
    document: dict[str, Any] = json.loads(json.dumps(compiled))
    validate_plan(document, "shapes")
    return document


def refused_patterns(check: Any, document: Any, path: tuple[Any, ...], value: str) -> set[str]:
    """The patterns that refused ``value`` at ``path`` (empty when it was refused otherwise); raises
    AssertionError when the document was accepted."""
    mutated = replaced(document, path, value)
    errors = list(check.iter_errors(mutated))
    if not errors:
        try:
            validate_plan(mutated, "mutated") if check is schemas.validator("plan") else validate_snapshot(mutated, "m")
        except HandoffError:
            return set()
        raise AssertionError(f"{'/'.join(map(str, path))} = {value!r} was accepted")
    found = set()
    for error in errors:
        for sub in [error, *error.context]:
            if sub.validator == "pattern":
                found.add(sub.validator_value)
    return found


def test_every_plan_key_refuses_control_characters(plan: dict[str, Any]) -> None:
    check = schemas.validator("plan")
    reached: set[str] = set()
    leaves = distinct_roles(plan)
    assert len(leaves) > 20
    for path, value in leaves:
        if key_of(path) in FREE_TEXT:
            continue
        for mutated in mutations(value):
            reached |= refused_patterns(check, plan, path, mutated)
    plan_only = {p for p in schema_patterns("plan")}
    missing = plan_only - reached
    assert not missing, f"patterns no plan key reached (give the fixture plan such a key): {missing}"


def test_every_snapshot_key_refuses_control_characters(plan: dict[str, Any]) -> None:
    snapshot = json.loads(json.dumps(build_snapshot(Mesh({"shapes": domain_from_plan(Plan.from_json(plan))})).to_json()))
    validate_snapshot(snapshot, "snapshot")
    check = schemas.validator("registry_snapshot")
    reached: set[str] = set()
    for path, value in distinct_roles(snapshot):
        if key_of(path) in FREE_TEXT:
            continue
        for mutated in mutations(value):
            reached |= refused_patterns(check, snapshot, path, mutated)
    assert schema_patterns("registry_snapshot") <= reached


def test_free_text_keys_have_no_pattern() -> None:
    """The allowlist above only names keys that no schema constrains by pattern — except a pattern
    that only refuses characters (control characters in an owner or a description), never a shape."""
    refuses_only = re.compile(r"\^\[\^[^\]]+\]\*\$|\^\(\?!\[\\s\\S\]\*\[[^\]]+\]\)\[\\s\\S\]\{\d+,\d+\}\$")

    def walk(node: Any, key: str | None = None) -> Iterator[str]:
        if isinstance(node, dict):
            if key in FREE_TEXT and "pattern" in node and not refuses_only.fullmatch(node["pattern"]):
                yield key
            for k, item in node.items():
                yield from walk(item, k if k not in ("properties", "items", "$defs") else key)
        elif isinstance(node, list):
            for item in node:
                yield from walk(item, key)

    for name in ("plan", "registry_snapshot", "meta"):
        assert list(walk(schemas.load(name))) == [], name


def test_meta_corpus_feeds_every_control_character() -> None:
    corpus = Path(__file__).parent / "corpus" / "meta" / "bad"
    texts = [json.dumps(json.loads(f.read_text())["meta"]) for f in corpus.glob("control_*.json")]
    assert len(texts) >= 10
    for escaped in ("\\n", "\\r", "\\t", "\\u0000"):
        assert any(escaped in t for t in texts), escaped


def test_macros_full_match_like_python() -> None:
    """The Jinja interpreter uses re.fullmatch for both pattern keywords (never re.search / re.match)."""
    macro = (Path(__file__).parents[1] / "macros" / "schema" / "handoff_schema_issues.sql").read_text()
    assert macro.count("modules.re.fullmatch(") == 2
    assert "modules.re.search(" not in macro and "modules.re.match(" not in macro
