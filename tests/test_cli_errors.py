"""One corpus of bad input across every `handoff` command: one line on stderr naming what and
where, exit 2, no traceback, nothing written."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from handoff.manifest import load_manifest
from handoff.plan import compile_manifest, dumps
from support.documents import plan_text


@pytest.fixture(scope="module")
def world(fixture_manifest, tmp_path_factory) -> dict[str, Path | str]:
    tmp = tmp_path_factory.mktemp("cli-errors")
    manifest = fixture_manifest("shapes")
    plan = tmp / "shapes.plan.json"
    plan.write_text(dumps(compile_manifest(load_manifest(manifest))))
    registry = f"sqlite:///{tmp / 'registry.db'}"
    done = subprocess.run([sys.executable, "-m", "handoff.cli", "publish", str(plan), "--registry", registry],
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    truncated = tmp / "truncated.plan.json"
    truncated.write_text(plan.read_text()[:300])
    cyclic = tmp / "cyclic.plan.json"
    looped = json.loads(plan.read_text())
    daily = {t["task_id"]: t for t in looped["pipelines"][0]["tasks"]}
    daily["raw_things"]["upstream"] = ["base"]  # base waits on raw_things: now each waits on the other
    cyclic.write_text(plan_text(looped))
    return {"tmp": tmp, "manifest": manifest, "plan": plan, "registry": registry, "truncated": truncated,
            "cyclic": cyclic}


# (argv with {placeholders}, what the one line must say)
CASES = {
    "unknown command": (["frobnicate"], "invalid choice: 'frobnicate'"),
    "missing argument": (["compile"], "the following arguments are required: manifest"),
    "compile a folder": (["compile", "{tmp}"], "is a folder, not a file"),
    "inspect missing plan": (["inspect", "{tmp}/nope.plan.json"], "nope.plan.json: file not found"),
    "inspect truncated plan": (["inspect", "{truncated}"], "not valid JSON"),
    "publish truncated plan": (["publish", "{truncated}", "--registry", "{registry}"], "not valid JSON"),
    "check truncated plan": (["check", "{truncated}", "--registry", "{registry}"], "not valid JSON"),
    "inspect cyclic plan": (["inspect", "{cyclic}"], "cycle (each waits on the next): base -> raw_things -> base"),
    "publish cyclic plan": (["publish", "{cyclic}", "--registry", "{registry}"], "tasks wait on each other in a cycle"),
    "check cyclic plan": (["check", "{cyclic}", "--registry", "{registry}"], "tasks wait on each other in a cycle"),
    "target without a dot": (["who-depends-on", "shapes", "--registry", "{registry}"], "DOMAIN.MODEL"),
    "unknown model": (["explain", "shapes.nope", "--registry", "{registry}"], "nope"),
    "unknown domain": (["who-depends-on", "ghost.model", "--registry", "{registry}"], "ghost"),
    "bad --at": (["explain", "shapes.base", "--at", "soon", "--registry", "{registry}"], "--at 'soon' is not a date"),
    "registry file missing": (["who-depends-on", "shapes.base", "--registry", "sqlite:///{tmp}/none.db"], "none.db"),
    "registry scheme": (["who-depends-on", "shapes.base", "--registry", "mysql://u:secret@h/db"], "mysql"),
    "registry not a URL": (["snapshot", "--output", "{tmp}/snap/", "--registry", "not a url"], "not a url"),
    "registry unreachable": (["who-depends-on", "shapes.base", "--registry",
                              "postgresql://handoff:secret@127.0.0.1:1/handoff"], "127.0.0.1"),
    "reconcile without API settings": (["reconcile", "--registry", "{registry}"], "HANDOFF_AIRFLOW_API_URL"),
    "sla unknown domain": (["sla", "ghost", "--registry", "{registry}"], "no domain 'ghost' is published"),
    "sla unknown model": (["sla", "shapes.nope", "--registry", "{registry}"], "nope"),
    "sla bad target": (["sla", "sha pes", "--registry", "{registry}"], "is not DOMAIN or DOMAIN.MODEL"),
    "sla bad --days": (["sla", "--days", "0", "--registry", "{registry}"], "--days 0 is not between 1 and 400"),
    "reconcile bad --since": (["reconcile", "--since", "forever"], "--since 'forever' is not a duration"),
    "impact same manifest": (["impact", "--base", "{manifest}", "--head", "{manifest}"], "same manifest"),
    "impact missing head": (["impact", "--base", "{manifest}", "--head", "{tmp}/nope.json"], "nope.json"),
    "validate missing manifest": (["validate", "{tmp}/nope.json"], "file not found"),
    "C1 control in a model name": (["explain", "shapes.ba\u0085se", "--registry", "{registry}"],
                                   "holds a control character"),
    "tab in a domain name": (["map", "--domain", "sha\tpes", "--registry", "{registry}"], "holds a control character"),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_bad_input_is_one_line_exit_2(case, world):
    argv, expected = CASES[case]
    args = [a.format(**world) for a in argv]
    env = {k: v for k, v in os.environ.items() if not k.startswith("HANDOFF_")}
    before = _files(world["tmp"])
    done = subprocess.run([sys.executable, "-m", "handoff.cli", *args], capture_output=True, text=True, env=env,
                          timeout=60, cwd=world["tmp"])
    assert done.returncode == 2, (done.returncode, done.stdout, done.stderr)
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith("handoff"), lines[0]
    assert expected in lines[0], lines[0]
    assert "Traceback" not in done.stderr and done.stdout == ""
    assert "secret" not in done.stderr  # passwords in URLs are masked
    assert _files(world["tmp"]) == before  # nothing written


def _files(folder: Path | str) -> list[str]:
    """The folder's files, without SQLite's WAL bookkeeping (a read-only connection leaves it)."""
    return sorted(p.name for p in Path(folder).iterdir() if not p.name.endswith(("-wal", "-shm")))
