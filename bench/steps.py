"""The protocol between the suite and its measurement steps: each step runs in a fresh
`python -m bench.<module> STEP ARGS_JSON` and prints one `BENCH-RESULT <json>` line."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

MARKER = "BENCH-RESULT "


def run_step(python: Path, repo: Path, module: str, name: str, args: Mapping[str, Any],
             env: Mapping[str, str], timeout: float = 1800) -> dict[str, Any]:
    """Run step ``name`` of ``bench.<module>`` in a fresh interpreter and return its result."""
    done = subprocess.run([str(python), "-m", f"bench.{module}", name, json.dumps(dict(args))], cwd=repo,
                          env=dict(env), capture_output=True, text=True, timeout=timeout, check=False)
    for line in done.stdout.splitlines():
        if line.startswith(MARKER):
            return json.loads(line[len(MARKER):])
    raise RuntimeError(f"{module} step {name} failed (exit {done.returncode}):\n{done.stdout[-4000:]}\n"
                       f"{done.stderr[-4000:]}")


def step_main(steps: Mapping[str, Callable[[dict[str, Any]], dict[str, Any]]]) -> int:
    """The `__main__` of a step module: run the named step, print its result line."""
    result = steps[sys.argv[1]](json.loads(sys.argv[2]))
    print(MARKER + json.dumps(result), flush=True)
    return 0
