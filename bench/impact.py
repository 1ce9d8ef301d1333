"""`handoff impact` on the 20x250 mesh with column lineage (issue #18): a PR touching 10 public models.

``python -m bench --only impact`` (or ``python -m bench.impact prepare|impact '<json>'`` for one step).

- **prepare** (once, cached under bench/.cache/impact-<key>): the mesh's 20 projects copied and
  ``dbt compile``d (compiled SQL in every manifest: what column lineage reads), their plans
  compiled from those manifests and published to a new SQLite registry (the consumers' ``reads``
  columns come from their compiled SQL). The upstream domain whose public marts the most other
  domains read gets a PR: in a copy of its project, 10 public marts (the most read first) rename
  their ``value`` column to ``total`` — the silent breaking change of issue #18 — and the copy is
  compiled again: the head manifest.
- **impact** (fresh process per repeat): ``python -m handoff.cli impact --base --head --registry
  --format json -o FILE``, timed from outside (wall, and the child's CPU from ``getrusage``), so
  the interpreter's start and every import count. The report is checked: 10 changes, breaking,
  column-level (the consumers that read ``value`` named), columns from the compiled SQL.
"""

from __future__ import annotations

import hashlib
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

from .mesh import MeshSpec, dbt_env, get_mesh
from .steps import run_step, step_main
from .suite import CACHE, MAIN_PY, REPO, Report, Row, met, secs

SPEC = MeshSpec(20, 250)
CHANGED = 10
TARGET_S = 5.0


def _key() -> str:
    sources = [Path(__file__), REPO / "bench" / "mesh.py"]
    text = "".join(p.read_text("utf-8") for p in sources)
    return hashlib.sha256(text.encode()).hexdigest()[:12]


def _compile(project: Path, profiles: Path) -> Path:
    from dbt.cli.main import dbtRunner

    result = dbtRunner().invoke(["--quiet", "compile", "--project-dir", str(project), "--profiles-dir", str(profiles),
                                 "--target-path", str(project / "target"), "--log-path", str(project / "logs")])
    if not result.success:
        raise RuntimeError(f"dbt compile of {project} failed: {result.exception}")
    return project / "target" / "manifest.json"


def step_prepare(args: dict[str, Any]) -> dict[str, Any]:
    """The compiled mesh, its registry and the PR's head manifest (module doc); cached."""
    root = Path(args["root"])
    done = root / "prepared.json"
    if done.is_file():
        return json.loads(done.read_text("utf-8"))
    shutil.rmtree(root, ignore_errors=True)
    mesh = get_mesh(MeshSpec(args["domains"], args["models"]))
    shutil.copytree(mesh.root, root / "mesh", ignore=shutil.ignore_patterns("target", "logs", "*.duckdb*"))
    os.environ.update(dbt_env(root / "mesh"))
    sys.path.insert(0, str(REPO / "python"))
    from handoff.manifest import load_manifest
    from handoff.plan import compile_manifest, dumps
    from handoff.registry import Registry

    started = time.perf_counter()
    plans = root / "plans"
    plans.mkdir()
    readers: Counter[tuple[str, str]] = Counter()  # (domain, public model) -> consuming domains
    for domain in mesh.domains():
        manifest_path = _compile(root / "mesh" / "projects" / domain, root / "mesh")
        plan = compile_manifest(load_manifest(manifest_path))
        (plans / f"{domain}.plan.json").write_text(dumps(plan), "utf-8")
        manifest = json.loads(manifest_path.read_text("utf-8"))
        for source in manifest["sources"].values():
            upstream = (source.get("source_meta") or {}).get("handoff_upstream", {}).get("domain")
            model = (source.get("meta") or {}).get("handoff_upstream", {}).get("model")
            if upstream and model:
                readers[(upstream, model)] += 1
    compile_s = time.perf_counter() - started
    registry_url = f"sqlite:///{root / 'registry.db'}"
    with Registry(registry_url) as registry:
        registry.publish_files([plans])
    by_domain: Counter[str] = Counter()
    for (up, _), n in readers.items():
        by_domain[up] += n
    domain = by_domain.most_common(1)[0][0]
    changed = [m for (up, m), _ in sorted(readers.items(), key=lambda kv: (-kv[1], kv[0][1])) if up == domain]
    project = root / "mesh" / "projects" / domain
    head_project = root / "head" / domain
    shutil.copytree(project, head_project, ignore=shutil.ignore_patterns("target", "logs"))
    pick = changed[:CHANGED]
    if len(pick) < CHANGED:  # fewer than 10 read models: other public marts of the domain make up the 10
        manifest = json.loads((project / "target" / "manifest.json").read_text("utf-8"))
        others = sorted(n["name"] for n in manifest["nodes"].values()
                        if n["resource_type"] == "model" and n.get("access") == "public" and n["name"] not in pick)
        pick += others[:CHANGED - len(pick)]
    for name in pick:
        sql = head_project / "models" / "marts" / f"{name}.sql"
        sql.write_text(sql.read_text("utf-8").replace("sum(value) as value", "sum(value) as total"), "utf-8")
    head = _compile(head_project, root / "mesh")
    result = {"domain": domain, "changed": pick, "read_by": {m: readers.get((domain, m), 0) for m in pick},
              "base": str(project / "target" / "manifest.json"), "head": str(head), "registry": registry_url,
              "compile_all_s": compile_s, "domains": len(mesh.domains())}
    done.write_text(json.dumps(result), "utf-8")
    return result


def step_impact(args: dict[str, Any]) -> dict[str, Any]:
    """One `handoff impact` in a fresh interpreter, timed from outside; the report's key facts."""
    out = Path(args["root"]) / "report.json"
    out.unlink(missing_ok=True)
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    command = [sys.executable, "-m", "handoff.cli", "impact", "--base", args["base"], "--head", args["head"],
               "--registry", args["registry"], "--format", "json", "-o", str(out)]
    done = subprocess.run(command,  # noqa: S603 - our own interpreter and paths
                          capture_output=True, text=True, env={**os.environ, "PYTHONPATH": str(REPO / "python")},
                          check=False)
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode not in (0, 1):
        raise RuntimeError(f"handoff impact exit {done.returncode}: {done.stderr[-2000:]}")
    report = json.loads(out.read_text("utf-8"))
    text = json.dumps(report)
    return {"wall_s": wall, "cpu_s": (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime),
            "exit": done.returncode, "report_bytes": len(text), "summary": report.get("summary"),
            "models": len(report.get("models", [])), "column_renamed": text.count('"column_renamed"'),
            "columns_from_sql": text.count('"columns_from": {"base": "sql", "head": "sql"}'),
            "consumers": sum(len(m.get("consumers", [])) for m in report.get("models", []))}


STEPS = {"prepare": step_prepare, "impact": step_impact}


def _step(name: str, args: dict[str, Any]) -> dict[str, Any]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AIRFLOW")}
    env["PYTHONPATH"] = str(REPO)
    return run_step(MAIN_PY, REPO, "impact", name, args, env, timeout=3 * 3600)


def bench_impact(report: Report, repeats: int, spec: MeshSpec = SPEC) -> None:
    """The row: `handoff impact` of a 10-public-model PR on the 20x250 mesh, median of ``repeats``."""
    root = CACHE / f"impact-{spec.label}-{_key()}"
    prepared = _step("prepare", {"root": str(root), "domains": spec.domains, "models": spec.models})
    runs = [_step("impact", {"root": str(root), **prepared}) for _ in range(repeats)]
    wall = statistics.median(r["wall_s"] for r in runs)
    cpu = statistics.median(r["cpu_s"] for r in runs)
    last = runs[-1]
    report.raw["impact"] = {"prepared": prepared, "runs": runs}
    report.add(Row(
        "impact", f"`handoff impact` (fresh process, JSON) of a PR renaming a column of {len(prepared['changed'])} "
        f"public models of {prepared['domain']} (read by {sum(prepared['read_by'].values())} source tables of other "
        f"domains), {spec.label} mesh compiled (column lineage from compiled SQL), registry of {prepared['domains']} "
        f"domains; median of {repeats}",
        f"{secs(cpu)} CPU, {secs(wall)} wall; {last['column_renamed']} columns seen renamed, columns of "
        f"{last['columns_from_sql']} models from compiled SQL, {last['consumers']} consumer tasks; "
        f"summary: {last['summary']!s:.160}",
        f"load {os.getloadavg()[0]:.1f} (the wall is the load's; CPU is the measure, single-threaded)", "",
        f"≤ {TARGET_S:g} s", met(cpu <= TARGET_S and last["exit"] in (0, 1) and last["column_renamed"] > 0)))


if __name__ == "__main__":
    raise SystemExit(step_main(STEPS))
