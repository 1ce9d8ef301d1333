"""The compiled plan check (schemas.fast_check) never accepts what jsonschema refuses.

It only decides the common case (a valid plan, ~11x faster); a refusal goes to jsonschema, which
writes the message. Mutations of a real compiled plan — every key deleted, every value replaced
by values of other types and shapes, unknown keys added — must get jsonschema's verdict.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator
from typing import Any

import pytest
from handoff import schemas
from handoff.errors import HandoffError
from handoff.manifest import load_manifest
from handoff.plan import compile_manifest, validate_plan

REPLACEMENTS: list[Any] = [None, 0, -1, 11, 3.5, True, "", "x", "ÿ" * 300, "a b", "0 3 * * *", [], ["x"], {},
                           {"x": 1}, "wait__x__y", "2024-13-01", "25:00"]


def _paths(value: Any, path: tuple = ()) -> Iterator[tuple]:
    yield path
    if isinstance(value, dict):
        for key, child in value.items():
            yield from _paths(child, (*path, key))
    elif isinstance(value, list):
        for index, child in enumerate(value[:3]):
            yield from _paths(child, (*path, index))


def _mutations(plan: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    for path in _paths(plan):
        if not path:
            continue
        *parent_path, last = path
        for replacement in [*REPLACEMENTS, "<delete>", "<unknown key>"]:
            mutated = copy.deepcopy(plan)
            parent = mutated
            for step in parent_path:
                parent = parent[step]
            if replacement == "<delete>":
                if isinstance(parent, dict):
                    del parent[last]
                else:
                    parent.pop(last)
            elif replacement == "<unknown key>":
                if not isinstance(parent, dict):
                    continue
                parent[f"{last}_extra"] = 1
            else:
                parent[last] = replacement
            yield f"{'/'.join(map(str, path))} = {replacement!r}", mutated


@pytest.fixture(scope="module")
def plans(fixture_manifest) -> list[dict[str, Any]]:
    return [compile_manifest(load_manifest(fixture_manifest(name))).to_json() for name in ("shapes", "evil")]


def test_the_shipped_plan_schema_takes_the_fast_path():
    assert schemas.fast_check("plan") is not None


def test_fast_check_agrees_with_jsonschema_on_every_mutation(plans):
    fast = schemas.fast_check("plan")
    reference = schemas.validator("plan")
    checked = accepted = 0
    for plan in plans:
        assert fast(plan) and reference.is_valid(plan)
        for what, mutated in _mutations(plan):
            checked += 1
            if fast(mutated):
                accepted += 1
                assert reference.is_valid(mutated), f"fast check accepted what jsonschema refuses: {what}"
    assert checked > 2000 and accepted > 50  # the mutations exercise both verdicts


def test_refusals_keep_jsonschemas_message(plans):
    bad = copy.deepcopy(plans[0])
    bad["pipelines"][0]["tasks"][0]["retries"] = "two"
    with pytest.raises(HandoffError, match=r"plan does not match schemas/plan.schema.json at "
                                           r"pipelines/0 \(daily\)/tasks/0 \(base\)/retries: 'two' is not of type 'integer'"):
        validate_plan(bad, "x.plan.json")


def test_a_schema_using_a_2020_12_only_keyword_is_left_to_jsonschema():
    assert schemas._draft7_compatible({"type": "object", "properties": {"a": {"type": "string"}}})
    assert not schemas._draft7_compatible({"type": "object", "unevaluatedProperties": False})
    assert not schemas._draft7_compatible({"properties": {"a": {"$ref": "#/$defs/x", "maxLength": 3}}})
    assert not schemas._draft7_compatible({"items": [{"type": "string"}]})


def test_the_fast_path_is_the_lean_compile_of_the_shipped_schema(plans):
    """fast_check builds its item names with f-strings, not ``format(**locals())`` (half of checking
    a valid plan's tasks, docs/benchmarks.md), and still refuses what it should (the test above)."""
    fast = schemas.fast_check("plan")
    compiled = [cell.cell_contents for cell in fast.__closure__ if callable(cell.cell_contents)]
    assert [c.__code__.co_filename for c in compiled] == ["<handoff fast schema check>"]
    code = 'raise E("" + (p or "data") + ".upstream[{data__upstream_x}]".format(**locals()) + " must be string")'
    assert schemas._ITEM_NAME.sub(r'f"\1{\2}\3"', code) == (
        'raise E("" + (p or "data") + f".upstream[{data__upstream_x}]" + " must be string")')
    assert schemas._compiled_lean("x = 1\n") is None  # not fastjsonschema's shape: its own compile is used
    bad = copy.deepcopy(plans[0])
    bad["pipelines"][0]["tasks"][0]["upstream"] = ["ok", "not ok"]
    assert fast(plans[0]) and not fast(bad)
