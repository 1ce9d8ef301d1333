"""The settle route's body rules (handoff.airflow.batch_api.parse_body): a body that is not the shape is
one 400 line; each item is judged on its own, and a bad one costs only itself (docs/execution.md,
"The state write"). The route itself runs on a real Airflow stack in tests/airflow/test_batched_stack.py."""

from __future__ import annotations

import json

import pytest
from fastapi import HTTPException

from handoff.airflow.batch_api import MAX_TASKS, parse_body


def _body(*items: object) -> bytes:
    return json.dumps({"task_instances": list(items)}).encode()


GOOD = {"task_id": "mrt_orders", "state": "success", "note": "dbt success\nin 0.10 s\ttests: none",
        "start_date": "2026-11-30T10:00:00+00:00", "end_date": "2026-11-30T10:00:01Z"}


def test_a_good_item_is_kept_with_its_dates():
    parsed = parse_body(_body(GOOD, {"task_id": "a.b-c_1", "state": "failed"}))
    assert not parsed.refused
    assert [i.task_id for i in parsed.items] == ["mrt_orders", "a.b-c_1"]
    first = parsed.items[0]
    assert first.start() is not None and first.end() is not None
    assert (first.end() - first.start()).total_seconds() == 1.0


@pytest.mark.parametrize(("item", "field"), [
    ({"task_id": "m", "state": "running"}, "state"),
    ({"task_id": "m", "state": "SUCCESS"}, "state"),
    ({"task_id": "m", "state": None}, "state"),
    ({"task_id": "m"}, "state"),
    ({"task_id": "m", "state": "success", "note": "a\rb"}, "note"),
    ({"task_id": "m", "state": "success", "note": "a\x1b[0mb"}, "note"),
    ({"task_id": "m", "state": "success", "note": "a\x00b"}, "note"),
    ({"task_id": "m", "state": "success", "note": "a\x85b"}, "note"),
    ({"task_id": "m", "state": "success", "note": "a\ud800b"}, "note"),
    ({"task_id": "m", "state": "success", "note": "x" * 1001}, "note"),
    ({"task_id": "m", "state": "success", "note": 5}, "note"),
    ({"task_id": "m", "state": "success", "start_date": "2026-01-01T00:00"}, "start_date"),
    ({"task_id": "m", "state": "success", "start_date": 1000000000000}, "start_date"),
    ({"task_id": "m", "state": "success", "end_date": "yesterday"}, "end_date"),
    ({"task_id": "m", "state": "success", "end_date": "2026-01-01T00:00:00+00:00" + " " * 40}, "end_date"),
    ({"task_id": "m", "state": "success", "map_index": 3}, "map_index"),
    ({"task_id": "m", "state": "success", "try_number": 5}, "try_number"),
])
def test_a_bad_item_is_refused_alone_and_named(item, field):
    parsed = parse_body(_body(item, GOOD))
    assert [i.task_id for i in parsed.items] == ["mrt_orders"]
    assert list(parsed.refused) == ["m"], parsed.refused
    why = parsed.refused["m"]
    assert why.startswith(f"refused: {field}"), why
    assert "\n" not in why and "\r" not in why and "\ud800" not in why


@pytest.mark.parametrize("task_id", ["../x", "a/b", "", "x" * 251, "é", "a b", "a\nb", 5, None, ["m"]])
def test_an_item_without_a_valid_task_id_is_refused_by_its_index(task_id):
    parsed = parse_body(_body(GOOD, {"task_id": task_id, "state": "success"}))
    assert list(parsed.refused) == ["#1"] and parsed.refused["#1"].startswith("refused: task_id"), parsed.refused
    assert [i.task_id for i in parsed.items] == ["mrt_orders"]


def test_a_task_given_twice_is_refused_not_last_wins():
    parsed = parse_body(_body(GOOD, {**GOOD, "state": "failed"}, {"task_id": "x", "state": "success"}))
    assert parsed.refused == {"mrt_orders": "refused: task_id given more than once"}
    assert [i.task_id for i in parsed.items] == ["x"]
    parsed = parse_body(_body(GOOD, {**GOOD, "state": "bad"}, {**GOOD, "state": "failed"}))
    assert list(parsed.refused) == ["mrt_orders"] and not parsed.items


@pytest.mark.parametrize("raw", [
    b"not json", b"\xff\xfe", b"[]", b'"x"', b"{}", b'{"task_instances": []}', b'{"task_instances": {}}',
    b'{"task_instances": [{"task_id": "m", "state": "success"}], "more": 1}',
    json.dumps({"task_instances": [{"task_id": f"t{i}", "state": "success"} for i in range(MAX_TASKS + 1)]}).encode(),
])
def test_a_body_that_is_not_the_shape_is_one_400_line(raw):
    with pytest.raises(HTTPException) as caught:
        parse_body(raw)
    assert caught.value.status_code == 400 and "\n" not in str(caught.value.detail)


def test_the_most_items_are_accepted():
    parsed = parse_body(json.dumps({"task_instances": [{"task_id": f"t{i}", "state": "success"}
                                                       for i in range(MAX_TASKS)]}).encode())
    assert len(parsed.items) == MAX_TASKS and not parsed.refused
