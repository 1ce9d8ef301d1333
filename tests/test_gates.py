"""The gates are wired: `make test` runs ruff and mypy --strict first, and `make lint` fails on either.

The gates run on python/handoff inside `make test` itself; these tests point the same target at
a scratch package (LINT_SRC) to prove it fails on a violation and passes clean code.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def _make(*args: str, cache: Path | None = None) -> subprocess.CompletedProcess[str]:
    env = os.environ.copy()
    if cache is not None:
        env["MYPY_CACHE_DIR"] = str(cache)  # never the repo's cache: this package is not ours
    return subprocess.run(["make", "--no-print-directory", f"VENV={sys.prefix}", *args], cwd=REPO, env=env,
                          capture_output=True, text=True, check=False, timeout=900)


def _package(root: Path, files: dict[str, str]) -> Path:
    package = root / "scratch_pkg"
    package.mkdir()
    (package / "__init__.py").write_text('"""A scratch package for the gates."""\n', "utf-8")
    for name, text in files.items():
        (package / name).write_text(text, "utf-8")
    return package


def test_make_test_runs_the_gates_before_pytest() -> None:
    done = _make("-n", "test")
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    ruff = next(i for i, line in enumerate(lines) if "ruff check" in line and "--config pyproject.toml" in line)
    mypy = next(i for i, line in enumerate(lines) if "bin/mypy" in line)
    pytest_run = next(i for i, line in enumerate(lines) if "-m pytest" in line)
    assert ruff < pytest_run and mypy < pytest_run, done.stdout


def test_lint_reports_both_gates_then_fails(tmp_path: Path) -> None:
    package = _package(tmp_path, {
        "unused.py": '"""Imports what it never uses."""\n\nimport os\n',
        "wrong.py": '"""Returns a str where it promises an int."""\n\n\ndef answer() -> int:\n    return "42"\n',
        "untyped.py": '"""No annotations."""\n\n\ndef double(x):\n    return x * 2\n',
        "tangled.py": '"""Sixteen decisions in one function (the cap is 15)."""\n\n\ndef pick(x: int) -> int:\n'
                      + "".join(f"    if x == {i}:\n        return {i * 2}\n" for i in range(16)) + "    return 0\n",
    })
    done = _make("lint", f"LINT_SRC={package}", cache=tmp_path / "mypy_cache")
    output = done.stdout + done.stderr
    assert done.returncode != 0, output
    assert "F401" in output and "unused.py" in output, output  # ruff (pyflakes)
    assert "C901" in output and "`pick` is too complex (17 > 15)" in output, output  # ruff (mccabe)
    assert 'Incompatible return value type (got "str", expected "int")' in output, output  # mypy
    assert "untyped.py" in output and "no-untyped-def" in output, output  # --strict


def test_lint_passes_clean_code(tmp_path: Path) -> None:
    package = _package(tmp_path, {
        "fine.py": '"""Typed and tidy."""\n\nfrom collections.abc import Iterable\n\n\n'
                   'def total(values: Iterable[int]) -> int:\n    return sum(values)\n',
    })
    done = _make("lint", f"LINT_SRC={package}", cache=tmp_path / "mypy_cache")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "All checks passed!" in done.stdout and "Success: no issues found" in done.stdout, done.stdout
