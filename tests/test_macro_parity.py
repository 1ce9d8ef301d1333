"""The dbt macros and the Python validator give the same verdicts on a shared corpus.

Each file of tests/corpus/meta/{good,bad}/*.json is {"kind": "node"|"source", "meta": {...},
"expect": [[code, path], ...]} (sorted). The macros judge the whole corpus in one
`dbt run-operation handoff_judge_examples`; `handoff.meta_schema.validate_meta` judges each file;
both must equal `expect`.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from handoff.meta_schema import validate_meta
from support.examples import Mesh, check, run_dbt

CORPUS = Path(__file__).parent / "corpus" / "meta"
FILES = sorted(CORPUS.glob("*/*.json"))


def _load(path: Path) -> dict[str, Any]:
    return json.loads(path.read_text("utf-8"))


def _id(path: Path) -> str:
    return f"{path.parent.name}/{path.stem}"


@pytest.fixture(scope="module")
def macro_lines(example_manifests: Mesh) -> list[dict[str, Any]]:
    examples = [{"kind": _load(f)["kind"], "meta": _load(f)["meta"]} for f in FILES]
    # A JSON string keeps JSON's types exactly; YAML (dbt's --args) would read some as strings.
    args = json.dumps({"examples": json.dumps(examples)})
    run = check(run_dbt(["run-operation", "handoff_judge_examples", "--args", args],
                        example_manifests.project_dirs["marketplace"], example_manifests.env))
    lines = [json.loads(line) for line in run.printed if line.startswith('{"handoff_judged"')]
    assert [line["handoff_judged"] for line in lines] == list(range(len(FILES))), run.output
    return lines


@pytest.fixture(scope="module")
def macro_verdicts(macro_lines: list[dict[str, Any]]) -> dict[Path, list[list[str]]]:
    return {f: line["issues"] for f, line in zip(FILES, macro_lines)}


@pytest.fixture(scope="module")
def macro_messages(macro_lines: list[dict[str, Any]]) -> list[list[list[str]]]:
    """The macros' HO102 messages for each file of the corpus."""
    return [sorted(m for m in line["messages"] if m[0] == "HO102") for line in macro_lines]


def test_corpus_is_big_enough_and_well_formed() -> None:
    good = [f for f in FILES if f.parent.name == "good"]
    bad = [f for f in FILES if f.parent.name == "bad"]
    assert len(good) >= 5 and len(bad) >= 20, (len(good), len(bad))
    assert len(good) + len(bad) == len(FILES), "corpus files belong in good/ or bad/"
    for f in FILES:
        data = _load(f)
        assert set(data) == {"kind", "meta", "expect"}, f
        assert data["kind"] in ("node", "source"), f
        assert data["expect"] == sorted(data["expect"]), f"{f}: keep expect sorted"
        assert (data["expect"] == []) == (f.parent.name == "good"), f"{f}: good files expect [], bad ones not"
    codes = {code for f in bad for code, _ in _load(f)["expect"]}
    assert codes == {"HO101", "HO102", "HO103", "HO104", "HO105", "HO106"}, codes


@pytest.mark.parametrize("path", FILES, ids=_id)
def test_macros_agree_with_expectation(path: Path, macro_verdicts: dict[Path, list[list[str]]]) -> None:
    assert macro_verdicts[path] == _load(path)["expect"]


@pytest.mark.parametrize("path", FILES, ids=_id)
def test_python_agrees_with_expectation(path: Path) -> None:
    data = _load(path)
    issues = validate_meta(data["kind"], data["meta"])
    assert sorted({(i.code, i.path) for i in issues}) == [tuple(pair) for pair in data["expect"]]


def test_type_messages_are_word_for_word_the_macros(macro_messages: list[list[list[str]]]) -> None:
    """HO102 says the same in both: 'quote it in YAML' for an unquoted 12:30 (750), '(no quotes)'..."""
    python = []
    for f in FILES:
        data = _load(f)
        python.append(sorted([i.code, i.path, i.message] for i in validate_meta(data["kind"], data["meta"])
                             if i.code == "HO102"))
    assert python == macro_messages
    hinted = [m for found in python for m in found if "quote it in YAML" in m[2]]
    assert hinted, "the corpus must hold an unquoted time of day (tests/corpus/meta/bad/)"
