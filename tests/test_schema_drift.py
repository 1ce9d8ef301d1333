"""The macros' copy of the meta schema is generated from schemas/meta.schema.json and never drifts."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest
from support.examples import REPO, Mesh, check, run_dbt

GENERATOR = REPO / "scripts" / "gen_macro_schema.py"
SCHEMA = REPO / "schemas" / "meta.schema.json"


def _generator() -> ModuleType:
    spec = importlib.util.spec_from_file_location("gen_macro_schema", GENERATOR)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_generated_macro_is_up_to_date() -> None:
    done = subprocess.run([sys.executable, str(GENERATOR), "--check"], capture_output=True, text=True, check=False)
    assert done.returncode == 0, f"{done.stderr} (run: python scripts/gen_macro_schema.py)"


def test_check_fails_on_a_stale_or_missing_macro(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    gen = _generator()
    stale = tmp_path / "handoff_meta_schema.sql"
    stale.write_text(gen.render(SCHEMA.read_text("utf-8")).replace("HH:MM", "H:MM"), "utf-8")
    monkeypatch.setattr(gen, "TARGET", stale)
    monkeypatch.setattr(gen, "ROOT", tmp_path)
    assert gen.main(["--check"]) == 1
    assert "stale" in capsys.readouterr().err
    stale.unlink()
    assert gen.main(["--check"]) == 1
    assert "missing" in capsys.readouterr().err
    assert gen.main([]) == 0 and gen.main(["--check"]) == 0


def test_generator_refuses_keywords_the_macros_do_not_implement() -> None:
    gen = _generator()
    schema = json.loads(SCHEMA.read_text("utf-8"))
    schema["$defs"]["node"]["properties"]["available_by"] = {"oneOf": [{"type": "string"}]}
    with pytest.raises(SystemExit, match="oneOf"):
        gen.render(json.dumps(schema))


def test_dbt_sees_exactly_the_schema_file(example_manifests: Mesh) -> None:
    run = check(run_dbt(["run-operation", "handoff_print_meta_schema"],
                        example_manifests.project_dirs["marketplace"], example_manifests.env))
    printed = [line for line in run.printed if line.startswith("{")]
    assert len(printed) == 1, run.output
    assert json.loads(printed[0]) == json.loads(SCHEMA.read_text("utf-8"))
